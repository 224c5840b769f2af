#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest tests of kvm-clock-rs in the vDSO (H4, pvclock_vdso_page_get()), on the
# KVM host model, booted with no-kvmclock (the in-tree kvm-clock keeps its own
# vDSO page otherwise).
#
# Tests: the vDSO clock mode at load; clock_gettime() runs in user mode only
# (utime/stime of /proc/self/stat: a system call per read shows as system
# time); a process maps the page CPU 0's record is in (same words), and that
# page's frame is the same across loads: the kernel's page, never freed, so no
# process maps memory a module freed; clock_gettime() loops on
# every CPU across KGR_CYCLES (20) unbind -> rmmod -> insmod -> bind cycles without going
# backwards or faulting; with the host's stable bit cleared: no vDSO mode,
# logged, system calls; CPU 0's record stuck at an odd version (the vDSO's
# vread_pvclock() would spin): unregistered, the vDSO withdrawn, logged, and
# clock_gettime() still returns; a clean kernel log.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
KC=/sys/kernel/kvm_guest_rs/kvmclock
MSRS="0x4b564d01 0x4b564d00"
CYCLES=${KGR_CYCLES:-20}

ktap_print_header
kgr_skip_unless_kvm
if ! grep -qw no-kvmclock /proc/cmdline; then
	ktap_skip_all "the in-tree kvm-clock owns the vDSO page (boot with no-kvmclock)"
	exit 4
fi
ktap_set_plan 12

dmesg_mark=$(dmesg | wc -l)
msrs_zero() { "$ST/msr_read" $MSRS >/tmp/msr.out 2>&1; }
# stime_of [N]: N reads of clock_gettime() (3000000: about a second in the
# vDSO); where each read is a system call (ten times that, an HPET read
# longer still) 300000, still hundreds of ticks. user_only: the last reads
# spent at most 1/10 of their ticks in the kernel; kernel_mostly: at least
# half (a system call per read spends most of them there), out of some ticks.
stime_of() { "$ST/vdso_clock" stime "${1:-3000000}" >/tmp/stime.out && cat /tmp/stime.out; }
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' /tmp/stime.out; }
user_only() { [ $(($(field stime) * 10)) -le $(($(field utime) + $(field stime))) ]; }
kernel_mostly() {
	[ $(($(field utime) + $(field stime))) -gt 0 ] &&
		[ $(($(field stime) * 2)) -ge $(($(field utime) + $(field stime))) ]
}
page_pfn() { printf '%#x' $(($(cat $KC/vdso_page) >> 12)); }
# same_page: what a process maps as the vDSO's pvclock slot is CPU 0's record
# (the host may rewrite it between the two reads: a few tries).
same_page() {
	for _t in 1 2 3 4 5; do
		[ "$("$ST/vdso_clock" page)" = "$(cat $KC/cpu0/record)" ] && return 0
	done
	return 1
}

loaded && unload
# 1-2: the mode at load.
kgr_result '"$ST/modload" $MOD >/dev/null && [ "$(current)" = kvm-clock-rs ]' "insmod: kvm-clock-rs is the current clocksource"
kgr_result '[ "$(cat $KC/vdso)" = pvclock ] && [ "$(cat $KC/vdso_page)" != none ]' \
	"the clocksource has the vDSO clock mode, its records in the kernel's page"
# 3: the vDSO path is taken.
ktap_print_msg "vDSO: $(stime_of)"
kgr_result 'user_only' "clock_gettime() runs in user mode (stime <= 1/10 of the ticks)"
# 4: the mapped page is the kernel's.
pfn0=$(page_pfn)
ktap_print_msg "[vvar_vclock] pvclock slot: $("$ST/vdso_clock" page); CPU0: $(cat $KC/cpu0/record); page frame $pfn0"
kgr_result 'same_page' "a process maps the page of CPU 0's record, the kernel's page (frame $pfn0)"

# 5-6: readers on every CPU across unbind -> rmmod -> insmod -> bind.
rm -f /tmp/vdso.stop
"$ST/vdso_clock" loop /tmp/vdso.stop >/tmp/vdso.loop 2>&1 &
loop_pid=$!
ok=1
i=0
while [ $i -lt "$CYCLES" ]; do
	if ! unload || ! msrs_zero || ! "$ST/modload" $MOD >/dev/null ||
		! echo kvm-clock-rs >$CS/current_clocksource || [ "$(current)" != kvm-clock-rs ] ||
		[ "$(cat $KC/vdso)" != pvclock ] || [ "$(page_pfn)" != "$pfn0" ] ||
		! same_page; then
		ok=0
		ktap_print_msg "cycle $i failed: $(current) $(cat $KC/vdso 2>&1) $(tr '\n' ';' </tmp/msr.out)"
	fi
	i=$((i + 1))
