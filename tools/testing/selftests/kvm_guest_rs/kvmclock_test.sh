#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest tests of kvm-clock-rs on the KVM host model (tools/qemu, x-tcg-kvm-pv=on).
# The kernel boots with no-kvmclock, so the in-tree kvm-clock leaves the MSRs
# alone; run-guest --hostctl lets the plan set the model's fault knobs.
#
#   kgr.rtc_base=SECONDS   the -rtc base= of the run (wall clock test)
#   kgr.kvmclock=clamp     only the warp test, expecting the monotonic clamp
#                          (boot with kvmclock-stable-bit=off)
#
# Tests: load and selection, sysfs invariants (pv_features_test), no address
# readable by an unprivileged user, IRQ-context publish stress, warp across
# CPUs, rate against HPET, wall clock, CPU1 offline/online, unload rules and
# load/unload cycles with every kvmclock MSR 0 afterwards, invalid
# parameters, a load failing after setup, host faults at load and at run
# time, GUEST_STOPPED, and a clean kernel log.  The cycles: KGR_CYCLES
# (kgr.cycles=N), 20 by default.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
KC=/sys/kernel/kvm_guest_rs/kvmclock
MSRS="0x4b564d01 0x4b564d00 0x12 0x11"
CYCLES=${KGR_CYCLES:-20}
MODE=$(kgr_arg kvmclock)
MODE=${MODE:-default}
RTC_BASE=$(kgr_arg rtc_base)

ktap_print_header
kgr_skip_unless_kvm
if ! grep -qw no-kvmclock /proc/cmdline; then
	ktap_skip_all "the in-tree kvm-clock runs (boot with no-kvmclock)"
	exit 4
fi
if [ "$MODE" = clamp ]; then
	ktap_set_plan 4
else
	ktap_set_plan 41
fi

dmesg_mark=$(dmesg | wc -l)
total() { cat "$KC/$1"; }
msrs_zero() { "$ST/msr_read" $MSRS >/tmp/msr.out 2>&1; }
# warp FILE: run the warp test of FILE on every online CPU at once.
warp() {
	: >/tmp/warp.out
	for c in $(seq 0 $(($(nproc) - 1))); do
		taskset -c "$c" cat "$1" >>/tmp/warp.out &
	done
	wait
	cat /tmp/warp.out | while read -r l; do ktap_print_msg "$l"; done
}
warp_sum() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) s += $(i + 1) } END { print s + 0 }' /tmp/warp.out; }
# set_fault VALUE: x-kvmclock-fault of every vCPU.
set_fault() { kgr_knob x-kvmclock-fault "\"$1\""; }

if [ "$MODE" = clamp ]; then
	kgr_result '"$ST/modload" $MOD >/dev/null' "clamp: insmod with kvmclock-stable-bit=off"
	kgr_result '[ "$(total stable_trusted)" = 0 ]' "clamp: TSC_STABLE is not trusted without the CPUID bit"
	warp $D/kvmclock/warp
	w=$(warp_sum warps)
	lw=$(warp_sum local_warps)
	cl=$(warp_sum clamps)
	kgr_result '[ "$w" = 0 ] && [ "$lw" = 0 ] && [ "$(warp_sum reads)" -ge 2000000 ] && [ "$cl" -gt 0 ]' \
		"clamp: warp test on every CPU: 0 warps ($w, $lw), clamps applied ($cl)"
	unload
	kgr_result 'msrs_zero' "clamp: every kvmclock MSR is 0 after rmmod"
	ktap_finished
fi

# 1-6: load, selection, counters.
kgr_result '! grep -q kvm-clock $CS/available_clocksource' "no kvm-clock before insmod (no-kvmclock)"
kgr_result '"$ST/modload" $MOD >/dev/null' "insmod succeeds"
kgr_result '[ "$(current)" = kvm-clock-rs ]' "current clocksource becomes kvm-clock-rs"
r0=$(total reads)
sleep 1
r1=$(total reads)
kgr_result '[ "$r1" -gt "$r0" ]' "reads counter moves ($r0 -> $r1)"
kgr_result '[ "$(total registrations)" = "$(nproc)" ] && [ "$(total invalid_records)" = 0 ]' \
	"one registration per online CPU ($(total registrations)/$(nproc))"
kgr_result 'new_dmesg | grep -q "kvm-clock-rs: MSR_KVM_SYSTEM_TIME_NEW, "' "the registration is logged"

