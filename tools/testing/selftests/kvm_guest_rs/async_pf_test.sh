#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest tests of the module's async page faults on the KVM host model
# (tools/qemu, x-tcg-kvm-pv=on), booted with kvm-pv-ext so that the in-tree
# guest leaves MSR_KVM_ASYNC_PF_EN and the page-ready vector to the module.
# run-guest --hostctl lets the plan arm the model's first-touch window
# (x-apf-va-start/-end, x-apf-delay-ns, x-apf-count: each page of the window
# is "not present" on its first touch, ready DELAY later) and read its
# counters (apf-injected, -ready, -acked).
#
# With KGR_ASYNC_PF=overlap (kgr.async_pf=overlap, booted with kvm-pv-ext
# under run-guest --icount 0) it measures only the overlap a computing task
# gets while another waits, against the same host delay waited synchronously
# (x-apf-sync), in virtual time, where the ratio is exact.
#
# With KGR_ASYNC_PF=intree (booted without kvm-pv-ext) it checks the other
# side: the module loads, says the in-tree async PF owns the feature, and
# runs its other features.
#
# Tests: load (records and the broadcast ~0 of each enable), episodes on one
# vCPU with the page ready after the wait and before it (x-apf-fault=
# ready-first: an early wake), on two vCPUs at once, the module's books
# against the host's; a hostile host (unknown, duplicate and zero tokens, a
# flood beyond the table, "not present" in kernel mode); rmmod while tasks sleep, load/unload cycles
# and CPU1 offline/online cycles under async-PF load (KGR_CYCLES of each,
# kgr.cycles=N, 20 by default), a clean kernel log.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
P=/sys/kernel/kvm_guest_rs/async_pf
MSR=0x4b564d02
TOUCH=/kgr/validate/apf_touch
CYCLES=${KGR_CYCLES:-20}
MODE=${KGR_ASYNC_PF:-$(kgr_arg async_pf)}
MODE=${MODE:-ext}

ktap_print_header
kgr_skip_unless_kvm
kgr_skip_unless_hostctl

dmesg_mark=$(dmesg | wc -l)
msr_zero() { "$ST/msr_read" $MSR >/tmp/msr.out 2>&1; }
# host NAME...: the model's counters x-kvm-pv-NAME, summed over the vCPUs.
host() {
	hostq cpu-sum $(for _n in "$@"; do echo "x-kvm-pv-$_n"; done) | awk '{ printf "%s%s", sep, $2; sep = " " } END { print "" }'
}
# mod NAME...: the module's totals.
mod() { for _n in "$@"; do printf '%s ' "$(cat $P/$_n)"; done; echo; }
# arm CPU ADDR PAGES DELAY_NS: the model's window on vCPU CPU.
arm() {
	_p=$(hostq cpu-path "$1") &&
		hostq qom-set "$_p" x-apf-va-start "$2" >/dev/null &&
		hostq qom-set "$_p" x-apf-va-end $(($2 + $3 * 4096)) >/dev/null &&
		hostq qom-set "$_p" x-apf-delay-ns "$4" >/dev/null &&
		hostq qom-set "$_p" x-apf-count "$3" >/dev/null
}
# apf_fault NAME: x-apf-fault of every vCPU.
apf_fault() { kgr_knob x-apf-fault "\"$1\""; }
# disarm CPU: no further episode on vCPU CPU.
disarm() { _p=$(hostq cpu-path "$1") && hostq qom-set "$_p" x-apf-count 0 >/dev/null; }
ADDR0=$((0x200000000000))
ADDR1=$((0x300000000000))

