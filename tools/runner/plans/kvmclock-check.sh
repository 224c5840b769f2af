#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of the host-model boots of `make check`: the boot-time KUnit results
# (the doctests of the new abstractions, this time on the KVM host model, where
# e.g. kvm_para::shared::with_record() talks to a host), then the kvm-clock-rs
# guest tests.
rc=0
sh /kgr/plans/kunit-summary.sh || rc=1
sh /kgr/selftests/kvm_guest_rs/kvmclock_test.sh || { [ $? = 4 ] || rc=1; }
exit $rc
