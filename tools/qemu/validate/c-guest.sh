#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Plan "validate-model": the unmodified in-tree C guest (CONFIG_KVM_GUEST)
# judges the QEMU host model.  Booted by tools/make/validate-model.sh with
# -cpu ...,x-tcg-kvm-pv=on, a known tsc-frequency and -rtc base, a PCI serial
# port, and the host channel (hostq) to read the model's counters.
# Expected values come from the kernel command line: kgr.tsc_khz=,
# kgr.rtc_base= (epoch seconds), kgr.steal_pct= (injected steal share).
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
V=/kgr/validate

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^kgr\.$1=//p" | tail -n1; }
# stat NAME...: model counters x-kvm-pv-NAME, each summed over all vCPUs, in
# one snapshot taken with the VM stopped (hostctl cpu-sum); prints the sums
# in order.  The host channel's own serial traffic causes interrupts, so
# counters read one by one would not belong to the same instant.
stat() {
	req=""
	for n in "$@"; do req="$req x-kvm-pv-$n"; done
	hostq cpu-sum $req | awk '{ printf "%s%s", sep, $2; sep = " " } END { print "" }'
}
has_stat() { p=$(hostq cpu-path 0) && hostq qom-get "$p" "x-kvm-pv-$1" >/dev/null 2>&1; }
check() { # check DESCRIPTION CONDITION-COMMAND...
	d=$1
	shift
	if "$@"; then ktap_test_pass "$d"; else ktap_test_fail "$d"; fi
}
dmesg_has() { dmesg | grep -q -- "$1"; }
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

hyp() { awk -v c=$((2 + $1)) '/^ *HYP:/ { print $c }' /proc/interrupts; }
ncpu=$(grep -c '^processor' /proc/cpuinfo)

ktap_print_header
ktap_set_plan 24

# --- detection and kvmclock ------------------------------------------------
check "C guest detects KVM" dmesg_has "Hypervisor detected: KVM"
check "kvm-clock uses MSRs 4b564d01 and 4b564d00" dmesg_has "kvm-clock: Using msrs 4b564d01 and 4b564d00"
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
check "current clocksource is kvm-clock (got $cs)" [ "$cs" = kvm-clock ]
# kvm_sched_clock_init() clears sched_clock stability unless vCPU0's record
# has PVCLOCK_TSC_STABLE_BIT and CPUID has CLOCKSOURCE_STABLE_BIT.
check "pvclock STABLE bit honoured (sched_clock marked stable)" dmesg_has "sched_clock: Marking stable"
khz=$(arg tsc_khz)
mhz="$((khz / 1000)).$(printf '%03d' $((khz % 1000)))"
check "TSC frequency from pvclock is exact ($mhz MHz)" dmesg_has "tsc: Detected $mhz MHz processor"
n=$(stat pvclock-writes)
check "model wrote pvclock records ($n)" [ "${n:-0}" -ge 2 ]

# --- wall clock ---------------------------------------------------------------
# With -rtc clock=vm the model's wall clock epoch (wall time at kvmclock 0)
# is exactly the -rtc base.  The guest's realtime at CLOCK_BOOTTIME 0 is
# epoch + kvmclock at timekeeping start, which kvmclock_init() logs (within
# the few ms between the two) as the sched_clock offset.
base=$(arg rtc_base)
off_ns=$(dmesg | sed -n 's/.*kvm-clock: using sched offset of \([0-9]*\) cycles.*/\1/p' | head -n1)
set -- $($V/clocks)
err_us=$((($1 - $2 - ${off_ns:-0} - base * 1000000000) / 1000))
ktap_print_msg "wall clock: realtime - boottime = $(($1 - $2)) ns, kvmclock at boot ${off_ns:-?} ns, -rtc base $base s: error $err_us us"
# CLOCK_BOOTTIME starts at sched_clock (kvmclock minus that offset), so the
# difference is the epoch to within the gap between two reads at boot.
check "wall clock equals the -rtc base (error $err_us us, |error| <= 50 ms)" within $err_us -50000 50000
n=$(stat wallclock-writes)
check "model wrote the wall clock ($n)" [ "${n:-0}" -ge 1 ]

