#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Plan "deterministic": a workload for the host model's deterministic mode
# (-icount, -seed, -rtc clock=vm with a fixed base, x-steal-ppm, an async-PF
# window given on -cpu).  tools/make/validate-model.sh boots it twice and compares
# the two consoles byte for byte; the plan also checks what it measured.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
V=/kgr/validate
hyp() { awk -v c=$((2 + $1)) '/^ *HYP:/ { print $c }' /proc/interrupts; }
# ticks: centiseconds of uptime (= USER_HZ ticks) and the steal ticks of /proc/stat.
ticks() { echo "$(tr -d . </proc/uptime | cut -d' ' -f1) $(head -n1 /proc/stat | awk '{ print $9 }')"; }

ktap_print_header
ktap_set_plan 3
pct=$(kgr_arg steal_pct)
set -- $(ticks)
t0=$1 s0=$2
busy() { end=$(($(cut -d. -f1 /proc/uptime) + 3)); while [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do :; done; }
busy &
busy &
wait
set -- $(ticks)
dt=$((($1 - t0) * 2)) ds=$(($2 - s0))
pm=$((ds * 1000 / (dt > 0 ? dt : 1)))
ktap_print_msg "steal: $ds ticks in $dt CPU-ticks of elapsed time = $pm per mille (injected $pct %)"
if [ $pm -ge $((pct * 10 - 20)) ] && [ $pm -le $((pct * 10 + 20)) ]; then
	ktap_test_pass "icount: steal share $pm per mille within 2 % of $pct %"
else
	ktap_test_fail "icount: steal share $pm per mille within 2 % of $pct %"
fi
n=$(kgr_arg apf_pages)
h0=$(hyp 1)
out=$($V/apf_touch $((0x200000000000)) "$n" 1)
rc=$?
ktap_print_msg "$out; HYP on CPU1 +$(($(hyp 1) - h0))"
if [ $rc = 0 ]; then ktap_test_pass "icount: async PF data intact"; else ktap_test_fail "icount: async PF data intact"; fi
if [ $(($(hyp 1) - h0)) = "$n" ]; then
	ktap_test_pass "icount: $n page-ready interrupts for $n pages"
else
	ktap_test_fail "icount: $n page-ready interrupts for $n pages"
fi
grep -E '^ *(LOC|RES|CAL|HYP):' /proc/interrupts
ktap_finished