# overlap: two tasks on vCPU 1: one touches 64 pages the host holds back
# 5 ms each, the other computes about as long. With async page faults the
# computing task runs while the other waits; without them (async_pf=0) the
# model makes the vCPU wait for each page (x-apf-sync, KVM's APF halt), so
# the two take about the sum of both. A wall-time ratio: only meaningful in
# virtual time (the overlap mode, booted with run-guest --icount 0), where it
# is exact; in real time under TCG the host's load moved it between 1.01 and
# 1.42 on a busy 2-core machine.
overlap_run() { # overlap_run ADDR NAME: prints the wall time in ms (apf_work's line in /tmp/NAME.out)
	arm 1 $1 64 5000000
	"$ST/apf_work" overlap $1 64 1 320 >/tmp/$2.out
	_rc=$?
	disarm 1
	[ $_rc = 0 ] && sed -n 's/.*: \([0-9.]*\) ms$/\1/p' /tmp/$2.out
}
overlap() {
	if ! "$ST/modload" $MOD kvmclock=0 >/dev/null; then
		ktap_test_fail "overlap: insmod"
		return
	fi
	t_on=$(overlap_run $ADDR1 ov-on)
	rmmod kvm_guest_rs
	"$ST/modload" $MOD kvmclock=0 async_pf=0 >/dev/null
	kgr_knob x-apf-sync true
	s0=$(host apf-sync)
	t_off=$(overlap_run $((ADDR1 + 0x10000000)) ov-off)
	ds=$(($(host apf-sync) - s0))
	kgr_knob x-apf-sync false
	rmmod kvm_guest_rs
	ratio=$(awk -v a="${t_on:-0}" -v b="${t_off:-0}" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print 0 }')
	ktap_print_msg "$(cat /tmp/ov-on.out) / $(cat /tmp/ov-off.out)"
	ktap_print_msg "overlap: with async PF ${t_on:-?} ms, without (vCPU waits, $ds synchronous faults) ${t_off:-?} ms: speed-up B $ratio"
	kgr_result '[ -n "$t_on" ] && [ -n "$t_off" ] && [ $ds = 64 ] && awk -v r=$ratio "BEGIN { exit !(r >= 1.3) }"' \
		"overlap (virtual time): a computing task runs while another waits; the pair finishes faster than with the vCPU waiting ($ratio x >= 1.3)"
}

# With KGR_ASYNC_PF=overlap (booted with kvm-pv-ext under run-guest --icount 0)
# only the overlap runs, in virtual time.
if [ "$MODE" = overlap ]; then
	if ! grep -qw kvm-pv-ext /proc/cmdline; then
		ktap_skip_all "the in-tree async PF runs (boot with kvm-pv-ext)"
		exit 4
	fi
	ktap_set_plan 2
	overlap
	new_dmesg >/tmp/dmesg.new
	kgr_test_clean_log "possible recursive locking|circular locking|inconsistent lock state|sleeping function called" </tmp/dmesg.new
	ktap_finished
fi

if [ "$MODE" = intree ]; then
	ktap_set_plan 2
	mark=$(dmesg | wc -l)
	kgr_result '"$ST/modload" $MOD >/dev/null && dmesg | tail -n +$((mark + 1)) | grep -qE "feature async_pf: (the in-tree async PF runs|another user holds)"' \
		"A: the module loads and says the in-tree async PF owns the feature"
	kgr_result '[ ! -e $P ] && [ -e /sys/kernel/kvm_guest_rs/kvmclock ] && [ "$(cat $CS/current_clocksource)" = kvm-clock-rs ] && echo kvm-clock-rs >$CS/unbind_clocksource && rmmod kvm_guest_rs' \
		"A: no async_pf files, kvm-clock-rs runs; unbind and rmmod succeed"
	ktap_finished
fi

if ! grep -qw kvm-pv-ext /proc/cmdline; then
	ktap_skip_all "the in-tree async PF runs (boot with kvm-pv-ext)"
	exit 4
fi
ktap_set_plan 16

# 1-2: load: one registration per CPU, MSR set everywhere, and each enable's
# broadcast ~0 taken and acknowledged.
set -- $(host apf-ready apf-acked)
r0=$1 k0=$2
# kvmclock=0 throughout: kvm-clock-rs would become the clocksource and pin the module.
kgr_result '"$ST/modload" $MOD kvmclock=0 >/dev/null && [ "$(cat $P/registrations)" = "$(nproc)" ] && new_dmesg | grep -q "async PF: MSR_KVM_ASYNC_PF_EN on every CPU"' \
	"insmod: one registration per online CPU, logged"
sleep 1
set -- $(host apf-ready apf-acked)
dr=$(($1 - r0)) dk=$(($2 - k0))
ktap_print_msg "after load: module broadcasts, acks, ready: $(mod broadcasts acks ready); host ready +$dr acked +$dk"
kgr_result 'kgr_msr_set_on_every_cpu $MSR && [ "$(cat $P/broadcasts)" = "$(nproc)" ] && [ "$(cat $P/acks)" = "$(nproc)" ] && [ $dr = "$(nproc)" ] && [ $dk = "$(nproc)" ]' \
	"MSR_KVM_ASYNC_PF_EN set on every CPU; each enable's broadcast ~0 taken and acknowledged"

