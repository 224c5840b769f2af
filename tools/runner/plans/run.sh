#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of `make run`: load the module, show what it detected, unload it.
MOD=/kgr/modules/kvm_guest_rs.ko
echo "# --- kvm_detect (user space CPUID) ---"
/kgr/selftests/kvm_guest_rs/kvm_detect
echo "# --- modload (finit_module) $MOD ${KGR_PARAMS:-} ---"
mark=$(dmesg | wc -l)
if /kgr/selftests/kvm_guest_rs/modload $MOD ${KGR_PARAMS:-}; then
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs
	echo "# --- lsmod ---"
	lsmod
	echo "# --- rmmod ---"
	rmmod kvm_guest_rs
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs | tail -n 1
else
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs
fi
echo "# module detection shown above"
exit 0
