#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of tools/runner/trace-path: a few async PF episodes on vCPU 1 (page
# ready 1 ms after the fault), so that the page-ready path can be traced
# from the host. kgr.trace=B loads the module (boot it with kvm-pv-ext);
# kgr.trace=A leaves the in-tree async PF in charge. Prints
# "# trace module_text ADDR" for the symbols of the module.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
SIDE=$(kgr_arg trace)
PAGES=${KGR_TRACE_PAGES:-8}
ktap_print_header
ktap_set_plan 1
ok=1
if [ "$SIDE" = B ]; then
	"$ST/modload" $MOD >/dev/null || ok=0
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo "# trace module_text $(awk '$1 == "kvm_guest_rs" { print $6 }' /proc/modules)"
fi
sleep 1
p=$(hostq cpu-path 1) || ok=0
a=$((0x200000000000))
hostq qom-set "$p" x-apf-va-start $a >/dev/null &&
	hostq qom-set "$p" x-apf-va-end $((a + PAGES * 4096)) >/dev/null &&
	hostq qom-set "$p" x-apf-delay-ns 1000000 >/dev/null &&
	hostq qom-set "$p" x-apf-count $PAGES >/dev/null || ok=0
"$ST/apf_work" cost $a $PAGES 1 || ok=0
hostq qom-set "$p" x-apf-count 0 >/dev/null
kgr_result '[ $ok = 1 ]' "trace $SIDE: $PAGES async PF episodes on vCPU 1"
ktap_finished
