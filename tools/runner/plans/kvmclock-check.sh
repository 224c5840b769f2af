#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of the host-model boots of `make check`: the boot-time KUnit results
# (the doctests of the new abstractions, this time on the KVM host model, where
# e.g. kvm_para::shared::with_record() talks to a host), then the kvm-clock-rs
# guest tests and its vDSO tests. Before them, the in-tree side of the steal-time, PV EOI and async PF tests
# (this boot has no kvm-pv-ext, so the in-tree steal clock, PV EOI and async PF run, until kvmclock_test.sh's
# publish_stress takes MSR_KVM_STEAL_TIME from it).
# timed LABEL COMMAND...: run one suite, then say how long it took (this boot
# is the longest of make check).
timed() {
	read -r _t0 _ </proc/uptime
	_l=$1
	shift
	"$@"
	_r=$?
	read -r _t1 _ </proc/uptime
	echo "# $_l took $((${_t1%.*} - ${_t0%.*})) s"
	return $_r
}
rc=0
timed kunit sh /kgr/plans/kunit-summary.sh || rc=1
timed "steal (in-tree)" env KGR_STEAL=intree sh /kgr/selftests/kvm_guest_rs/steal_time_test.sh || { [ $? = 4 ] || rc=1; }
timed "PV EOI (in-tree)" env KGR_PV_EOI=intree sh /kgr/selftests/kvm_guest_rs/pv_eoi_test.sh || { [ $? = 4 ] || rc=1; }
timed "async PF (in-tree)" env KGR_ASYNC_PF=intree sh /kgr/selftests/kvm_guest_rs/async_pf_test.sh || { [ $? = 4 ] || rc=1; }
timed kvmclock sh /kgr/selftests/kvm_guest_rs/kvmclock_test.sh || { [ $? = 4 ] || rc=1; }
timed vDSO sh /kgr/selftests/kvm_guest_rs/vdso_test.sh || { [ $? = 4 ] || rc=1; }
exit $rc