# 7: sysfs invariants.
out=$("$ST/pv_features_test" 2>&1)
rc=$?
echo "$out" | grep -E '^(not )?ok ' | while read -r l; do ktap_print_msg "pv_features_test: $l"; done
kgr_result '[ $rc = 0 ] && ! echo "$out" | grep -q "^not ok" && echo "$out" | grep -q "^ok .*msr_holds_the_registered_record$"' \
	"pv_features_test: sysfs counters and MSRs consistent"

# 7a: no address for unprivileged users: the files a user can read (as uid
# 65534) show none of the record addresses root sees in cpuN/msr_value.
unpriv_no_address() {
	"$ST/unpriv_read" /sys/kernel/kvm_guest_rs >/tmp/unpriv.out 2>&1 || return 1
	grep -q '^read .*/kvmclock/reads: ' /tmp/unpriv.out || return 1
	grep -q '^read .*/msr_value: ' /tmp/unpriv.out && return 1
	for f in $KC/cpu*/msr_value; do
		v=$(cat "$f")
		[ "$v" = 0x0 ] && continue
		a=$((v & ~63))
		for pat in "$(printf '%x' "$v")" "$(printf '%x' "$a")" "$((v))" "$a"; do
			grep '^read ' /tmp/unpriv.out | grep -qi "$pat" && ktap_print_msg "address $pat readable" && return 1
		done
	done
	return 0
}
unpriv_no_address
rc=$?
[ $rc = 0 ] || grep -v '^read ' /tmp/unpriv.out | head -n 5 | while read -r l; do ktap_print_msg "unpriv_read: $l"; done
kgr_result '[ $rc = 0 ]' "sysfs: no record address in any file an unprivileged user can read"

# 7b: enable/disable of one CPU's record from process and hard-IRQ context at
# once: the MSR always holds what the owner believes (publish_stress).
: >/tmp/stress.out
for c in $(seq 0 $(($(nproc) - 1))); do
	taskset -c "$c" cat $D/publish_stress >>/tmp/stress.out 2>&1
done
while read -r l; do ktap_print_msg "publish_stress: $l"; done </tmp/stress.out
kgr_result '[ "$(grep -c " mismatches 0$" /tmp/stress.out)" = "$(nproc)" ] && ! grep -q " irq_toggles 0 " /tmp/stress.out' \
	"shared memory: IRQ-context and process-context enable/disable never disagree with the MSR"

# 8-9: warp test on every CPU at once, TSC_STABLE trusted.
warp $D/kvmclock/warp
kgr_result '[ "$(warp_sum warps)" = 0 ] && [ "$(warp_sum local_warps)" = 0 ] && [ "$(warp_sum reads)" -ge 4000000 ]' \
	"warp test, stable: 0 warps in $(warp_sum reads) reads"
kgr_result '[ "$(warp_sum clamps)" = 0 ] && [ "$(total stable_trusted)" = 1 ]' \
	"warp test, stable: TSC_STABLE trusted, no clamp needed ($(warp_sum clamps))"

# 10-11: rate against HPET over 5 s, and against the TSC if it is usable.
rate() {
	echo "$1" >$CS/current_clocksource
	[ "$(current)" = "$1" ] || return 2
	set -- $(cat $D/kvmclock/read)
	k0=$1 m0=$2
	sleep 5
	set -- $(cat $D/kvmclock/read)
	k1=$1 m1=$2
	ratio=$(awk -v a=$((k1 - k0)) -v b=$((m1 - m0)) 'BEGIN { printf "%.6f", a / b }')
	ktap_print_msg "rate: kvm-clock-rs $((k1 - k0)) ns / $(current) $((m1 - m0)) ns = $ratio"
	awk -v r="$ratio" 'BEGIN { exit !(r > 0.999 && r < 1.001) }'
}
if grep -qw hpet $CS/available_clocksource; then
	kgr_result 'rate hpet' "rate: kvm-clock-rs agrees with hpet within 0.1% over 5 s"
else
	ktap_test_skip "rate: kvm-clock-rs agrees with hpet within 0.1% over 5 s (no hpet)"
fi
if grep -qw tsc $CS/available_clocksource; then
	rate tsc
	case $? in
	0) ktap_test_pass "rate: kvm-clock-rs agrees with tsc within 0.1% over 5 s" ;;
	2) ktap_test_skip "rate: kvm-clock-rs agrees with tsc within 0.1% over 5 s (tsc not selectable)" ;;
	*) ktap_test_fail "rate: kvm-clock-rs agrees with tsc within 0.1% over 5 s" ;;
	esac