# --- PV EOI under an interrupt storm mixing edge and level interrupts -------
# Judged by what the guest does, not by its boot log: "eoi() replaced with
# kvm_guest_apic_eoi_write" names the function only with CONFIG_KALLSYMS.
# The model offers PV_EOI (CPUID bit 6, from info kvm-pv), the guest enabled
# MSR_KVM_PV_EOI_EN on every vCPU (read back in the guest), and the model
# found armed bytes cleared by the guest, which only its PV eoi() does.
offered=0
for f in $(hostq hmp info kvm-pv | sed -n 's/^CPU #[0-9]*: features \(0x[0-9a-fA-F]*\).*/\1/p'); do
	[ $(((f >> 6) & 1)) = 1 ] && offered=$((offered + 1))
done
enabled=0
for v in $(/kgr/selftests/kvm_guest_rs/msr_read 0x4b564d04 | sed -n 's/^cpu [0-9]* msr 0x4b564d04 \(0x[0-9a-fA-F]*\)$/\1/p'); do
	[ $((v & 1)) = 1 ] && enabled=$((enabled + 1))
done
eoi_mem=$(stat pv-eoi-completed)
ktap_print_msg "PV EOI: offered on $offered, MSR_KVM_PV_EOI_EN enabled on $enabled of $ncpu vCPUs; completed in memory since boot: $eoi_mem"
check "C guest uses PV EOI (offered on $offered/$ncpu vCPUs, enabled on $enabled/$ncpu, $eoi_mem completed in memory)" \
	[ "$offered" = "$ncpu" -a "$enabled" = "$ncpu" -a "${eoi_mem:-0}" -gt 0 ]
