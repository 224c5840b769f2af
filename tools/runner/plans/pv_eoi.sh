#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan: the PV EOI guest tests (boot with kvm-pv-ext and a PCI serial port;
# the in-tree side runs in the kvmclock-check plan).
exec sh /kgr/selftests/kvm_guest_rs/pv_eoi_test.sh
