#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Plan of `make compare` (tools/make/compare.sh): the same measurements with the
# in-tree C features (kgr.compare=A, normal boot) and with the module's
# (kgr.compare=B, booted with kvm-pv-ext, module loaded: kvm-clock-rs and its
# steal clock and PV EOI); kgr.steal_ppm=N is the steal the host model injects.
# With kgr.compare_part=eoi only the PV EOI workload (e) runs, in a boot with
# the host channel and a PCI serial port.  Meant for icount runs (run-guest
# --icount 0: one virtual ns per instruction).
# Prints "# compare KEY VALUE" lines for the host script besides KTAP.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
RUNS=${KGR_COMPARE_RUNS:-3}
USER_WARP=${KGR_COMPARE_USER_WARP:-200000}
SIDE=$(kgr_arg compare)
PPM=$(kgr_arg steal_ppm)
PPM=${PPM:-0}

ktap_print_header
case "$SIDE" in
A) want=kvm-clock ;;
B) want=kvm-clock-rs ;;
*)
	ktap_skip_all "no kgr.compare=A|B on the command line"
	exit 4
	;;
esac
PART=$(kgr_arg compare_part)
if [ "$PART" = eoi ]; then ktap_set_plan 3; else ktap_set_plan 7; fi
emit() { echo "# compare $SIDE $1 $2"; }
field() { echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }

if "$ST/modload" $MOD >/dev/null; then
	ktap_test_pass "compare $SIDE: module loaded"
else
	ktap_test_fail "compare $SIDE: module loaded"
fi
cur=$(cat $CS/current_clocksource)
emit clocksource "$cur"
if [ "$cur" = "$want" ]; then
	ktap_test_pass "compare $SIDE: current clocksource is $want"
else
	ktap_test_fail "compare $SIDE: current clocksource is $want (got $cur)"
fi

if [ "$PART" != eoi ]; then
# (a) In-kernel ktime_get(): BENCH_CALLS calls timed with ktime_get() itself.
i=0
ok=1
while [ $i -lt "$RUNS" ]; do
	out=$(taskset -c 0 cat $D/ktime_bench) || ok=0
	emit ktime_bench "$(field calls "$out") $(field ns "$out")"
	if [ "$SIDE" = B ]; then
		out=$(taskset -c 0 cat $D/kvmclock/read_bench) || ok=0
		emit raw_read_bench "$(field calls "$out") $(field ns "$out")"
	fi
	i=$((i + 1))
done
if [ $ok = 1 ]; then ktap_test_pass "compare $SIDE: in-kernel benchmarks"; else ktap_test_fail "compare $SIDE: in-kernel benchmarks"; fi

# (b) User space clock_gettime(CLOCK_MONOTONIC): vDSO (A) or system call (B).
i=0
ok=1
while [ $i -lt "$RUNS" ]; do
	out=$(taskset -c 0 "$ST/clock_bench" bench 100000) || ok=0
	emit user_bench "$(field calls "$out") $(field ns "$out")"
	i=$((i + 1))
done
if [ $ok = 1 ]; then ktap_test_pass "compare $SIDE: user-space clock_gettime benchmark"; else ktap_test_fail "compare $SIDE: user-space clock_gettime benchmark"; fi

# (c) Warps: ktime_get() across CPUs in the kernel, and clock_gettime() across CPUs.
: >/tmp/kw.out
for c in $(seq 0 $(($(nproc) - 1))); do
	taskset -c "$c" cat $D/ktime_warp >>/tmp/kw.out &
done
wait
kw=$(awk '{ for (i = 1; i < NF; i++) if ($i == "warps") s += $(i + 1) } END { print s + 0 }' /tmp/kw.out)
kr=$(awk '{ for (i = 1; i < NF; i++) if ($i == "reads") s += $(i + 1) } END { print s + 0 }' /tmp/kw.out)
emit ktime_warp "$kr $kw"
uw=$("$ST/clock_bench" warp "$USER_WARP")
emit user_warp "$(field reads "$uw") $(field warps "$uw")"
if [ "$kw" = 0 ] && [ "$(field warps "$uw")" = 0 ]; then
	ktap_test_pass "compare $SIDE: no warp (kernel $kr reads, user $(field reads "$uw") reads)"
else
	ktap_test_fail "compare $SIDE: no warp (kernel $kw, user $(field warps "$uw"))"
