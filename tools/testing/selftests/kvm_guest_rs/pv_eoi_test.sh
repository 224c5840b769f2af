#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest tests of the module's PV EOI on the KVM host model (tools/qemu,
# x-tcg-kvm-pv=on), booted with kvm-pv-ext so that the in-tree guest leaves
# MSR_KVM_PV_EOI_EN and the EOI static call to the module, and with a PCI
# serial port (-device pci-serial: INTx, a level-triggered IOAPIC line).
# run-guest --hostctl lets the plan read the model's counters (pv-eoi-*,
# apic-*) and set x-pv-eoi-refuse.
#
# With KGR_PV_EOI=intree (booted without kvm-pv-ext) it checks the other
# side: the module loads, says the in-tree PV EOI owns the feature, and runs
# its other features.
#
# Tests: load, registrations, an interrupt storm (IPIs, local timer, the
# level-triggered line) with both paths taken and the host's books balanced,
# rmmod with the module's totals equal to what the host completed, load/
# unload cycles and CPU1 offline/online cycles during a storm (KGR_CYCLES of
# each, kgr.cycles=N, 20 by default), a host that refuses the MSR, a clean
# kernel log.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
P=/sys/kernel/kvm_guest_rs/pv_eoi
MSR=0x4b564d04
CYCLES=${KGR_CYCLES:-20}
MODE=${KGR_PV_EOI:-$(kgr_arg pv_eoi)}
MODE=${MODE:-ext}

ktap_print_header
kgr_skip_unless_kvm
kgr_skip_unless_hostctl

dmesg_mark=$(dmesg | wc -l)
msr_zero() { "$ST/msr_read" $MSR >/tmp/msr.out 2>&1; }
msr_set_everywhere() { kgr_msr_set_on_every_cpu $MSR; }
# host NAME...: the model's counters x-kvm-pv-NAME, summed over the vCPUs, in
# one snapshot with the VM stopped (which settles an armed PV EOI).
host() {
	hostq cpu-sum $(for _n in "$@"; do echo "x-kvm-pv-$_n"; done) | awk '{ print $2 }'
}
# irqs NAME: the count of a /proc/interrupts row (an IRQ number or a name
# such as LOC or RES), summed over the CPUs.
irqs() {
	awk -v n="$1:" -v c="$(nproc)" '$1 == n { s = 0; for (i = 2; i <= c + 1; i++) s += $(i); print s; exit }' /proc/interrupts
}

if [ "$MODE" = intree ]; then
	ktap_set_plan 2
	mark=$(dmesg | wc -l)
	kgr_result '"$ST/modload" $MOD >/dev/null && dmesg | tail -n +$((mark + 1)) | grep -qE "feature pv_eoi: (the in-tree PV EOI runs|another user holds)"' \
		"A: the module loads and says the in-tree PV EOI owns the feature"
	# The other features work: kvm-clock-rs (booted with no-kvmclock) is the clocksource.
	kgr_result '[ ! -e $P ] && [ -e /sys/kernel/kvm_guest_rs/kvmclock ] && [ "$(cat $CS/current_clocksource)" = kvm-clock-rs ] && echo kvm-clock-rs >$CS/unbind_clocksource && rmmod kvm_guest_rs' \
		"A: no pv_eoi files, kvm-clock-rs runs; unbind and rmmod succeed"
	ktap_finished
fi

if ! grep -qw kvm-pv-ext /proc/cmdline; then
	ktap_skip_all "the in-tree PV EOI runs (boot with kvm-pv-ext)"
	exit 4
fi
ktap_set_plan 14

# The PCI serial port: its tty and its IRQ (a level-triggered IOAPIC line).
TTY=$(kgr_pci_tty)
LINE=""
[ -n "$TTY" ] && LINE=$(cat "/sys/class/tty/${TTY#/dev/}/irq")
ktap_print_msg "level-triggered line: ${TTY:-none} on IRQ ${LINE:-none}"