else
	ktap_test_skip "rate: kvm-clock-rs agrees with tsc within 0.1% over 5 s (no tsc)"
fi
echo kvm-clock-rs >$CS/current_clocksource

# 12-13: wall clock.
epoch=$(total wall_clock_epoch)
ktap_print_msg "wall clock epoch $epoch, -rtc base ${RTC_BASE:-?}"
if [ -n "$RTC_BASE" ]; then
	kgr_result '[ "${epoch%.*}" = "$RTC_BASE" ]' "wall clock epoch equals the -rtc base ($epoch)"
else
	ktap_test_skip "wall clock epoch equals the -rtc base (no kgr.rtc_base)"
fi
now=$(date +%s)
wall=$(total wall_clock)
kgr_result '[ $((${wall%.*} - now)) -le 2 ] && [ $((now - ${wall%.*})) -le 2 ]' \
	"wall clock (epoch + kvmclock) is within 2 s of CLOCK_REALTIME ($wall vs $now)"

# 14-17: CPU1 offline/online $CYCLES times while CPU0 runs the warp test.
if [ -w /sys/devices/system/cpu/cpu1/online ]; then
	reg0=$(cat $KC/cpu1/registrations)
	taskset -c 0 cat $D/kvmclock/warp >/tmp/hp-warp.out &
	wpid=$!
	ok=1
	kgr_cpu1_cycles "$CYCLES" $KC/cpu1/enabled || ok=0
	wait $wpid
	ktap_print_msg "$(cat /tmp/hp-warp.out)"
	reg1=$(cat $KC/cpu1/registrations)
	kgr_result '[ $ok = 1 ]' "hotplug: CPU1 offline/online $CYCLES times, record unregistered while offline"
	kgr_result '[ $((reg1 - reg0)) = $CYCLES ]' "hotplug: $CYCLES registrations counted on CPU1 ($reg0 -> $reg1)"
	kgr_result 'grep -q " warps 0 .* local_warps 0 " /tmp/hp-warp.out' "hotplug: no warp on CPU0 meanwhile"
	"$ST/pv_features_test" >/tmp/pvf.out 2>&1
	rc=$?
	grep -E '^(not ok|#  )' /tmp/pvf.out | head -n 8 | while read -r l; do ktap_print_msg "$l"; done
	kgr_result '[ $rc = 0 ]' "hotplug: sysfs counters and MSRs consistent afterwards"
else
	for t in "CPU1 offline/online $CYCLES times" "$CYCLES registrations counted" "no warp" "consistent afterwards"; do
		ktap_test_skip "hotplug: $t (no CPU1 hotplug)"
	done
fi

# 18-19: GUEST_STOPPED: the model sets it when the VM resumes.
set_stopped_knob() { kgr_knob x-kvmclock-guest-stopped "$1"; }
g0=$(total guest_stopped)
if set_stopped_knob true && hostq pause 1 >/dev/null; then
	sleep 1
	g1=$(total guest_stopped)
	kgr_result '[ "$g1" -gt "$g0" ]' "guest stopped: PVCLOCK_GUEST_STOPPED counted ($g0 -> $g1)"
	hostq pause 1 >/dev/null
	sleep 1
	g2=$(total guest_stopped)
	kgr_result '[ "$g2" -gt "$g1" ]' "guest stopped: a second stop is counted again ($g1 -> $g2)"
	set_stopped_knob false
else
	ktap_test_skip "guest stopped: PVCLOCK_GUEST_STOPPED counted (no host channel)"
	ktap_test_skip "guest stopped: a second stop is counted again (no host channel)"
fi

# 20-22: unload rules.
kgr_result '! rmmod kvm_guest_rs 2>/dev/null && loaded' "rmmod is refused while kvm-clock-rs is current (timekeeping pins the module)"
kgr_result 'unload && ! loaded' "unbind, then rmmod succeeds"
kgr_result 'msrs_zero' "every kvmclock MSR is 0 on every CPU after rmmod"
ktap_print_msg "$(tr '\n' ';' </tmp/msr.out)"

# 23-24: load/unload cycles.
ok=1
i=0
while [ $i -lt "$CYCLES" ]; do
	if ! "$ST/modload" $MOD >/dev/null || [ "$(current)" != kvm-clock-rs ] || ! unload || ! msrs_zero; then
		ok=0
		ktap_print_msg "cycle $i failed: $(tr '\n' ';' </tmp/msr.out)"
	fi
	i=$((i + 1))
