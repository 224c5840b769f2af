// SPDX-License-Identifier: GPL-2.0

//! The record layouts of `arch/x86/include/uapi/asm/kvm_para.h` that the host writes.

use kvm_para::abi::{msr, KvmStealTime, PvApfData, PvEoiWord};
use std::mem::{align_of, offset_of, size_of};

#[test]
fn steal_time_is_struct_kvm_steal_time() {
    assert_eq!(size_of::<KvmStealTime>(), 64);
    assert_eq!(align_of::<KvmStealTime>(), 64);
    assert_eq!(KvmStealTime::STEAL, 0);
    assert_eq!(KvmStealTime::VERSION, 8);
    assert_eq!(offset_of!(KvmStealTime, flags), 12);
    assert_eq!(KvmStealTime::PREEMPTED, 16);
    assert_eq!(offset_of!(KvmStealTime, pad), 20);
}

#[test]
fn apf_data_is_struct_kvm_vcpu_pv_apf_data() {
    // 68 bytes of fields, aligned to 64 as in C (`__attribute__((__aligned__(64)))`).
    assert_eq!(size_of::<PvApfData>(), 128);
    assert_eq!(PvApfData::FLAGS, 0);
    assert_eq!(PvApfData::TOKEN, 4);
    assert_eq!(offset_of!(PvApfData, enabled), 64);
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
