#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The reliability soak: all four features of kvm_guest_rs at once, under a
# mixed workload, on the KVM host model (booted with kvm-pv-ext and
# run-guest --hostctl; the debug flavour has lockdep, KASAN, UBSAN,
# DEBUG_ATOMIC_SLEEP and kmemleak).
#
# The workload runs for the whole soak:
# - clock readers, one pinned thread per CPU (vdso_clock loop), also the CPU
#   burners (20000 empty iterations between reads: without the module the
#   clocksource is the HPET, an MMIO exit per read): no read may be older
#   than one any thread saw before it;
# - irq_storm: cross-CPU IPIs and 50 us hrtimer sleeps; a thread stuck on an
#   interrupt that never comes makes it fail at the end;
# - page touches in the host's async-PF window (apf_touch, one toucher on
#   CPU0, one floating): every first touch is an async page fault while the
#   module is loaded; the data is checked;
# - steal injected by the host (x-steal-ppm=50000 on every vCPU).
#
# Tests: load/unload cycles (every PV MSR set on every CPU after each load,
# 0 after each unload, and the host writes no guest memory any more); CPU
# offline/online cycles (each feature's record follows the CPU); both at
# once; VM stop/cont with PVCLOCK_GUEST_STOPPED (the clock jumps forward by
# no more than the downtime, steal keeps counting); live migration into a
# fresh QEMU (hostq migrate: the same checks, and the records stay
# registered on every CPU); the hostile-host matrix
# (every fault knob of every feature at run time, one at a time and three
# together: bounded, logged, no hang, and the module unloads clean after
# each); the workload's verdicts; kmemleak; a clean kernel log.  It ends
# with a table of what ran.
#
# kgr.soak=long (or KGR_SOAK=long): 100 cycles of each kind, 10 migrations
# and the hostile matrix one fault at a time too; the short form (make check)
# does 3 load cycles, one hotplug cycle, 2 migrations and only the faults
# together (the per-feature tests of make check have each fault alone).
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/dmesg_splats.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
K=/sys/kernel/kvm_guest_rs
TOUCH=/kgr/validate/apf_touch
KMEMLEAK=/sys/kernel/debug/kmemleak
PV_MSRS="0x4b564d01 0x4b564d00 0x12 0x11 0x4b564d02 0x4b564d03 0x4b564d04"
WRITES="x-kvm-pv-pvclock-writes x-kvm-pv-wallclock-writes x-kvm-pv-steal-updates x-kvm-pv-pv-eoi-armed x-kvm-pv-apf-injected x-kvm-pv-apf-ready"
FEATURES="kvmclock steal_time pv_eoi async_pf"
MODE=${KGR_SOAK:-$(kgr_arg soak)}
MODE=${MODE:-short}
# CPU hotplug is the slow part (about 20 s a cycle in the debug flavour under
# TCG with the workload): the short form does fewer of those.
case "$MODE" in
long) CYCLES=100 HP_CYCLES=100 MIGRATIONS=10 PLAN=29 ;;
*) CYCLES=3 HP_CYCLES=1 MIGRATIONS=2 PLAN=16 ;;
esac
# The async-PF window: 2^19 pages (the model takes fewer than 2^20), each
# "not present" on its first touch, ready 1 ms later; the touchers walk
# through it 16 pages at a time.
WIN=$((0x400000000000))
WIN_PAGES=524288
STOP=/tmp/soak.stop
KGR_HOSTILE_PROBE="" KGR_HOSTILE_READ="" KGR_HOSTILE_HOTPLUG=""
T0=$(cut -d. -f1 /proc/uptime)

ktap_print_header
kgr_skip_unless_kvm
kgr_skip_unless_hostctl
if ! grep -qw kvm-pv-ext /proc/cmdline; then
	ktap_skip_all "the in-tree guest owns the features (boot with kvm-pv-ext)"
	exit 4
