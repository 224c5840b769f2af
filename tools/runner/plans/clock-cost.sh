#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Plan of `make compare` (tools/make/compare.sh): the same measurements with the
# in-tree C features (kgr.compare=A, normal boot) and with the module's
# (kgr.compare=B, booted with kvm-pv-ext, module loaded: kvm-clock-rs and its
# steal clock and PV EOI); kgr.steal_ppm=N is the steal the host model injects.
# With kgr.compare_part=eoi only the PV EOI workload (e) and the async PF
# workloads (f) run, in a boot with the host channel and a PCI serial port.  Meant for icount runs (run-guest
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
if [ "$PART" = eoi ]; then ktap_set_plan 4; else ktap_set_plan 7; fi
emit() { echo "# compare $SIDE $1 $2"; }
field() { echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }

if "$ST/modload" $MOD >/dev/null; then
	ktap_test_pass "compare $SIDE: module loaded"
else
	ktap_test_fail "compare $SIDE: module loaded"
fi
cur=$(cat $CS/current_clocksource)
emit clocksource "$cur"
# (g) What the module's features allocated per possible CPU at load.
if [ "$SIDE" = B ]; then
	_b=0 _f=""
	for _p in /sys/kernel/kvm_guest_rs/*/percpu_bytes; do
		[ -r "$_p" ] || continue
		read -r _v <"$_p"
		_b=$((_b + _v))
		_d=${_p%/percpu_bytes}
		_f="$_f ${_d##*/}"
	done
	emit percpu_dyn "$_b$_f"
fi
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

# (b) User space clock_gettime(CLOCK_MONOTONIC).
i=0
ok=1
while [ $i -lt "$RUNS" ]; do
	out=$(taskset -c 0 "$ST/clock_bench" bench 100000) || ok=0
	emit user_bench "$(field calls "$out") $(field ns "$out")"
	i=$((i + 1))
done
# Which path it took: a vDSO read runs in user mode only, a system call mostly
# in the kernel (utime/stime ticks of /proc/self/stat).
out=$(taskset -c 0 "$ST/vdso_clock" stime 2000000) || ok=0
if [ $(($(field stime "$out") * 10)) -le $(($(field utime "$out") + $(field stime "$out"))) ]; then
	emit user_path "vdso $(field utime "$out") $(field stime "$out")"
else
	emit user_path "syscall $(field utime "$out") $(field stime "$out")"
fi
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
	# (f) async PF on vCPU 1, the model's first-touch window (host delay in
	# virtual time; an idle vCPU skips to it): apf_cost KEY ADDR PAGES DELAY
	# emits "KEY PAGES DELAY NS INJECTED": one task touching PAGES pages
	# alone, NS the wall time, INJECTED the host's "page not present" count
	# (0 when the vCPU waited synchronously).  apf_overlap KEY ADDR emits "KEY
	# MS": a computing task and one touching 64 pages held back 5 ms each.
	apf_arm() {
		_p=$(hostq cpu-path 1) && hostq qom-set "$_p" x-apf-va-start "$1" >/dev/null &&
			hostq qom-set "$_p" x-apf-va-end $(($1 + $2 * 4096)) >/dev/null &&
			hostq qom-set "$_p" x-apf-delay-ns "$3" >/dev/null && hostq qom-set "$_p" x-apf-count "$2" >/dev/null
	}
	apf_disarm() { _p=$(hostq cpu-path 1) && hostq qom-set "$_p" x-apf-count 0 >/dev/null; }
	apf_sum() { hostq cpu-sum "x-kvm-pv-apf-$1" | awk '{ print $2 }'; }
	apf_injected() { apf_sum injected; }
	# ... and "KEY_handler INSNS TIMED": the instructions the host model
	# counted from the page-ready vector's entry to the acknowledgment
	# (the wake-up on the way), for TIMED page-ready interrupts.
	apf_cost() {
		_i0=$(apf_injected) _h0=$(apf_sum ready-insns) _t0=$(apf_sum ready-timed)
		apf_arm "$2" "$3" "$4" || return 1
		_out=$("$ST/apf_work" cost "$2" "$3" 1) || return 1
		apf_disarm
		emit "$1" "$3 $4 $(echo "$_out" | sed -n 's/.*: \([0-9]*\) ns$/\1/p') $(($(apf_injected) - _i0))"
		emit "${1}_handler" "$(($(apf_sum ready-insns) - _h0)) $(($(apf_sum ready-timed) - _t0))"
	}
	apf_overlap() {
		apf_arm "$2" 64 5000000 || return 1
		_out=$("$ST/apf_work" overlap "$2" 64 1 320) || return 1
		apf_disarm
		emit "$1" "$(echo "$_out" | sed -n 's/.*: \([0-9.]*\) ms$/\1/p')"
	}
	apf_on() {
		apf_cost apf_episode $((0x200000000000)) 64 1000000 &&
			kgr_knob x-apf-fault '"ready-first"' &&
			apf_cost apf_ready_first $((0x200010000000)) 64 1000000 &&
			kgr_knob x-apf-fault '"none"' &&
			apf_overlap apf_overlap_on $((0x200020000000))
	}
	# Off (B, module unloaded): the vCPU waits for each page (x-apf-sync, KVM's
	# APF halt), the baseline of both sides' overlap.
	apf_off() {
		kgr_knob x-apf-sync true &&
			apf_cost apf_episode_sync $((0x200030000000)) 64 1000000 &&
			apf_overlap apf_overlap_off $((0x200040000000)) &&
			kgr_knob x-apf-sync false
	}
	apf_ok=1
	if [ -z "$tty" ] || ! hostq cpu-path 0 >/dev/null 2>&1; then
		ktap_test_fail "compare $SIDE: PV EOI measured (no PCI serial port or no host channel)"
		apf_ok=0
	elif eoi_run pv_eoi && { apf_on || apf_ok=0; } && { [ "$SIDE" = A ] || {
		# Off: the next clocksource, then no module.
		echo kvm-clock-rs >$CS/unbind_clocksource && rmmod kvm_guest_rs && eoi_run pv_eoi_off &&
			{ apf_off || apf_ok=0; }
	}; }; then
		ktap_test_pass "compare $SIDE: PV EOI measured"
	else
		ktap_test_fail "compare $SIDE: PV EOI measured"
	fi
	if [ $apf_ok = 1 ]; then
		ktap_test_pass "compare $SIDE: async PF measured"
	else
		ktap_test_fail "compare $SIDE: async PF measured"
	fi
fi
ktap_finished
