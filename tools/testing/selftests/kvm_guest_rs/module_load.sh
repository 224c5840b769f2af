#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Load and unload tests of the kvm_guest_rs module.
#
# Off KVM the module must refuse with -ENODEV, log one line and leave no
# trace; on KVM it must load, log what it detected and unload cleanly, many
# times.  Invalid parameter values are refused with -EINVAL everywhere.  At
# the end the kernel log must hold no warning, BUG, lockdep or KASAN report.
#
# Modules are loaded with ./modload (one finit_module() call, exact errno).
# Environment: KGR_MODULE (path of kvm_guest_rs.ko; default: next to this
# script's ../../modules, then modinfo's path).  Needs root.

DIR="$(dirname "$(readlink -f "$0")")"
. "$DIR/../kselftest/ktap_helpers.sh"
. "$DIR/dmesg_splats.sh"

MOD=${KGR_MODULE:-$DIR/../../modules/kvm_guest_rs.ko}
NAME=kvm_guest_rs
PARAMS="kvmclock steal_time pv_eoi async_pf"
CYCLES=${KGR_CYCLES:-10}

ktap_print_header
if [ "$(id -u)" != 0 ]; then
	ktap_skip_all "must be run as root"
	exit "$KSFT_SKIP"
fi
if [ ! -f "$MOD" ]; then
	ktap_skip_all "module $MOD not found"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 12

dmesg_mark=$(dmesg | wc -l)
new_dmesg() { dmesg | tail -n +$((dmesg_mark + 1)); }
gone() { ! grep -q "^$NAME " /proc/modules && [ ! -e "/sys/module/$NAME" ]; }
# unload: a clocksource in use pins its module (timekeeping holds a reference),
# so switch away from kvm-clock-rs first.
CS=/sys/devices/system/clocksource/clocksource0
unload() {
	if grep -qw kvm-clock-rs "$CS/available_clocksource" 2>/dev/null; then
		echo kvm-clock-rs >"$CS/unbind_clocksource"
	fi
	rmmod "$NAME"
}

if kvm=$("$DIR/kvm_detect"); then
	on_kvm=1
	ktap_print_msg "on KVM: $kvm"
else
	on_kvm=0
	ktap_print_msg "not on KVM: $kvm"
fi

# 1-3: off KVM, refusal.
if [ $on_kvm = 0 ]; then
	out=$("$DIR/modload" "$MOD" 2>&1)
	rc=$?
	ktap_print_msg "$out"
	if [ $rc != 0 ] && echo "$out" | grep -q "(ENODEV)"; then
		ktap_test_pass "off KVM, insmod fails with ENODEV"
	else
		ktap_test_fail "off KVM, insmod fails with ENODEV"
	fi
	n=$(new_dmesg | grep -c "$NAME: .*refusing to load")
	if [ "$n" = 1 ]; then
		ktap_test_pass "off KVM, the refusal is logged in one line"
	else
		ktap_test_fail "off KVM, the refusal is logged in one line (found $n)"
	fi
	ktap_test_result "off KVM, the refusal leaves no trace" gone
else
	ktap_test_skip "off KVM, insmod fails with ENODEV (on KVM)"
	ktap_test_skip "off KVM, the refusal is logged in one line (on KVM)"
	ktap_test_skip "off KVM, the refusal leaves no trace (on KVM)"
fi

# 4-7: invalid values of each feature switch.
for p in $PARAMS; do
	out=$("$DIR/modload" "$MOD" "$p=maybe" 2>&1)
	rc=$?
	if [ $rc != 0 ] && echo "$out" | grep -q "(EINVAL)" && gone; then
		ktap_test_pass "invalid value $p=maybe is refused with EINVAL"
	else
		ktap_print_msg "$p=maybe: $out"
		ktap_test_fail "invalid value $p=maybe is refused with EINVAL"
	fi
done

# 8-11: on KVM, load, detect, unload, cycles.
if [ $on_kvm = 1 ]; then
	mark=$(dmesg | wc -l)
	ktap_test_result "on KVM, insmod succeeds" "$DIR/modload" "$MOD"
	if dmesg | tail -n +$((mark + 1)) | grep -q "$NAME: KVM detected: CPUID base"; then
		ktap_test_pass "on KVM, the detection is logged"
	else
		ktap_test_fail "on KVM, the detection is logged"
	fi
	if unload && gone; then
		ktap_test_pass "on KVM, rmmod succeeds and leaves no trace"
	else
		ktap_test_fail "on KVM, rmmod succeeds and leaves no trace"
	fi
	ok=1
	i=0
	while [ $i -lt "$CYCLES" ]; do
		"$DIR/modload" "$MOD" kvmclock=$((i % 2)) steal_time=$(((i / 2) % 2)) >/dev/null && unload && gone || ok=0
		i=$((i + 1))
	done
	if [ $ok = 1 ]; then
		ktap_test_pass "on KVM, $CYCLES insmod/rmmod cycles"
	else
		ktap_test_fail "on KVM, $CYCLES insmod/rmmod cycles"
	fi
else
	ktap_test_skip "on KVM, insmod succeeds (not on KVM)"
	ktap_test_skip "on KVM, the detection is logged (not on KVM)"
	ktap_test_skip "on KVM, rmmod succeeds and leaves no trace (not on KVM)"
	ktap_test_skip "on KVM, insmod/rmmod cycles (not on KVM)"
fi

# 12: a clean kernel log (lockdep, KASAN, atomic-sleep checks are on in the debug flavour).
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log </tmp/dmesg.new
ktap_finished