fi
ktap_set_plan $PLAN
NCPU=$(nproc)
dmesg_mark=$(dmesg | wc -l)
ktap_print_msg "soak ($MODE): $CYCLES load cycles, $HP_CYCLES hotplug cycles, $MIGRATIONS migrations; $NCPU CPUs; host stable bit: $(kgr_arg stable)"

# --- helpers -----------------------------------------------------------------
# host NAME...: the model's counters x-kvm-pv-NAME, summed over the vCPUs.
host() { hostq cpu-sum $(for _n in "$@"; do echo "x-kvm-pv-$_n"; done) | awk '{ printf "%s%s", sep, $2; sep = " " } END { print "" }'; }
writes() { hostq cpu-sum $WRITES; }
# msrs_zero: every PV MSR reads 0 (or #GP) on every online CPU; a CPU going
# away during the read (exit 2) is read again.
msrs_zero() {
	"$ST/msr_read" $PV_MSRS >/tmp/msr.out 2>&1
	_r=$?
	[ $_r = 2 ] && sleep 0.1 && "$ST/msr_read" $PV_MSRS >/tmp/msr.out 2>&1 && return 0
	return $_r
}
# msrs_set: the MSRs of all four features are set on every online CPU.
msrs_set() {
	"$ST/msr_read" 0x4b564d01 0x4b564d02 0x4b564d03 0x4b564d04 >/tmp/msr.set 2>&1
	_n=0
	while read -r _ _ _ _ _v; do
		case "$_v" in 0x0 | "#GP" | "") ;; 0x*) _n=$((_n + 1)) ;; esac
	done </tmp/msr.set
	[ $_n = $((4 * NCPU)) ]
}
load() { "$ST/modload" $MOD >/tmp/modload.out 2>&1 && is_current kvm-clock-rs; }
# quiet_host: after an unload the host writes no guest memory (0.2 s).
quiet_host() {
	_w0=$(writes)
	sleep 0.2
	[ -n "$_w0" ] && [ "$_w0" = "$(writes)" ]
}
# TOTALS: the module's counters of all loads, summed at each unload (tally).
TALLY="kvmclock/reads kvmclock/fallbacks kvmclock/guest_stopped steal_time/backwards steal_time/stuck_odd pv_eoi/skipped async_pf/not_present async_pf/woken async_pf/early async_pf/duplicates async_pf/spurious async_pf/timeouts async_pf/exhausted"
for _t in $TALLY; do eval "T_${_t%/*}_${_t#*/}=0"; done
# each_counter FUNCTION: FUNCTION VAR VALUE for every counter of $TALLY, VAR
# being its name as a shell word (kvmclock_reads), VALUE 0 while not loaded.
# (Builtins only: a fork costs about 0.2 s in the debug flavour with kmemleak.)
each_counter() {
	for _t in $TALLY; do
		_v=0
		[ -r $K/$_t ] && read -r _v <$K/$_t
		"$1" "${_t%/*}_${_t#*/}" "$_v"
	done
}
add_total() { eval "T_$1=\$((T_$1 + $2))"; }
set_mark() { eval "M_$1=$2"; }
tally() { each_counter add_total; }
tval() { eval "echo \$T_${1%/*}_${1#*/}"; }
# mark_counters: remember the module's counters; grew FILE: FILE is above its mark.
mark_counters() { each_counter set_mark; }
grew() {
	_v=0
	[ -r $K/$1 ] && read -r _v <$K/$1
	eval "[ $_v -gt \$M_${1%/*}_${1#*/} ]"
}
# unload_clean: tally, unbind, rmmod; then every PV MSR is 0 and the host quiet.
unload_clean() {
	tally
	unload 2>/tmp/rmmod.out && msrs_zero && quiet_host
}
# features_follow CPU V: each feature's cpuN/enabled reads V.
features_follow() {
	for _f in $FEATURES; do
		_e=""
		read -r _e 2>/dev/null <$K/$_f/cpu$1/enabled
		[ "$_e" = "$2" ] || return 1
	done
}
# hotplug_cycle CHECK: take each CPU but CPU0 offline and online again; with
# CHECK=1 each feature's record must follow it.
hotplug_cycle() {
	_c=1
	while [ $_c -lt $NCPU ]; do
		echo 0 >/sys/devices/system/cpu/cpu$_c/online || return 1
		[ "$1" != 1 ] || features_follow $_c 0 || return 1
		echo 1 >/sys/devices/system/cpu/cpu$_c/online || return 1
		[ "$1" != 1 ] || features_follow $_c 1 || return 1
		_c=$((_c + 1))
	done
}
# knob CPU PROP JSON: one vCPU's host model property (CPU "all": every vCPU).
knob() {
	if [ "$1" = all ]; then
		kgr_knob "$2" "$3"
	else
		_p=$(hostq cpu-path "$1") && hostq qom-set "$_p" "$2" "$3" >/dev/null
	fi
}
elapsed() { echo $(($(cut -d. -f1 /proc/uptime) - $1)); }
ROWS=/tmp/soak.rows
: >$ROWS
# row WHAT COUNT ERRORS SECONDS: one line of the closing table.
row() { printf '%-28s %8s %6s %6s\n' "$1" "$2" "$3" "$4" >>$ROWS; }