# 1-2: load; one registration per CPU; the MSR is set on every CPU.
set -- $(host pv-eoi-armed pv-eoi-completed pv-eoi-taken-back)
a0=$1 c0=$2 t0=$3
# kvmclock=0 throughout: kvm-clock-rs would become the clocksource and pin the module.
kgr_result '"$ST/modload" $MOD kvmclock=0 >/dev/null && [ "$(cat $P/registrations)" = "$(nproc)" ] && new_dmesg | grep -q "PV EOI: MSR_KVM_PV_EOI_EN on every CPU"' \
	"insmod: one registration per online CPU, logged"
kgr_result 'msr_set_everywhere' "MSR_KVM_PV_EOI_EN is set on every CPU"

# 3-6: the storm. Every kind of interrupt keeps firing; both paths are taken.
# The port stays open meanwhile, so its IRQ stays requested (and counted).
[ -n "$TTY" ] && exec 5>"$TTY"
res0=$(irqs RES) loc0=$(irqs LOC) line0=$(irqs "$LINE")
s0=$(cat $P/skipped) n0=$(cat $P/native)
out=$("$ST/irq_storm" 5 $TTY)
rc=$?
ktap_print_msg "storm: $out; RES +$(($(irqs RES) - res0)), LOC +$(($(irqs LOC) - loc0)), IRQ $LINE +$(($(irqs "$LINE") - line0)); skipped +$(($(cat $P/skipped) - s0)), native +$(($(cat $P/native) - n0))"
kgr_result '[ $rc = 0 ] && [ $(irqs RES) -gt $res0 ] && [ $(irqs LOC) -gt $loc0 ] && ! new_dmesg | grep -q "nobody cared"' \
	"storm: the workload completes, IPIs and the local timer keep firing, no \"nobody cared\""
line1=$(irqs "$LINE")
kgr_result '[ -n "$LINE" ] && grep "^ *$LINE:" /proc/interrupts | grep -q fasteoi && [ "${line1:-0}" -gt "${line0:-0}" ] && "$ST/irq_storm" 1 $TTY >/dev/null && [ $(irqs "$LINE") -gt $line1 ]' \
	"storm: the level-triggered (fasteoi) line keeps firing, also in a second storm"
ktap_print_msg "level-triggered line after the storms: $(grep "^ *$LINE:" /proc/interrupts | tr -s ' ')"
[ -n "$TTY" ] && exec 5>&-
kgr_result '[ $(cat $P/skipped) -gt $s0 ] && [ $(cat $P/native) -gt $n0 ]' \
	"storm: some EOIs skip the APIC write, others write it"
set -- $(host pv-eoi-armed pv-eoi-completed pv-eoi-taken-back)
da=$(($1 - a0)) dc=$(($2 - c0)) dt=$(($3 - t0))
ktap_print_msg "host: armed +$da, completed +$dc, taken back +$dt"
kgr_result '[ $da -gt 0 ] && [ $da = $((dc + dt)) ]' \
	"host books while loaded (the VM stopped for the snapshot): armed = completed + taken back"

# 7: rmmod: MSR 0 everywhere, and the module's final totals are the host's.
mark=$(dmesg | wc -l)
kgr_result 'rmmod kvm_guest_rs && msr_zero' "rmmod: MSR_KVM_PV_EOI_EN is 0 on every CPU"
set -- $(host pv-eoi-armed pv-eoi-completed pv-eoi-taken-back)
da=$(($1 - a0)) dc=$(($2 - c0)) dt=$(($3 - t0))
skipped=$(dmesg | tail -n +$((mark + 1)) | sed -n 's/.*PV EOI: unregistered after \([0-9]*\) skipped.*/\1/p')
ktap_print_msg "after rmmod: module skipped ${skipped:-?}; host armed +$da, completed +$dc, taken back +$dt"
kgr_result '[ -n "$skipped" ] && [ "$skipped" = $dc ] && [ $da = $((dc + dt)) ]' \
	"books after rmmod: skipped EOIs = host completions; armed = completed + taken back"

# 8: load/unload cycles during a storm.
"$ST/irq_storm" 900 $TTY >/tmp/storm.out 2>&1 &
storm=$!
bad=0
i=0
while [ $i -lt "$CYCLES" ]; do
	if ! "$ST/modload" $MOD kvmclock=0 >/dev/null || ! msr_set_everywhere || ! rmmod kvm_guest_rs || ! msr_zero; then
		bad=$((bad + 1))
	fi
	i=$((i + 1))
