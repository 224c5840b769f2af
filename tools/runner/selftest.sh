#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of run-guest's verdict logic, with fake QEMU binaries:
# exit 0/1 from the guest's KTAP block, 2 without a verdict (silent guest,
# timeout), 3 for usage and accelerator errors (including the silence
# watchdog of ACCEL=kvm), the KTAP extraction and that no stale KTAP survives.
# KTAP output.
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: >"$T/bzImage"
: >"$T/initrd"
n=0
fails=0
result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2" && fails=$((fails + 1)); fi
}
# fake NAME BODY: a QEMU stand-in; BODY is shell run with the log path in $log.
fake() {
	cat >"$T/$1" <<EOS
#!/bin/sh
log=\$(printf '%s\n' "\$@" | sed -n 's/^file,id=kgrcon,path=\([^,]*\),.*/\1/p' | head -n1)
$2
EOS
	chmod +x "$T/$1"
}
run() { "$DIR/run-guest" --kernel "$T/bzImage" --initrd "$T/initrd" --plan x --log "$T/log" --ktap "$T/ktap" "$@" 2>"$T/err"; }

echo "TAP version 13"
echo "1..12"
fake pass 'printf "noise\r\nKGR-KTAP-BEGIN\r\nok 1 a\r\nKGR-KTAP-END rc=0\r\n" >"$log"'
run --qemu "$T/pass"
result $? "guest verdict rc=0 gives exit 0"
printf 'ok 1 a\n' | cmp -s - "$T/ktap"
result $? "KTAP block is extracted without markers and CRs"
fake fail 'printf "KGR-KTAP-BEGIN\nnot ok 1 a\nKGR-KTAP-END rc=1\n" >"$log"'
run --qemu "$T/fail"
[ $? = 1 ]
result $? "guest verdict rc=1 gives exit 1"
fake silent 'echo "Kernel panic" >"$log"; exit 0'
echo "ok 1 from the previous run" >"$T/ktap"
run --qemu "$T/silent"
[ $? = 2 ] && grep -q "Kernel panic" "$T/err"
result $? "a guest without verdict gives exit 2 and shows the console tail"
[ ! -e "$T/ktap" ]
result $? "a run without verdict leaves no KTAP file, not even the previous run's"
fake hang 'sleep 30'
run --qemu "$T/hang" --timeout 1
[ $? = 2 ] && grep -q "timeout" "$T/err"
result $? "a hanging guest is stopped by the timeout (exit 2)"
fake kvmfail 'echo "error: failed to set MSR 0x10a" >&2; exit 134'
KGR_DEV_KVM=/dev/null run --qemu "$T/kvmfail" --accel kvm
[ $? = 3 ] && grep -q "ACCEL=kvm: /dev/kvm cannot run this guest" "$T/err" && grep -q "failed to set MSR" "$T/err"
result $? "ACCEL=kvm refused by KVM gives exit 3 with QEMU's reason"
# A /dev/kvm that takes the guest but never runs it (restricted PVM-style
# KVM): QEMU spins without a console byte until the silence watchdog.
fake mute 'sleep 30'
start=$(date +%s)
KGR_DEV_KVM=/dev/null run --qemu "$T/mute" --accel kvm --silence 1 --timeout 60
[ $? = 3 ] && [ $(($(date +%s) - start)) -lt 20 ] && grep -q "ACCEL=kvm: the guest printed nothing" "$T/err" &&
	grep -q "use ACCEL=tcg" "$T/err"
result $? "ACCEL=kvm with a silent console is stopped by the watchdog (exit 3, names ACCEL=tcg)"
fake slow 'printf "booting\r\n" >"$log"; sleep 2; printf "KGR-KTAP-BEGIN\r\nok 1 a\r\nKGR-KTAP-END rc=0\r\n" >>"$log"'
KGR_DEV_KVM=/dev/null run --qemu "$T/slow" --accel kvm --silence 1
result $? "ACCEL=kvm: the watchdog leaves a guest alone once it has printed"
KGR_DEV_KVM=$T/no-such-kvm run --qemu "$T/pass" --accel kvm
[ $? = 3 ] && grep -q "does not exist" "$T/err"
result $? "ACCEL=kvm without /dev/kvm gives exit 3 and says so"
"$DIR/run-guest" --kernel "$T/bzImage" --plan x 2>/dev/null
[ $? = 3 ]
result $? "missing --initrd is a usage error (exit 3)"
run --qemu "$T/no-such-qemu"
[ $? = 3 ] && grep -q "not found" "$T/err"
result $? "a missing QEMU binary gives exit 3"
[ $fails = 0 ]
