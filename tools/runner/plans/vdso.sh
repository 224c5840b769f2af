#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the vDSO tests of kvm-clock-rs alone (boot with no-kvmclock); make
# check runs them in the kvmclock-check plan.
exec sh /kgr/selftests/kvm_guest_rs/vdso_test.sh