done
kill -USR1 $storm
wait $storm
rc=$?
ktap_print_msg "storm during $CYCLES load/unload cycles: $(cat /tmp/storm.out)"
kgr_result '[ $bad = 0 ] && [ $rc = 0 ] && ! new_dmesg | grep -q "nobody cared"' \
	"$CYCLES insmod/rmmod cycles during a storm: MSR set after each load, 0 after each unload; the storm completes"

# 9: CPU1 offline/online cycles during a storm.
if [ -w /sys/devices/system/cpu/cpu1/online ]; then
	"$ST/modload" $MOD kvmclock=0 >/dev/null
	"$ST/irq_storm" 900 $TTY >/tmp/storm.out 2>&1 &
	storm=$!
	kgr_cpu1_cycles "$CYCLES" $P/cpu1/enabled
	cyc=$?
	kill -USR1 $storm
	wait $storm
	rc=$?
	ktap_print_msg "storm during $CYCLES CPU1 cycles: $(cat /tmp/storm.out); CPU1 registrations $(cat $P/cpu1/registrations)"
	kgr_result '[ $cyc = 0 ] && [ $rc = 0 ] && [ "$(cat $P/cpu1/registrations)" = $((CYCLES + 1)) ] && msr_set_everywhere && rmmod kvm_guest_rs && msr_zero' \
		"$CYCLES CPU1 offline/online cycles during a storm: the word follows the CPU, MSR 0 after rmmod"
else
	ktap_test_skip "CPU1 offline/online: no CPU1 or not hotpluggable"
fi

# 10-12: a host that refuses the MSR (#GP): PV EOI off, logged; the rest works.
if kgr_knob x-pv-eoi-refuse true; then
	mark=$(dmesg | wc -l)
	"$ST/modload" $MOD kvmclock=0 >/tmp/modload.out
	log=$(dmesg | tail -n +$((mark + 1)))
	kgr_result 'loaded && echo "$log" | grep -q "feature pv_eoi: the host refused its MSR (#GP); off" && echo "$log" | grep -q "MSR 0x4b564d04: registration failed"' \
		"a host that refuses MSR_KVM_PV_EOI_EN: the module loads, PV EOI off, logged"
	kgr_result '[ ! -e $P ] && [ -e /sys/kernel/kvm_guest_rs/steal_time ] && msr_zero && rmmod kvm_guest_rs' \
		"... with no pv_eoi files, steal time on, MSR 0; rmmod succeeds"
	kgr_knob x-pv-eoi-refuse false
	# Refused for a CPU that comes online after the load: it still comes online.
	if [ -w /sys/devices/system/cpu/cpu1/online ]; then
		"$ST/modload" $MOD kvmclock=0 >/dev/null
		kgr_knob x-pv-eoi-refuse true
		mark=$(dmesg | wc -l)
		echo 0 >/sys/devices/system/cpu/cpu1/online
		echo 1 >/sys/devices/system/cpu/cpu1/online
		on=$(cat /sys/devices/system/cpu/cpu1/online)
		kgr_knob x-pv-eoi-refuse false
		kgr_result '[ "$on" = 1 ] && [ "$(cat $P/cpu1/enabled)" = 0 ] && [ "$(cat $P/cpu0/enabled)" = 1 ] && dmesg | tail -n +$((mark + 1)) | grep -q "CPU1: MSR 0x4b564d04: registration failed" && "$ST/irq_storm" 1 $TTY >/dev/null && rmmod kvm_guest_rs && msr_zero' \
			"refused on a CPU coming online later: the CPU comes online without PV EOI, logged; interrupts still end"
	else
		ktap_test_skip "refused on a CPU coming online later: no CPU1 or not hotpluggable"
	fi
else
	ktap_test_fail "x-pv-eoi-refuse: the host model does not have the knob"
	ktap_test_skip "x-pv-eoi-refuse: follow-up"
	ktap_test_skip "x-pv-eoi-refuse: follow-up"
fi

# 13: a clean kernel log.
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log "possible recursive locking|circular locking|inconsistent lock state|sleeping function called|nobody cared" </tmp/dmesg.new
ktap_finished
