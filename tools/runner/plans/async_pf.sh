#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the async page fault guest tests (boot with kvm-pv-ext; the in-tree
# side runs in the kvmclock-check plan).
exec sh /kgr/selftests/kvm_guest_rs/async_pf_test.sh
