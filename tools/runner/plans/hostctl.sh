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
ktap_set_plan 4
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
# Migration into a fresh QEMU: the guest goes on, and on the host model a
# knob set at run time is set again on the destination.
p0=$(hostq cpu-path 0)
knob=""
hostq qom-get "$p0" x-steal-ppm >/dev/null 2>&1 && hostq cpu-set x-steal-ppm 1000 >/dev/null && knob=1000
m=$(hostq migrate 2>&1)
v=$knob
[ -z "$knob" ] || v=$(hostq qom-get "$p0" x-steal-ppm 2>&1)
if echo "$m" | grep -q '^downtime_ms [0-9]' && [ "$v" = "$knob" ]; then
	ktap_test_pass "hostctl: migrated into a fresh QEMU ($m)${knob:+, x-steal-ppm set again}"
else
	ktap_test_fail "hostctl: migrated into a fresh QEMU (reply '$m', x-steal-ppm '$v', want '$knob')"
fi
[ -z "$knob" ] || hostq cpu-set x-steal-ppm 0 >/dev/null
ktap_finished