done
kgr_result '[ $ok = 1 ]' "$CYCLES insmod/rmmod cycles, every kvmclock MSR 0 on every CPU after each"
kgr_result '! loaded && ! grep -qw kvm-clock-rs $CS/available_clocksource' "no trace left after the cycles"

# 25-27: invalid parameters.
for v in 500 -1 abc; do
	out=$("$ST/modload" $MOD kvmclock_rating=$v 2>&1)
	kgr_result 'echo "$out" | grep -q "(EINVAL)" && ! loaded' "invalid kvmclock_rating=$v is refused with EINVAL"
done

# 27a: a load that fails after kvm-clock-rs is set up never hands the
# clocksource to timekeeping (it is registered only once the module is live).
mark=$(dmesg | wc -l)
cs0=$(current)
out=$("$ST/modload" $MOD inject_init_failure=1 2>&1)
kgr_result 'echo "$out" | grep -q "(EAGAIN)" && ! loaded && [ "$(current)" = "$cs0" ] && ! dmesg | tail -n +$((mark + 1)) | grep -q "Switched to clocksource kvm-clock-rs" && msrs_zero' \
	"a load failing after setup never registers the clocksource, all MSRs 0"

# 28-33: host faults at load: refused, logged, nothing left registered.
for f in odd-version never-written mul-zero; do
	if ! set_fault "$f"; then
		ktap_test_skip "fault $f at load: insmod refused with EIO (no host channel)"
		ktap_test_skip "fault $f at load: logged, all MSRs 0 (no host channel)"
		continue
	fi
	mark=$(dmesg | wc -l)
	out=$("$ST/modload" $MOD 2>&1)
	kgr_result 'echo "$out" | grep -q "(EIO)" && ! loaded' "fault $f at load: insmod refused with EIO"
	kgr_result 'dmesg | tail -n +$((mark + 1)) | grep -q "unusable pvclock record" && msrs_zero' \
		"fault $f at load: logged, all MSRs 0"
	set_fault none
done

# 34-37: fault at run time on CPU1: reads fall back, time keeps going, recovery.
if "$ST/modload" $MOD >/dev/null && p=$(hostq cpu-path 1 2>/dev/null); then
	f0=$(cat $KC/cpu1/fallbacks)
	hostq qom-set "$p" x-kvmclock-fault '"odd-version"' >/dev/null
	t0=$(cat /proc/uptime)
	for i in 1 2 3 4 5; do taskset -c 1 cat $D/kvmclock/read >/dev/null; sleep 0.2; done
	taskset -c 1 cat $D/ktime_bench >/dev/null
	f1=$(cat $KC/cpu1/fallbacks)
	t1=$(cat /proc/uptime)
	kgr_result '[ "$f1" -gt "$f0" ] && dmesg | grep -q "CPU1: the host.s pvclock record became unusable (Busy"' \
		"fault at run time: CPU1 reads fall back to the reference record, logged ($f0 -> $f1)"
	kgr_result 'awk -v a="${t0% *}" -v b="${t1% *}" "BEGIN { exit !(b > a) }"' "fault at run time: time keeps going ($t0 -> $t1)"
	warp $D/kvmclock/warp
	kgr_result '[ "$(warp_sum warps)" = 0 ] && [ "$(warp_sum local_warps)" = 0 ]' "fault at run time: no warp while CPU1 falls back"
	hostq qom-set "$p" x-kvmclock-fault '"none"' >/dev/null
	f2=$(cat $KC/cpu1/fallbacks)
	for i in 1 2 3; do taskset -c 1 cat $D/kvmclock/read >/dev/null; done
	f3=$(cat $KC/cpu1/fallbacks)
	kgr_result '[ "$f3" = "$f2" ]' "fault at run time: CPU1 uses its own record again after the fault is lifted"
	unload
else
	for t in "reads fall back" "time keeps going" "no warp" "own record again"; do
		ktap_test_skip "fault at run time: $t (no module or host channel)"
	done
fi

# 38: a clean kernel log (lockdep, KASAN, atomic-sleep checks in the debug flavour).
# The clocksource watchdog must never have marked kvm-clock-rs unstable either.
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log "clocksource kvm-clock-rs unstable|possible recursive locking|circular locking|inconsistent lock state|sleeping function called" </tmp/dmesg.new
ktap_finished
