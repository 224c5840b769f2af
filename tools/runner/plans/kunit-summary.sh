#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Reports the KUnit suites that ran at boot (built-in, e.g. the kernel
# crate's Rust doctests) as KTAP, from /sys/kernel/debug/kunit/*/results:
# one result per suite, plus one per test case whose name matches
# $KGR_KUNIT_DETAIL (the project's own doctests).
. /kgr/selftests/kselftest/ktap_helpers.sh
DETAIL=${KGR_KUNIT_DETAIL:-rust_doctest_kernel_(cpuhp|cpuid|kvm_para|local|msr|percpu|preempt|pvclock|sysfs|time_clocksource|tsc)_}
K=/sys/kernel/debug/kunit

ktap_print_header
if [ ! -d "$K" ]; then
	ktap_skip_all "no $K (CONFIG_KUNIT_DEBUGFS)"
	exit 4
fi
suites=$(ls "$K")
n=0
for s in $suites; do
	n=$((n + 1 + $(grep -cE "^ +(not )?ok [0-9]+ ($DETAIL)" "$K/$s/results")))
done
ktap_set_plan "$n"
for s in $suites; do
	r="$K/$s/results"
	cases=$(grep -cE '^ +(not )?ok [0-9]+ ' "$r")
	failed=$(grep -cE '^ +not ok [0-9]+ ' "$r")
	grep -E "^ +(not )?ok [0-9]+ ($DETAIL)" "$r" >/tmp/kunit-detail
	while read -r line; do
		name=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ //')
		case "$line" in
		ok*) ktap_test_pass "kunit: $name" ;;
		*) ktap_test_fail "kunit: $name" ;;
		esac
	done </tmp/kunit-detail
	if [ "$failed" = 0 ] && [ "$cases" -gt 0 ]; then
		ktap_test_pass "kunit suite $s ($cases cases)"
	else
		grep -E '^ +not ok ' "$r" | head -n 5 | while read -r l; do ktap_print_msg "$l"; done
		ktap_test_fail "kunit suite $s ($cases cases, $failed failed)"
	fi
done
ktap_finished
