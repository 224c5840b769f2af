#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the steal-time guest tests (boot with kvm-pv-ext, or with kgr.steal=intree
# without it for the in-tree side).
exec sh /kgr/selftests/kvm_guest_rs/steal_time_test.sh