# --- the workload --------------------------------------------------------------
rm -f $STOP
if ! kgr_knob x-steal-ppm 50000 x-apf-va-start $WIN x-apf-va-end $((WIN + WIN_PAGES * 4096)) \
	x-apf-delay-ns 1000000 x-apf-count $WIN_PAGES; then
	echo "Bail out! the host model refused the workload's knobs (x-steal-ppm, x-apf-*)"
	exit 1
fi
sh -c "renice -n 5 \$\$ >/dev/null; exec $ST/vdso_clock loop $STOP 20000" >/tmp/soak.clock 2>&1 &
READERS=$!
"$ST/irq_storm" 100000 >/tmp/soak.storm 2>&1 &
STORM=$!
# toucher NAME FIRST_PAGE [CPU]: rounds of 16 fresh pages until $STOP; its
# last line counts rounds and failed rounds.
toucher() {
	_pg=$2 _r=0 _bad=0
	while [ ! -e $STOP ] && [ $((_pg + 16)) -le $WIN_PAGES ]; do
		$TOUCH $((WIN + _pg * 4096)) 16 $3 >/tmp/touch.$1.last 2>&1 || _bad=$((_bad + 1))
		_pg=$((_pg + 32)) _r=$((_r + 1))
	done
	echo "rounds $_r failed $_bad"
}
toucher cpu0 0 0 >/tmp/soak.t0 &
T_CPU0=$!
toucher any 16 >/tmp/soak.t1 &
T_ANY=$!
ktap_print_msg "workload: clock readers on $NCPU CPUs, irq_storm, 2 async-PF touchers, 50000 ppm steal"

# --- 1-3: load/unload cycles ------------------------------------------------
t=$(cut -d. -f1 /proc/uptime)
bad=0 i=0
while [ $i -lt $CYCLES ]; do
	if ! load || ! msrs_set; then
		bad=$((bad + 1))
		ktap_print_msg "load $i: $(cat /tmp/modload.out) $(current)"
	fi
	sleep 0.3
	if ! unload_clean; then
		bad=$((bad + 1))
		ktap_print_msg "unload $i: $(cat /tmp/rmmod.out) $(tr '\n' ';' </tmp/msr.out)"
	fi
	i=$((i + 1))
done
row "insmod/rmmod cycles" $CYCLES $bad "$(elapsed $t)"
kgr_result '[ $bad = 0 ]' \
	"$CYCLES insmod/rmmod cycles under the workload: every PV MSR set on every CPU after each load, 0 after each unload, the host quiet"

