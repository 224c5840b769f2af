#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# compile-fail.sh KOUT: compile-fail tests of the kernel crate's abstractions, as KTAP.
#
# Each *.rs here (with harness.inc, the module around its case()) is a tiny
# module built out of tree against the kernel build KOUT.  Its "// expect:" line says what must happen: "ok" (it builds; the
# control case, so a broken harness cannot pass the others) or a rustc error
# code (the build fails with that code).  What they show: safe code cannot
# name an arbitrary MSR for host-shared memory, forge a descriptor, publish
# async PF records, write an MSR, or end an interrupt outside the EOI path.
set -uo pipefail
KGR_TAG=compile-fail
. "$(dirname "$0")/../../lib/lib.sh"
kgr_load_env
KOUT=${1:?usage: compile-fail.sh KOUT}
DIR=$(cd "$(dirname "$0")" && pwd)
cases=("$DIR"/*.rs)
echo "KTAP version 1"
echo "1..${#cases[@]}"
i=0
rc=0
for f in "${cases[@]}"; do
	i=$((i + 1))
	name=$(basename "$f" .rs)
	expect=$(sed -n 's|^// expect: ||p' "$f")
	mo="$KGR_CACHE/compile-fail/$(basename "$KOUT")/$name"
	if kgr_test_module_build "$DIR" "$mo" "$KOUT" CASE="$name"; then
		built=1
	else
		built=0
	fi
	case "$expect" in
	ok) [ $built = 1 ] && ok=1 || ok=0 ;;
	E[0-9]*) [ $built = 0 ] && grep -q "error\[$expect\]" "$mo/build.log" && ok=1 || ok=0 ;;
	*) ok=0 && echo "# $name: no valid '// expect:' line" ;;
	esac
	desc="$(sed -n 's|^//! ||p' "$f" | head -n1) ($name: ${expect})"
	if [ $ok = 1 ]; then
		echo "ok $i $desc"
	else
		echo "not ok $i $desc"
		sed 's/^/# /' "$mo/build.log" | grep -E '^# (error|warning)' | head -n 5
		rc=1
	fi
done
exit $rc