tty=""
for t in /sys/class/tty/ttyS*; do
	readlink -f "$t" | grep -q '/pci0000:' && tty=/dev/${t##*/}
done
irq_line() { grep -E " ${tty#/dev/}\$" /proc/interrupts; }
irq_count() { irq_line | awk '{ s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break; print s }'; }
if [ -n "$tty" ]; then
	stty -F "$tty" 115200 raw -echo 2>/dev/null
	# The IRQ is requested while the tty is open: keep it open throughout.
	sleep 100000 >"$tty" &
	holder=$!
	lvl0=$(irq_count)
	set -- $(stat pv-eoi-armed pv-eoi-completed pv-eoi-taken-back)
	a0=$1 c0=$2 t0=$3
	i=0
	while [ $i -lt 20 ]; do
		dd if=/dev/zero of="$tty" bs=1024 count=16 2>/dev/null &
		ddpid=$!
		$V/pingpong 2000 >/dev/null
		wait $ddpid
		i=$((i + 1))
	done
	set -- $(stat pv-eoi-armed pv-eoi-completed pv-eoi-taken-back)
	a=$(($1 - a0)) c=$(($2 - c0)) t=$(($3 - t0))
	lvl1=$(irq_count)
	ktap_print_msg "storm: $tty $(irq_line | awk '{ print $(NF-1) }') irqs +$((lvl1 - lvl0)); PV EOI armed $a, completed in memory $c, taken back $t"
	level_fired() { irq_line | grep -q fasteoi && [ $((lvl1 - lvl0)) -gt 20 ]; }
	check "storm: the PCI serial IRQ is level-triggered (fasteoi) and fired $((lvl1 - lvl0)) times" level_fired
	check "storm: 40000 cross-CPU wake-ups completed without a hang" true
	check "storm: PV EOI armed $a times, completed in memory $c (> 1000)" [ "$c" -gt 1000 ]
	# Every arming ends as exactly one of: completed in memory, taken back.
	# At most one arming per vCPU can still be open when the counters are read.
	kill $holder
	wait $holder 2>/dev/null
	check "storm: armed = completed + taken back (+ at most 2 in flight)" within $((a - c - t)) 0 2
else
	ktap_test_fail "storm: no PCI serial port found (QEMU -device pci-serial)"
	ktap_test_skip "storm: 40000 cross-CPU wake-ups completed without a hang"
	ktap_test_skip "storm: PV EOI armed, completed in memory"
	ktap_test_skip "storm: armed = completed + taken back"
fi

# --- steal time -------------------------------------------------------------
# The model charges kgr.steal_pct % of virtual time as steal (x-steal-ppm,
# host run_delay off).  All CPUs busy for 5 s: /proc/stat's steal must be
# that share of the elapsed CPU time, within 2 percentage points.  (Not a
# share of the ticks in /proc/stat: when the host deschedules a vCPU thread,
# ticks are lost but virtual time and its steal are not.)
pct=$(arg steal_pct)
check "C guest registered steal time (model updates: $(stat steal-updates))" [ "$(stat steal-updates)" -gt 0 ]
# ticks: centiseconds of uptime (= USER_HZ ticks) and the steal ticks of /proc/stat.
ticks() { echo "$(tr -d . </proc/uptime | cut -d' ' -f1) $(head -n1 /proc/stat | awk '{ print $9 }')"; }
set -- $(ticks)
t0=$1 s0=$2
busy() { end=$(($(cut -d. -f1 /proc/uptime) + 5)); while [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do :; done; }
i=0
while [ $i -lt "$ncpu" ]; do
	busy &
	i=$((i + 1))
done
wait
set -- $(ticks)
dt=$((($1 - t0) * ncpu)) ds=$(($2 - s0))
permille=$((ds * 1000 / (dt > 0 ? dt : 1)))
ktap_print_msg "steal: $ds ticks in $dt CPU-ticks of elapsed time = $permille per mille (injected $pct %)"
check "steal share $permille per mille within 2 % of the injected $pct %" within $permille $((pct * 10 - 20)) $((pct * 10 + 20))

# --- async page faults ---------------------------------------------------------
# Each vCPU's enabling MSR_KVM_ASYNC_PF_EN write queues the broadcast ~0.
set -- $(stat apf-ready apf-injected)
h=$(hyp 0)
check "wake-all ~0 on enable: page-ready $1 (= $ncpu vCPUs), HYP on CPU0 $h" [ "$1" = "$ncpu" -a "$2" = 0 -a "$h" = 1 ]
apf_run() { # apf_run NAME DELAY_NS NPAGES: one armed window on vCPU 1
	name=$1 delay=$2 n=$3 addr=$((0x200000000000))
	p=$(hostq cpu-path 1)
	set -- $(stat apf-injected apf-ready apf-acked)
	i0=$1 r0=$2 k0=$3
	h0=$(hyp 1)
	hostq qom-set "$p" x-apf-va-start $addr && hostq qom-set "$p" x-apf-va-end $((addr + n * 4096)) &&
		hostq qom-set "$p" x-apf-delay-ns "$delay" && hostq qom-set "$p" x-apf-count "$n"
	out=$($V/apf_touch $addr "$n" 1)
	ok=$?
	set -- $(stat apf-injected apf-ready apf-acked)
	hd=$(($(hyp 1) - h0))
	ktap_print_msg "$name: $out; injected $(($1 - i0)), ready $(($2 - r0)), acked $(($3 - k0)), HYP on CPU1 +$hd"
	check "$name: $n pages touched, data intact" [ $ok = 0 ]
	check "$name: exactly $n episodes (injected $(($1 - i0)))" [ $(($1 - i0)) = "$n" ]
	check "$name: $n page-ready interrupts, all acked (ready $(($2 - r0)), acked $(($3 - k0)), HYP +$hd)" \
		[ $(($2 - r0)) = "$n" -a $(($3 - k0)) = "$n" -a $hd = "$n" ]
}
apf_run "async PF" 1000000 64
# Delay 0: "page ready" can arrive before the task went to sleep (the
# guest's dummy-entry path).
apf_run "async PF, ready before wait" 0 32

# --- hypercalls ---------------------------------------------------------------
# The C guest only makes hypercalls behind features the model does not offer.
n=$(stat msr-gp)
check "no PV MSR access of the C guest faulted (msr-gp $n)" [ "${n:-1}" = 0 ]
bad=$(dmesg | kgr_splats | head -n 5)
[ -z "$bad" ] || echo "$bad" | while read -r l; do ktap_print_msg "$l"; done
check "kernel log has no warning, BUG, lockdep or KASAN report" [ -z "$bad" ]
ktap_finished