# 2: CPU offline/online cycles with everything loaded.
t=$(cut -d. -f1 /proc/uptime)
if [ $NCPU -gt 1 ] && [ -w /sys/devices/system/cpu/cpu1/online ]; then
	bad=0 i=0
	load || bad=$((bad + 1))
	while [ $i -lt $HP_CYCLES ]; do
		hotplug_cycle 1 || {
			bad=$((bad + 1))
			ktap_print_msg "hotplug cycle $i: $(for f in $FEATURES; do printf '%s ' "$f $(cat $K/$f/cpu1/enabled 2>&1)"; done)"
		}
		i=$((i + 1))
	done
	msrs_set || bad=$((bad + 1))
	unload_clean || bad=$((bad + 1))
	row "CPU offline/online cycles" $((HP_CYCLES * (NCPU - 1))) $bad "$(elapsed $t)"
	kgr_result '[ $bad = 0 ]' \
		"$HP_CYCLES offline/online cycles of every CPU but CPU0, all four features loaded: each record follows its CPU; MSRs 0 after rmmod"
else
	row "CPU offline/online cycles" 0 - -
	ktap_test_skip "CPU offline/online cycles: one CPU"
fi

# 3: both at once.
t=$(cut -d. -f1 /proc/uptime)
if [ $NCPU -gt 1 ] && [ -w /sys/devices/system/cpu/cpu1/online ]; then
	: >/tmp/soak.hp.err
	(
		n=0 b=0
		while [ $n -lt $HP_CYCLES ]; do
			hotplug_cycle 0 2>>/tmp/soak.hp.err || b=$((b + 1))
			n=$((n + 1))
		done
		echo "$n $b"
	) >/tmp/soak.hp &
	hp=$!
	bad=0 i=0
	while [ $i -lt $CYCLES ]; do
		load || {
			bad=$((bad + 1))
			ktap_print_msg "load $i during hotplug: $(cat /tmp/modload.out) current $(current)"
		}
		sleep 0.1
		unload_clean || {
			bad=$((bad + 1))
			ktap_print_msg "unload $i during hotplug: $(cat /tmp/rmmod.out) $(tr '\n' ';' </tmp/msr.out)"
		}
		i=$((i + 1))
	done
	wait $hp
	[ -s /tmp/soak.hp.err ] && ktap_print_msg "hotplug: $(sort /tmp/soak.hp.err | uniq -c | tr '\n' ';')"
	read -r hp_n hp_bad </tmp/soak.hp
	row "both at once (load, hotplug)" "$CYCLES/$hp_n" $((bad + ${hp_bad:-1})) "$(elapsed $t)"
	kgr_result '[ $bad = 0 ] && [ "$hp_bad" = 0 ]' \
		"$CYCLES insmod/rmmod cycles while CPUs go offline and online ($hp_n hotplug cycles): MSRs 0 after each unload"
else
	row "both at once (load, hotplug)" 0 - -
	ktap_test_skip "load/unload during CPU hotplug: one CPU"
fi

# --- 4-6: VM stop and cont ---------------------------------------------------
load
knob all x-kvmclock-guest-stopped true
g0=$(cat $K/kvmclock/guest_stopped)
st0=$(kgr_steal_ns)
rm -f /tmp/pause.stop
sh -c "exec $ST/vdso_clock loop /tmp/pause.stop" >/tmp/pause.clock 2>&1 &
pr=$!
sleep 0.5
p0=$(cut -d. -f1 /proc/uptime)
hostq pause 2 >/dev/null
prc=$?
sleep 1
touch /tmp/pause.stop
wait $pr
knob all x-kvmclock-guest-stopped false
g1=$(cat $K/kvmclock/guest_stopped)
kgr_busy 1
st1=$(kgr_steal_ns)
gap=$(sed -n 's/.*max_gap_ns \([0-9]*\).*/\1/p' /tmp/pause.clock)
ktap_print_msg "VM stopped 2 s: $(cat /tmp/pause.clock); guest_stopped $g0 -> $g1; steal +$((st1 - st0)) ns"
row "VM stop/cont (2 s)" 1 $([ $prc = 0 ] && echo 0 || echo 1) "$(elapsed $p0)"
kgr_result '[ $prc = 0 ] && grep -q " warps 0 " /tmp/pause.clock && [ -n "$gap" ] && [ "$gap" -le 2500000000 ]' \
	"stop/cont: the clock never went back and jumped forward by no more than the 2 s downtime (max step ${gap:-?} ns)"
