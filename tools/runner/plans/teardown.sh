#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the teardown at kexec, in both kernels (make check).
exec sh /kgr/selftests/kvm_guest_rs/teardown_test.sh
