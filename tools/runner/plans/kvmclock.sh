#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the kvm-clock-rs guest tests alone (make check's clamp boot).
exec sh /kgr/selftests/kvm_guest_rs/kvmclock_test.sh