# run NAME CPU ADDR PAGES DELAY: one armed window, touched by a task pinned to
# CPU; the host's and the module's counters move by exactly PAGES.
run() {
	_name=$1 _cpu=$2 _addr=$3 _n=$4 _delay=$5
	set -- $(host apf-injected apf-ready apf-acked)
	_i0=$1 _r0=$2 _k0=$3
	set -- $(mod not_present woken early early_claimed acks timeouts)
	_np0=$1 _w0=$2 _e0=$3 _ec0=$4 _a0=$5 _t0=$6
	arm "$_cpu" "$_addr" "$_n" "$_delay"
	_out=$($TOUCH "$_addr" "$_n" "$_cpu")
	_ok=$?
	disarm "$_cpu"
	set -- $(host apf-injected apf-ready apf-acked)
	_di=$(($1 - _i0)) _dr=$(($2 - _r0)) _dk=$(($3 - _k0))
	set -- $(mod not_present woken early early_claimed acks timeouts)
	_dnp=$(($1 - _np0)) _dw=$(($2 - _w0)) _de=$(($3 - _e0)) _dec=$(($4 - _ec0)) _da=$(($5 - _a0)) _dt=$(($6 - _t0))
	ktap_print_msg "$_name: $_out; host injected +$_di ready +$_dr acked +$_dk; module not_present +$_dnp woken +$_dw early +$_de claimed +$_dec acks +$_da timeouts +$_dt"
	kgr_result '[ $_ok = 0 ] && [ $_di = $_n ] && [ $_dr = $_n ] && [ $_dk = $_n ] && [ $_dnp = $_n ] && [ $_da = $_n ] && [ $((_dw + _de)) = $_n ] && [ $_de = $_dec ] && [ $_dt = 0 ]' \
		"$_name: $_n pages, data intact; not present = ready = acks = the host's $_n episodes; every wait woken or its page ready first"
}

# 3-4: episodes on vCPU 1, the page ready 1 ms after the fault (the task
# sleeps), then announced ready before its fault (an early wake: the wait
# finds it and does not sleep).
run "async PF, 1 ms" 1 $ADDR0 64 1000000
set -- $(mod early early_claimed woken)
e0=$1 c0=$2 w0=$3
apf_fault ready-first
set -- $(host apf-injected apf-ready)
i0=$1 r0=$2
arm 1 $((ADDR0 + 0x1000000)) 32 1000000
out=$($TOUCH $((ADDR0 + 0x1000000)) 32 1)
rc=$?
disarm 1
apf_fault none
set -- $(host apf-injected apf-ready)
di=$(($1 - i0)) dr=$(($2 - r0))
set -- $(mod early early_claimed woken)
de=$(($1 - e0)) dc=$(($2 - c0)) dw=$(($3 - w0))
ktap_print_msg "ready first: $out; host injected +$di ready +$dr; module early +$de claimed +$dc woken +$dw"
kgr_result '[ $rc = 0 ] && [ $di = 16 ] && [ $dr = 16 ] && [ $de = 16 ] && [ $dc = 16 ] && [ $dw = 0 ] && [ "$(cat $P/in_use)" = 0 ]' \
	"page ready before its fault (x-apf-fault=ready-first): 16 early wakes, each claimed by its wait without sleeping; data intact"

# 5: two vCPUs at once, each touching its own window.
set -- $(mod not_present acks)
np0=$1 a0=$2
arm 0 $ADDR0 48 2000000 && arm 1 $ADDR1 48 2000000
$TOUCH $ADDR0 48 0 >/tmp/t0.out &
t0=$!
$TOUCH $ADDR1 48 1 >/tmp/t1.out
rc1=$?
wait $t0
rc0=$?
disarm 0
disarm 1
set -- $(mod not_present acks)
dnp=$(($1 - np0)) da=$(($2 - a0))
ktap_print_msg "two vCPUs: $(cat /tmp/t0.out) / $(cat /tmp/t1.out); module not_present +$dnp acks +$da; sleepers_max $(cat $P/sleepers_max)"
kgr_result '[ $rc0 = 0 ] && [ $rc1 = 0 ] && [ $dnp = 96 ] && [ $da = 96 ] && [ "$(cat $P/sleepers)" = 0 ] && [ "$(cat $P/in_use)" = 0 ]' \
	"two vCPUs at once: 96 episodes, data intact, no sleeper or token left"