kgr_result '[ "$g1" -gt "$g0" ]' "stop/cont: PVCLOCK_GUEST_STOPPED seen and handled ($g0 -> $g1)"
kgr_result '[ "$st1" -gt "$st0" ]' "stop/cont: steal keeps counting ($st0 -> $st1 ns)"

# --- 7-9: live migration -------------------------------------------------------
# The host migrates the running VM into a file and restores it into a fresh
# QEMU (hostq migrate), with everything loaded and the workload running.
# The destination takes the host configuration again (steal, async-PF
# window, GUEST_STOPPED), as a management layer would.
loaded || load
knob all x-kvmclock-guest-stopped true
g0=$(cat $K/kvmclock/guest_stopped)
rm -f /tmp/mig.stop
sh -c "exec $ST/vdso_clock loop /tmp/mig.stop" >/tmp/mig.clock 2>&1 &
mr=$!
sleep 0.5
m0=$(cut -d. -f1 /proc/uptime)
mig_bad=0 msr_bad=0 dmax=0 i=0 downs=""
while [ $i -lt $MIGRATIONS ]; do
	if hostq migrate >/tmp/mig.out 2>&1 && read -r _ d </tmp/mig.out && [ -n "$d" ]; then
		downs="$downs $d"
		[ "$d" -le $dmax ] || dmax=$d
	else
		mig_bad=$((mig_bad + 1))
		ktap_print_msg "migration $i: $(cat /tmp/mig.out)"
	fi
	msrs_set || {
		msr_bad=$((msr_bad + 1))
		ktap_print_msg "migration $i: a PV MSR is 0 afterwards: $(tr '\n' ';' </tmp/msr.set)"
	}
	sleep 1
	i=$((i + 1))
done
touch /tmp/mig.stop
wait $mr
# On the last destination, for a second: the host writes guest memory
# (steal records, async-PF tokens), steal and async-PF episodes count, and
# interrupts come and take the PV EOI path.
mark_counters
w0=$(writes)
st0=$(kgr_steal_ns)
kgr_busy 1
st1=$(kgr_steal_ns)
w1=$(writes)
g1=$(cat $K/kvmclock/guest_stopped)
knob all x-kvmclock-guest-stopped false
gap=$(sed -n 's/.*max_gap_ns \([0-9]*\).*/\1/p' /tmp/mig.clock)
ktap_print_msg "$MIGRATIONS migrations, downtimes (ms):$downs; $(cat /tmp/mig.clock); guest_stopped $g0 -> $g1"
ktap_print_msg "a second after the last: steal +$((st1 - st0)) ns; async-PF episodes $M_async_pf_not_present -> $(cat $K/async_pf/not_present); skipped EOIs $M_pv_eoi_skipped -> $(cat $K/pv_eoi/skipped)"
row "live migrations" $MIGRATIONS $((mig_bad + msr_bad)) "$(elapsed $m0)"
kgr_result '[ $mig_bad = 0 ] && grep -q " warps 0 " /tmp/mig.clock && [ -n "$gap" ] && [ "$gap" -le $(((dmax + 1000) * 1000000)) ]' \
	"migration: the clock never went back and jumped forward by no more than the downtime (max step ${gap:-?} ns, longest downtime $dmax ms)"
kgr_result '[ "$g1" -ge $((g0 + MIGRATIONS)) ]' \
	"migration: PVCLOCK_GUEST_STOPPED seen and handled after every migration ($g0 -> $g1)"
kgr_result '[ $msr_bad = 0 ] && [ "$st1" -gt "$st0" ] && grew async_pf/not_present && grew pv_eoi/skipped && [ -n "$w0" ] && [ "$w0" != "$w1" ]' \
	"migration: every MSR set on every CPU after each; on the destination the host writes guest memory, steal counts, async PF and PV EOI go on"

