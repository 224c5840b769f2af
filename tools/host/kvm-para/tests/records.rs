// SPDX-License-Identifier: GPL-2.0

//! The record layouts of `arch/x86/include/uapi/asm/kvm_para.h` that the host writes.

use kvm_para::abi::{msr, KvmStealTime, PvApfData, PvEoiWord};
use std::mem::{align_of, offset_of, size_of};

#[test]
fn layouts_are_those_of_kvm_para_h() {
    // (what, value here, value of the C header)
    let expected = [
        (
            "sizeof(struct kvm_steal_time)",
            size_of::<KvmStealTime>(),
            64,
        ),
        (
            "alignof(struct kvm_steal_time)",
            align_of::<KvmStealTime>(),
            64,
        ),
        ("kvm_steal_time.steal", KvmStealTime::STEAL, 0),
        ("kvm_steal_time.version", KvmStealTime::VERSION, 8),
        ("kvm_steal_time.flags", offset_of!(KvmStealTime, flags), 12),
        ("kvm_steal_time.preempted", KvmStealTime::PREEMPTED, 16),
        ("kvm_steal_time.pad", offset_of!(KvmStealTime, pad), 20),
        // 68 bytes of fields, aligned to 64 as in C (`__attribute__((__aligned__(64)))`).
        (
            "sizeof(struct kvm_vcpu_pv_apf_data)",
            size_of::<PvApfData>(),
            128,
        ),
        ("kvm_vcpu_pv_apf_data.flags", PvApfData::FLAGS, 0),
        ("kvm_vcpu_pv_apf_data.token", PvApfData::TOKEN, 4),
        (
            "kvm_vcpu_pv_apf_data.enabled",
            offset_of!(PvApfData, enabled),
            64,
        ),
    ];
    for (what, here, c) in expected {
        assert_eq!(here, c, "{what}");
    }
}

#[test]
fn pv_eoi_bit_and_async_pf_flags() {
    assert_eq!(size_of::<PvEoiWord>(), 8);
    assert_eq!(PvEoiWord::BIT, 0);
    // KVM_ASYNC_PF_ENABLED, _SEND_ALWAYS, _DELIVERY_AS_PF_VMEXIT, _DELIVERY_AS_INT.
    assert_eq!(
        [
            msr::ENABLED,
            msr::ASYNC_PF_SEND_ALWAYS,
            msr::ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
            msr::ASYNC_PF_DELIVERY_AS_INT
        ],
        [1, 2, 4, 8]
    );
}
