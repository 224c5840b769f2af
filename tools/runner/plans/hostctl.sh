#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Checks the guest-to-host monitor channel (hostq / tools/runner/hostctl.py)
# that the model validation and feature tests rely on.
. /kgr/selftests/kselftest/ktap_helpers.sh
ktap_print_header
if ! grep -q 'kgr.hostctl=1' /proc/cmdline; then
	ktap_skip_all "booted without run-guest --hostctl"
	exit 4
fi
ktap_set_plan 3
out=$(hostq hmp info status)
if echo "$out" | grep -q "running"; then
	ktap_test_pass "hostctl: HMP 'info status' answers 'running'"
else
	ktap_test_fail "hostctl: HMP 'info status' answers 'running' (got: $out)"
fi
p=$(hostq cpu-path 1)
v=$(hostq qom-get "$p" type 2>&1)
if [ -n "$p" ] && echo "$v" | grep -q 'x86_64-cpu'; then
	ktap_test_pass "hostctl: vCPU 1 found by QOM path ($p)"
else
	ktap_test_fail "hostctl: vCPU 1 found by QOM path (path '$p', type '$v')"
fi
if ! hostq no-such-request 2>/dev/null; then
	ktap_test_pass "hostctl: an unknown request is refused"
else
	ktap_test_fail "hostctl: an unknown request is refused"
fi
ktap_finished
