#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of `make run`: load the module, show what it detected, unload it.
MOD=/kgr/modules/kvm_guest_rs.ko
echo "# --- kvm_detect (user space CPUID) ---"
/kgr/selftests/kvm_guest_rs/kvm_detect
echo "# --- modload (finit_module) $MOD ${KGR_PARAMS:-} ---"
mark=$(dmesg | wc -l)
CS=/sys/devices/system/clocksource/clocksource0
KC=/sys/kernel/kvm_guest_rs/kvmclock
if /kgr/selftests/kvm_guest_rs/modload $MOD ${KGR_PARAMS:-}; then
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs
	echo "# --- lsmod ---"
	lsmod
	echo "# --- current clocksource: $(cat $CS/current_clocksource) ---"
	if [ -d $KC ]; then
		sleep 1
		# Every file the module shows, as it names them (Documentation/ABI).
		for f in "$KC"/*; do
			[ -f "$f" ] && echo "$f: $(cat "$f")"
		done
	fi
	if [ "$(cat $CS/current_clocksource)" = kvm-clock-rs ]; then
		# Timekeeping holds the module while its clocksource is current.
		echo "# --- unbind kvm-clock-rs ---"
		echo kvm-clock-rs >$CS/unbind_clocksource
		echo "# current clocksource: $(cat $CS/current_clocksource)"
	fi
	echo "# --- rmmod ---"
	rmmod kvm_guest_rs
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs | tail -n 1
else
	dmesg | tail -n +$((mark + 1)) | grep kvm_guest_rs
fi
echo "# module detection shown above"
exit 0
