#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the reliability soak, all four features at once (boot with kvm-pv-ext
# and --hostctl; kgr.soak=long for 100 cycles of each kind).
exec sh /kgr/selftests/kvm_guest_rs/soak_test.sh