# 6-10: a hostile host (x-apf-fault on vCPU 1). Whatever it sends: the data
# stays intact, every page-ready is acknowledged, no task waits for its
# timeout, and the table stays within its preallocated size.
hostile() { # hostile FAULT NPAGES ADDR [read]
	_f=$1 _n=$2 _addr=$3 _how=${4:-touch}
	set -- $(host apf-injected apf-ready apf-acked apf-extra)
	_i0=$1 _r0=$2 _k0=$3 _x0=$4
	set -- $(mod not_present ready acks early duplicates spurious exhausted timeouts)
	_np0=$1 _mr0=$2 _ma0=$3 _e0=$4 _d0=$5 _s0=$6 _ex0=$7 _t0=$8
	apf_fault "$_f" || return 1
	arm 1 "$_addr" "$_n" 1000000
	if [ "$_how" = read ]; then
		_out=$("$ST/apf_work" read "$_addr" "$_n" 1)
	else
		_out=$($TOUCH "$_addr" "$_n" 1)
	fi
	_ok=$?
	sleep 0.2
	disarm 1
	apf_fault none
	set -- $(host apf-injected apf-ready apf-acked apf-extra)
	H_I=$(($1 - _i0)) H_R=$(($2 - _r0)) H_K=$(($3 - _k0)) H_X=$(($4 - _x0))
	set -- $(mod not_present ready acks early duplicates spurious exhausted timeouts)
	M_NP=$(($1 - _np0)) M_R=$(($2 - _mr0)) M_A=$(($3 - _ma0)) M_E=$(($4 - _e0)) M_D=$(($5 - _d0)) M_S=$(($6 - _s0)) M_X=$(($7 - _ex0)) M_T=$(($8 - _t0))
	ktap_print_msg "$_f: $_out; host injected +$H_I ready +$H_R acked +$H_K extra +$H_X; module not_present +$M_NP ready +$M_R acks +$M_A early +$M_E duplicates +$M_D spurious +$M_S exhausted +$M_X timeouts +$M_T; in use $(cat $P/in_use)/$(cat $P/capacity)"
	[ $_ok = 0 ] && [ $M_R = $H_R ] && [ $M_A = $H_R ] && [ $H_K = $H_R ] && [ $M_T = 0 ] &&
		[ "$(cat $P/sleepers)" = 0 ] && [ "$(cat $P/in_use)" -le "$(cat $P/capacity)" ]
}
kgr_result 'hostile unknown-token 32 $((ADDR1 + 0x30000000)) && [ $H_X = 32 ] && [ $M_E = 32 ]' \
	"hostile: a page-ready for a token never handed out, with every episode: kept as an early wake nobody claims; data intact, all acknowledged"
kgr_result 'hostile duplicate-token 32 $((ADDR1 + 0x31000000)) && [ $H_X = 32 ] && [ $((M_D + M_E)) = 32 ]' \
	"hostile: every token twice: the second is ignored or kept as a stale early wake; data intact, all acknowledged"
kgr_result 'hostile token-zero 32 $((ADDR1 + 0x32000000)) && [ $H_X = 32 ] && [ $M_S = 32 ]' \
	"hostile: a page-ready with token 0 with every episode: counted as spurious; data intact, all acknowledged"
kgr_result 'hostile flood 64 $((ADDR1 + 0x33000000)) && [ $H_X -gt "$(cat $P/capacity)" ] && [ $M_E = $H_X ] && [ $M_X = 0 ]' \
	"hostile: a flood of unknown tokens beyond the table: the oldest early wakes give way, no sleeper refused; data intact"
mark=$(dmesg | wc -l)
kgr_result 'hostile kernel-mode 16 $((ADDR1 + 0x34000000)) read && [ $H_I -ge 1 ] && [ $M_NP = 0 ] && dmesg | tail -n +$((mark + 1)) | grep -q "host injected async #PF in kernel mode"' \
	"hostile: \"page not present\" in kernel mode (a copy to user memory): logged and retried, no panic, no task put to sleep; data intact"

