# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the kvm_guest_rs feature tests (after ktap_helpers.sh).
#
# kgr_skip_unless_kvm: skip the whole test (exit 4) unless the guest runs on
# KVM or the host model.
# kgr_cpu1_cycles N FILE: take CPU1 offline and online N times; FILE (a
# feature's cpu1/enabled) must read 0 while it is offline and 1 once it is
# back. Returns 0 if every step did.
kgr_skip_unless_kvm() {
	/kgr/selftests/kvm_guest_rs/kvm_detect >/dev/null && return 0
	ktap_skip_all "not on KVM (boot with the host model: -cpu max,x-tcg-kvm-pv=on)"
	exit 4
}

kgr_cpu1_cycles() {
	_kgr_ok=0
	_kgr_i=0
	while [ $_kgr_i -lt "$1" ]; do
		echo 0 >/sys/devices/system/cpu/cpu1/online || _kgr_ok=1
		[ "$(cat "$2")" = 0 ] || _kgr_ok=1
		echo 1 >/sys/devices/system/cpu/cpu1/online || _kgr_ok=1
		[ "$(cat "$2")" = 1 ] || _kgr_ok=1
		_kgr_i=$((_kgr_i + 1))
	done
	return $_kgr_ok
}