fi
if [ "$SIDE" = B ]; then
	: >/tmp/rw.out
	for c in $(seq 0 $(($(nproc) - 1))); do
		taskset -c "$c" cat $D/kvmclock/warp >>/tmp/rw.out &
	done
	wait
	rw=$(awk '{ for (i = 1; i < NF; i++) if ($i == "warps" || $i == "local_warps") s += $(i + 1) } END { print s + 0 }' /tmp/rw.out)
	rr=$(awk '{ for (i = 1; i < NF; i++) if ($i == "reads") s += $(i + 1) } END { print s + 0 }' /tmp/rw.out)
	emit raw_warp "$rr $rw"
	if [ "$rw" = 0 ]; then ktap_test_pass "compare B: kvm-clock-rs raw reads never warp ($rr reads)"; else ktap_test_fail "compare B: kvm-clock-rs raw reads never warp ($rw warps)"; fi
else
	ktap_test_skip "compare A: raw clocksource warp test (kvm-clock-rs only)"
fi
# (d) Steal time: /proc/stat steal over 4 s of busy CPUs against the steal the
# model injects (PPM of the elapsed time on every CPU), and in B the cost of a
# steal-clock read.
# Uptime in ns.
up_ns() { awk '{ printf "%.0f", $1 * 1000000000 }' /proc/uptime; }
s0=$(kgr_steal_ns)
u0=$(up_ns)
kgr_busy 4
s1=$(kgr_steal_ns)
u1=$(up_ns)
emit steal_acc "$((s1 - s0)) $(((u1 - u0) / 1000 * PPM / 1000 * $(nproc)))"
ok=1
[ $((s1 - s0)) -gt 0 ] || ok=0
# The scheduler's steal-clock read of the current CPU, through the static
# call, whichever provider is installed: the in-tree one (A), the module's (B).
i=0
while [ $i -lt "$RUNS" ]; do
	out=$(taskset -c 0 cat $D/steal_clock_bench) || ok=0
	emit steal_clock_bench "$(field calls "$out") $(field ns "$out")"
	i=$((i + 1))
done
if [ $ok = 1 ]; then ktap_test_pass "compare $SIDE: steal time measured"; else ktap_test_fail "compare $SIDE: steal time measured"; fi
fi

# (e) PV EOI, in a boot of its own (kgr.compare_part=eoi, with the host channel
# and a PCI serial port): it asks the host model for its counters (hostq stops
# the VM for a snapshot), host I/O that would make the boot of the rows above
# lose its byte-for-byte determinism. One fixed interrupt
# workload (irq_storm -n: IPIs, the local timer, the level-triggered PCI serial
# line), with the model's delivered interrupts, EOI register writes and PV EOI
# completions around it: in A the in-tree PV EOI, in B the module's, and in B
# again with PV EOI off (kvm-clock-rs unbound, the module unloaded: the in-tree
# guest stands down under kvm-pv-ext, so nothing skips an EOI).
if [ "$PART" = eoi ]; then
	tty=$(kgr_pci_tty)
	eoi_counters() {
		hostq cpu-sum x-kvm-pv-apic-irqs x-kvm-pv-apic-eoi-writes x-kvm-pv-pv-eoi-completed \
			x-kvm-pv-pv-eoi-taken-back | awk '{ printf "%s ", $2 }'
	}
	# eoi_run KEY: the workload EOI_RUNS times, each between two snapshots; emits
	# "KEY IRQS WRITES COMPLETED TAKEN_BACK" per run.  The snapshots are host
	# I/O, whose arrival in virtual time is not deterministic, so the runs
	# differ (the workload meets the timer ticks elsewhere): the report sums
	# them and shows the spread.
	eoi_run() {
		_key=$1
		_i=0
		set -- $(eoi_counters)
		while [ $_i -lt "${KGR_COMPARE_EOI_RUNS:-5}" ]; do
			"$ST/irq_storm" -n "${KGR_COMPARE_EOI_ROUNDS:-3000}" $tty >/dev/null || return 1
			set -- "$@" $(eoi_counters)
			[ $# = 8 ] || return 1
			emit "$_key" "$(($5 - $1)) $(($6 - $2)) $(($7 - $3)) $(($8 - $4))"
			shift 4
			_i=$((_i + 1))
		done
	}
	if [ -z "$tty" ] || ! hostq cpu-path 0 >/dev/null 2>&1; then
		ktap_test_fail "compare $SIDE: PV EOI measured (no PCI serial port or no host channel)"
	elif eoi_run pv_eoi && { [ "$SIDE" = A ] || {
		# Off: the next clocksource, then no module.
		echo kvm-clock-rs >$CS/unbind_clocksource && rmmod kvm_guest_rs && eoi_run pv_eoi_off
	}; }; then
		ktap_test_pass "compare $SIDE: PV EOI measured"
	else
		ktap_test_fail "compare $SIDE: PV EOI measured"
	fi
fi
ktap_finished