done
touch /tmp/vdso.stop
wait $loop_pid
rc=$?
ktap_print_msg "$(cat /tmp/vdso.loop)"
kgr_result '[ $ok = 1 ]' "$CYCLES unbind/rmmod/insmod/bind cycles: MSRs 0 after each rmmod, the same page frame after each insmod"
kgr_result '[ $rc = 0 ] && grep -q " warps 0 " /tmp/vdso.loop' \
	"clock_gettime() on every CPU across the cycles: no fault, never backwards"

# 7: no vDSO once kvm-clock-rs is not current (the fallback keeps working).
echo kvm-clock-rs >$CS/unbind_clocksource
ktap_print_msg "$(current): $(stime_of 300000)"
kgr_result '[ "$(current)" != kvm-clock-rs ] && "$ST/clock_bench" bench 1000 >/dev/null' \
	"unbound: user space reads the next clocksource"
unload

# 8-9: the host's stable bit not set: no vDSO mode, logged, system calls.
if hostq cpu-path 0 >/dev/null 2>&1; then
	kgr_knob x-kvmclock-clear-stable true
	mark=$(dmesg | wc -l)
	"$ST/modload" $MOD >/dev/null
	kgr_result '[ "$(cat $KC/vdso)" = none ] && dmesg | tail -n +$((mark + 1)) | grep -q "not TSC_STABLE: clock_gettime() stays a system call"' \
		"stable bit clear: no vDSO mode, logged"
	ktap_print_msg "no vDSO: $(stime_of 300000)"
	kgr_result '[ "$(current)" = kvm-clock-rs ] && kernel_mostly' "stable bit clear: clock_gettime() is a system call (stime >= half the ticks)"
	unload
	kgr_knob x-kvmclock-clear-stable false
else
	ktap_test_skip "stable bit clear: no vDSO mode, logged (no host channel)"
	ktap_test_skip "stable bit clear: clock_gettime() is a system call (no host channel)"
fi

# 10-11: CPU 0's record, the one the vDSO reads, stuck at an odd version.
# Without the withdrawal every clock_gettime() would spin in vread_pvclock():
# the reads below run under timeout, so that failure fails these tests.
if p=$(hostq cpu-path 0 2>/dev/null); then
	"$ST/modload" $MOD >/dev/null
	# Before the fault: the vDSO reads the clock (else the tests prove nothing).
	stime_of >/dev/null
	pre=0
	[ "$(current)" = kvm-clock-rs ] && [ "$(cat $KC/vdso)" = pvclock ] && user_only && pre=1
	mark=$(dmesg | wc -l)
	hostq qom-set "$p" x-kvmclock-fault '"odd-version"' >/dev/null
	# CPU 0 finds it at its next clock read (a tick at the latest): make
	# reads there until the host has written the record (up to 5 s).
	for _t in 1 2 3 4 5 6 7 8 9 10; do
		taskset -c 0 cat $D/kvmclock/read >/dev/null
		[ "$(cat $KC/vdso)" = withdrawn ] && break
		sleep 0.5
	done
	kgr_result '[ $pre = 1 ] && [ "$(cat $KC/vdso)" = withdrawn ] && [ "$(cat $KC/cpu0/enabled)" = 0 ] &&
		dmesg | tail -n +$((mark + 1)) | grep -q "CPU0: the host.s pvclock record became unusable (.*while the vDSO reads it; unregistered it"' \
		"CPU0's record stuck at an odd version: unregistered, the vDSO withdrawn, logged"
	ok=0
	if timeout 60 "$ST/vdso_clock" stime 300000 >/tmp/stime.out &&
		timeout 60 "$ST/clock_bench" bench 1000 >/dev/null; then
		ok=1
	fi
	ktap_print_msg "withdrawn: $(cat /tmp/stime.out)"
	kgr_result '[ $pre = 1 ] && [ $ok = 1 ] && kernel_mostly' \
		"withdrawn: clock_gettime() returns, as a system call"
	hostq qom-set "$p" x-kvmclock-fault '"none"' >/dev/null
	unload
else
	ktap_test_skip "CPU0's record stuck at an odd version: the vDSO withdrawn (no host channel)"
	ktap_test_skip "withdrawn: clock_gettime() returns, as a system call (no host channel)"
fi

# 12: a clean kernel log (lockdep, KASAN, atomic-sleep checks in the debug flavour).
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log "possible recursive locking|circular locking|inconsistent lock state|sleeping function called" </tmp/dmesg.new
ktap_finished