# --- the hostile host (10-11, long form 10-24) --------------------------------------------------
# hostile NAME EVIDENCE SETUP... : with everything loaded, arm the fault
# (SETUP: "CPU PROP JSON" triples), let the workload run 2 s, lift it, run
# 1 s more. The fault must show (EVIDENCE: a shell condition, run after,
# with the new log lines in NEW_LOG and what KGR_HOSTILE_PROBE printed
# during the fault in PROBE), the storm keeps going (the readers' and
# touchers' verdicts come at the end), and the module unloads clean.
# KGR_HOSTILE_READ=PAGE: during the fault, the kernel copies 4 window pages
# from PAGE on (apf_work read); KGR_HOSTILE_HOTPLUG=1: every CPU but CPU0
# goes offline and online during the fault.
C1=$((NCPU - 1))
hostile() {
	_name=$1 _ev=$2
	shift 2
	_ht=$(cut -d. -f1 /proc/uptime)
	loaded || load
	_mark=$(dmesg | wc -l)
	PROBE0=""
	[ -n "$KGR_HOSTILE_PROBE" ] && PROBE0=$(eval "$KGR_HOSTILE_PROBE")
	_lift=""
	_ok=1
	while [ $# -ge 3 ]; do
		knob "$1" "$2" "$3" || _ok=0
		case "$3" in true) _off=false ;; \"*) _off='"none"' ;; *) _off=0 ;; esac
		_lift="$_lift $1 $2 $_off"
		shift 3
	done
	sleep 2
	PROBE=""
	[ -n "$KGR_HOSTILE_PROBE" ] && PROBE=$(eval "$KGR_HOSTILE_PROBE")
	[ -n "$KGR_HOSTILE_READ" ] && { "$ST/apf_work" read $((WIN + KGR_HOSTILE_READ * 4096)) 4 0 >/tmp/apf_read.out 2>&1 || _ok=0; }
	[ -n "$KGR_HOSTILE_HOTPLUG" ] && [ $NCPU -gt 1 ] && { hotplug_cycle 0 || _ok=0; }
	# shellcheck disable=SC2086
	set -- $_lift
	while [ $# -ge 3 ]; do
		knob "$1" "$2" "$3" || _ok=0
		shift 3
	done
	sleep 1
	NEW_LOG=$(dmesg | tail -n +$((_mark + 1)))
	eval "$_ev" || { _ok=0 && ktap_print_msg "$_name: no evidence of the fault ($_ev)"; }
	kill -0 $STORM 2>/dev/null || _ok=0
	unload_clean || { _ok=0 && ktap_print_msg "$_name: unload: $(cat /tmp/rmmod.out) $(tr '\n' ';' </tmp/msr.out)"; }
	ktap_print_msg "$_name: $(echo "$NEW_LOG" | grep -c kvm_guest_rs) module log lines; $(echo "$NEW_LOG" | grep kvm_guest_rs | tail -n 1 | cut -c1-150)"
	row "fault: $_name" 1 $((1 - _ok)) "$(elapsed $_ht)"
	HOSTILE_OK=$_ok
}
logged() { echo "$NEW_LOG" | grep -q "$1"; }
# single ARGS...: hostile_test ARGS, in the long form only.
single() { [ "$MODE" != long ] || hostile_test "$@"; }
hostile_test() { # hostile_test DESCRIPTION NAME EVIDENCE SETUP...
	_d=$1
	shift
	loaded || load
	mark_counters
	hostile "$@"
	kgr_result '[ $HOSTILE_OK = 1 ]' "hostile host: $_d"
}
# With one CPU the kvmclock faults land on CPU0, whose record the vDSO reads
# while kvm-clock-rs runs in the vDSO: a stuck odd version there makes the
# module take the vDSO back (kvmclock/vdso "withdrawn"), or user space would
# spin in vread_pvclock().
# The evidence is read before the unload (hostile evals it while loaded).
single "kvmclock record stuck at an odd version on CPU$C1: reads fall back, logged" \
	odd-version 'grew kvmclock/fallbacks && logged "pvclock record became unusable"' \
	$C1 x-kvmclock-fault '"odd-version"'
single "kvmclock record zeroed (never written) on CPU$C1: reads fall back, logged" \
	never-written 'grew kvmclock/fallbacks && logged "pvclock record became unusable"' \
	$C1 x-kvmclock-fault '"never-written"'
single "kvmclock record with tsc_to_system_mul 0 on CPU$C1: reads fall back, logged" \
	mul-zero 'grew kvmclock/fallbacks && logged "pvclock record became unusable"' \
	$C1 x-kvmclock-fault '"mul-zero"'
KGR_HOSTILE_PROBE='cat $K/kvmclock/cpu0/stable'
single "kvmclock records without the stable bit: seen, the clock stays monotonic" \
	clear-stable '{ [ "$PROBE0" != 1 ] || [ "$PROBE" = 0 ]; }' all x-kvmclock-clear-stable true
KGR_HOSTILE_PROBE=""
single "steal going backwards: clamped, counted, logged" \
	steal-backwards 'grew steal_time/backwards && logged "steal went backwards"' all x-steal-fault '"backwards"'
single "steal record stuck at an odd version: counted, logged" \
	steal-odd 'grew steal_time/stuck_odd && logged "stuck at an odd version"' all x-steal-fault '"odd-version"'
KGR_HOSTILE_HOTPLUG=1
single "PV EOI refused (#GP) for CPUs coming online: they come online without it, logged" \
	eoi-refuse '[ $NCPU = 1 ] || logged "MSR 0x4b564d04: registration failed"' all x-pv-eoi-refuse true
KGR_HOSTILE_HOTPLUG=""
single "page ready before its fault: early wakes, claimed" \
	apf-ready-first 'grew async_pf/early' all x-apf-fault '"ready-first"'
single "page-ready for tokens never handed out: kept as early wakes nobody claims" \
	apf-unknown 'grew async_pf/early' all x-apf-fault '"unknown-token"'
single "every page-ready token twice: the second ignored or kept as a stale early wake" \
	apf-duplicate 'grew async_pf/duplicates || grew async_pf/early' all x-apf-fault '"duplicate-token"'
single "page-ready with token 0: counted as spurious" \
	apf-token-zero 'grew async_pf/spurious' all x-apf-fault '"token-zero"'
single "a flood of unknown tokens beyond the table: the oldest early wakes give way, no sleeper refused" \
	apf-flood 'grew async_pf/early && ! grew async_pf/exhausted' all x-apf-fault '"flood"'
KGR_HOSTILE_READ=$((WIN_PAGES - 64))
single "\"page not present\" in kernel mode: logged and retried" \
	apf-kernel-mode 'logged "async #PF in kernel mode"' all x-apf-fault '"kernel-mode"'
KGR_HOSTILE_READ=""
hostile_test "three at once (steal backwards, token 0 with every page-ready, kvmclock odd version on CPU$C1)" \
	together 'grew steal_time/backwards && grew async_pf/spurious && grew kvmclock/fallbacks' \
	all x-steal-fault '"backwards"' all x-apf-fault '"token-zero"' $C1 x-kvmclock-fault '"odd-version"'
KGR_HOSTILE_HOTPLUG=1
KGR_HOSTILE_PROBE='cat $K/kvmclock/cpu0/stable'
hostile_test "three more at once (PV EOI refused for CPUs coming online, records without the stable bit, a flood of unknown tokens)" \
	together2 '{ [ "$PROBE0" != 1 ] || [ "$PROBE" = 0 ]; } && grew async_pf/early && ! grew async_pf/exhausted && { [ $NCPU = 1 ] || logged "MSR 0x4b564d04: registration failed"; }' \
	all x-pv-eoi-refuse true all x-kvmclock-clear-stable true all x-apf-fault '"flood"'
KGR_HOSTILE_HOTPLUG="" KGR_HOSTILE_PROBE=""

# --- the workload's verdicts ----------------------------------------------
touch $STOP
wait $T_CPU0 $T_ANY
# irq_storm's own watchdog is set for its full run: a thread stuck in an
# interrupt that never comes would keep it from exiting; give it 60 s, then
# SIGALRM makes it say "stuck" and exit 1.
kill -USR1 $STORM
n=0
while kill -0 $STORM 2>/dev/null && [ $n -lt 60 ]; do
	sleep 1
	n=$((n + 1))
done
kill -ALRM $STORM 2>/dev/null
wait $STORM
src=$?
wait $READERS
rrc=$?
knob all x-apf-count 0
kgr_knob x-steal-ppm 0
ktap_print_msg "clock readers: $(cat /tmp/soak.clock)"
ktap_print_msg "irq_storm: $(tr '\n' ' ' </tmp/soak.storm)"
ktap_print_msg "touchers: CPU0 $(cat /tmp/soak.t0); floating $(cat /tmp/soak.t1)"
read -r h_injected h_ready h_acked <<EOF
$(host apf-injected apf-ready apf-acked)
EOF
row "async PF episodes (host)" "$h_injected" $(($(tval async_pf/timeouts) + $(tval async_pf/exhausted))) -
kgr_result '[ $rrc = 0 ] && grep -q " warps 0 " /tmp/soak.clock' \
	"workload: the clock never went backwards on any CPU ($(sed -n 's/.*reads \([0-9]*\).*/\1/p' /tmp/soak.clock) reads)"
kgr_result '[ $src = 0 ]' "workload: interrupts kept coming on every CPU (irq_storm made progress)"
kgr_result 'grep -q "failed 0$" /tmp/soak.t0 && grep -q "failed 0$" /tmp/soak.t1 && [ "$(tval async_pf/timeouts)" = 0 ] && [ -n "$h_ready" ] && [ "$h_ready" = "$h_acked" ]' \
	"workload: every async-PF sleeper woke, data intact, every page-ready acknowledged ($(tval async_pf/not_present) episodes, $(tval async_pf/woken) woken, host ready $h_ready acked $h_acked)"

# --- leaks and the kernel log -----------------------------------------
# Objects younger than 5 s are never reported: wait, scan twice.
if [ -w $KMEMLEAK ] && sleep 6 && echo scan 2>/dev/null >$KMEMLEAK; then
	echo scan >$KMEMLEAK
	cat $KMEMLEAK >/tmp/kmemleak.out
	n=$(grep -c 'unreferenced object' /tmp/kmemleak.out)
	head -n 12 /tmp/kmemleak.out | while read -r l; do ktap_print_msg "kmemleak: $l"; done
	row "kmemleak reports" "$n" "$n" -
	kgr_result '[ "$n" = 0 ]' "kmemleak: no leak ($n unreferenced objects)"
else
	ktap_test_skip "kmemleak: not in this kernel (CONFIG_DEBUG_KMEMLEAK) or off (boot with kmemleak=on)"
fi
new_dmesg >/tmp/dmesg.new
kgr_test_clean_log "clocksource kvm-clock-rs unstable|possible recursive locking|circular locking|inconsistent lock state|sleeping function called|kmemleak: .*new suspected" </tmp/dmesg.new

# --- the table ----------------------------------------------------------------
steal_host=$(host steal-ns)
{
	row "clock reads (readers)" "$(sed -n 's/.*reads \([0-9]*\).*/\1/p' /tmp/soak.clock)" \
		"$(sed -n 's/.*warps \([0-9]*\).*/\1/p' /tmp/soak.clock)" -
	row "kvm-clock-rs reads (kernel)" "$(tval kvmclock/reads)" 0 -
	row "steal injected (host ns)" "$steal_host" 0 -
	row "PV EOI skipped EOIs" "$(tval pv_eoi/skipped)" 0 -
	row "irq_storm round trips" "$(sed -n 's/.*roundtrips \([0-9]*\).*/\1/p' /tmp/soak.storm)" "$([ $src = 0 ] && echo 0 || echo 1)" -
}
printf '# %-28s %8s %6s %6s\n' what count errors s
while IFS= read -r l; do printf '# %s\n' "$l"; done <$ROWS
ktap_print_msg "soak ($MODE) took $(elapsed $T0) s"
ktap_finished
