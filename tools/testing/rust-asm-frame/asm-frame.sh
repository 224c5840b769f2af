#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# asm-frame.sh KOUT: a call from the kernel crate's inline asm is correct with
# frame pointers, as objtool checks it, as KTAP.
#
# kernel::preempt's preempt_enable_notrace() calls
# preempt_schedule_notrace_thunk from inline asm, where C needs
# ASM_CALL_CONSTRAINT so that the frame is set up before the call.  The test
# module (asm_frame.rs) is built against KOUT twice, with
# -Cforce-frame-pointers=yes (what the kernel passes with CONFIG_FRAME_POINTER)
# and =no, and objtool's frame-pointer validation (--stackval, as kbuild runs
# it with CONFIG_FRAME_POINTER) is run on both: the first must find no "call
# without frame pointer save/setup" in the function, the second must (so the
# check can fail).
set -uo pipefail
KGR_TAG=asm-frame
. "$(dirname "$0")/../../lib/lib.sh"
kgr_load_env
KOUT=${1:?usage: asm-frame.sh KOUT}
OBJTOOL="$KOUT/tools/objtool/objtool"
DIR=$(cd "$(dirname "$0")" && pwd)
echo "KTAP version 1"
echo "1..2"
rc=0
i=0
for fp in yes no; do
	i=$((i + 1))
	mo="$KGR_CACHE/asm-frame/$(basename "$KOUT")/fp-$fp"
	desc="objtool --stackval, -Cforce-frame-pointers=$fp"
	if ! kgr_test_module_build "$DIR" "$mo" "$KOUT" FP="$fp"; then
		echo "not ok $i $desc: the test module does not build"
		sed 's/^/# /' "$mo/build.log" | grep -E '^# (error|warning)' | head -n 5
		rc=1
		continue
	fi
	# The offset of the thunk call in the function, as objtool names it.
	read -r start call < <(objdump -dr --no-show-raw-insn "$mo/asm_frame.o" | awk '
		/^[0-9a-f]+ <kgr_asm_frame_case>:$/ { start = $1; infn = 1; next }
		infn && /^$/ { exit }
		infn && /^ *[0-9a-f]+:\tcall/ { call = substr($1, 1, length($1) - 1) }
		infn && /R_X86_64_PLT32\tpreempt_schedule_notrace_thunk/ { print start, call; exit }')
	off=
	[ -n "${call:-}" ] && off=$(printf '0x%x' $((0x$call - 0x$start)))
	if [ ! -x "$OBJTOOL" ] || [ -z "$off" ]; then
		echo "ok $i $desc # SKIP no objtool, or no call from asm in this configuration"
		continue
	fi
	"$OBJTOOL" --stackval --module --dry-run "$mo/asm_frame.o" >"$mo/objtool.log" 2>&1
	if grep -q "kgr_asm_frame_case+$off: call without frame pointer" "$mo/objtool.log"; then warned=1; else warned=0; fi
	if { [ $fp = yes ] && [ $warned = 0 ]; } || { [ $fp = no ] && [ $warned = 1 ]; }; then
		echo "ok $i $desc: the call at kgr_asm_frame_case+$off $([ $warned = 1 ] && echo 'is flagged, as it must be' || echo 'has its frame')"
	else
		echo "not ok $i $desc"
		sed 's/^/# /' "$mo/objtool.log" | head -n 5
		rc=1
	fi
done
exit $rc