# 11: rmmod while a task sleeps for a page the host holds back for 10 s: the
# unload wakes it, it retries its access, the data is intact.
arm 1 $ADDR1 4 10000000000
$TOUCH $ADDR1 4 1 >/tmp/t1.out 2>&1 &
t1=$!
i=0
while [ "$(cat $P/sleepers 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
sl=$(cat $P/sleepers)
mark=$(dmesg | wc -l)
s0=$(cut -d' ' -f1 /proc/uptime)
rmmod kvm_guest_rs
rrc=$?
wait $t1
trc=$?
s1=$(cut -d' ' -f1 /proc/uptime)
disarm 1
ktap_print_msg "rmmod with $sl sleeper(s): rmmod rc $rrc, apf_touch rc $trc ($(cat /tmp/t1.out)) in $s0..$s1 s; $(dmesg | tail -n +$((mark + 1)) | grep 'async PF: unregistered')"
kgr_result '[ "$sl" = 1 ] && [ $rrc = 0 ] && [ $trc = 0 ] && msr_zero && ! loaded' \
	"rmmod while a task sleeps: the unload wakes it, its data is intact, MSR 0 on every CPU"

# 12: load/unload cycles under async-PF load (a long window on vCPU 1, touched
# slowly by a pinned task while the module comes and goes).
LOAD_PAGES=2000
load_start() {
	arm 1 $ADDR1 $LOAD_PAGES 3000000
	$TOUCH $ADDR1 $LOAD_PAGES 1 >/tmp/load.out 2>&1 &
	load=$!
}
load_stop() {
	wait $load
	lrc=$?
	disarm 1
}
"$ST/modload" $MOD kvmclock=0 >/dev/null
load_start
bad=0
i=0
while [ $i -lt "$CYCLES" ]; do
	if ! loaded && ! "$ST/modload" $MOD kvmclock=0 >/dev/null; then
		bad=$((bad + 1))
	fi
	kgr_msr_set_on_every_cpu $MSR || bad=$((bad + 1))
	sleep 0.2
	if ! rmmod kvm_guest_rs || ! msr_zero; then
		bad=$((bad + 1))
	fi
	i=$((i + 1))
done
load_stop
ktap_print_msg "$CYCLES load/unload cycles under load: $bad bad steps; $(cat /tmp/load.out)"
kgr_result '[ $bad = 0 ] && [ $lrc = 0 ]' \
	"$CYCLES insmod/rmmod cycles under async-PF load: MSR set after each load, 0 after each unload; data intact"

# 13: CPU1 offline/online cycles under async-PF load.
if [ -w /sys/devices/system/cpu/cpu1/online ]; then
	"$ST/modload" $MOD kvmclock=0 >/dev/null
	arm 0 $ADDR0 $LOAD_PAGES 3000000
	$TOUCH $ADDR0 $LOAD_PAGES >/tmp/load.out 2>&1 &
	load=$!
	kgr_cpu1_cycles "$CYCLES" $P/cpu1/enabled
	cyc=$?
	wait $load
	lrc=$?
	disarm 0
	ktap_print_msg "$CYCLES CPU1 cycles under load: $(cat /tmp/load.out); CPU1 registrations $(cat $P/cpu1/registrations); timeouts $(cat $P/timeouts)"
	kgr_result '[ $cyc = 0 ] && [ $lrc = 0 ] && [ "$(cat $P/cpu1/registrations)" = $((CYCLES + 1)) ] && [ "$(cat $P/timeouts)" = 0 ] && kgr_msr_set_on_every_cpu $MSR && rmmod kvm_guest_rs && msr_zero' \
		"$CYCLES CPU1 offline/online cycles under async-PF load: the record follows the CPU, data intact, no timeout, MSR 0 after rmmod"
else
	ktap_test_skip "CPU1 offline/online: no CPU1 or not hotpluggable"
fi

# 14-15: the module's parameter; nothing left enabled.
mark=$(dmesg | wc -l)
kgr_result '"$ST/modload" $MOD kvmclock=0 async_pf=0 >/dev/null && dmesg | tail -n +$((mark + 1)) | grep -q "feature async_pf: off by parameter" && [ ! -e $P ] && msr_zero && rmmod kvm_guest_rs' \
	"async_pf=0: the feature stays off, MSR 0"
kgr_result '! loaded && msr_zero' "MSR_KVM_ASYNC_PF_EN 0 on every CPU at the end"

# 16: a clean kernel log (the kernel-mode test's line is not a splat).
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log "possible recursive locking|circular locking|inconsistent lock state|sleeping function called|Unexpected async PF" </tmp/dmesg.new
ktap_finished
