// SPDX-License-Identifier: GPL-2.0

//! Tests of KVM detection against simulated CPUID tables.

use kvm_para::abi::{
    detect, msr, CpuIdResult, DetectError, Detection, Feature, Features, CPUID_1_ECX_HYPERVISOR,
};
use proptest::prelude::*;
use std::collections::HashMap;

/// Builds the EBX/ECX/EDX of a signature leaf.
fn sig(s: &[u8; 12], eax: u32) -> CpuIdResult {
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    CpuIdResult {
        eax,
        ebx: w(0),
        ecx: w(4),
        edx: w(8),
    }
}

/// A simulated CPU: unknown leaves return zeros, like leaves beyond the hypervisor's range.
struct Cpu {
    leaves: HashMap<u32, CpuIdResult>,
    calls: Vec<u32>,
}

impl Cpu {
    fn new(hypervisor: bool) -> Self {
        let mut leaves = HashMap::new();
        leaves.insert(
            1,
            CpuIdResult {
                ecx: if hypervisor {
                    CPUID_1_ECX_HYPERVISOR
                } else {
                    0
                },
                ..Default::default()
            },
        );
        Self {
            leaves,
            calls: Vec::new(),
        }
    }

    fn with(mut self, leaf: u32, r: CpuIdResult) -> Self {
        self.leaves.insert(leaf, r);
        self
    }

    fn detect(&mut self) -> Result<Detection, DetectError> {
        let leaves = &self.leaves;
        let calls = &mut self.calls;
        detect(|leaf| {
            calls.push(leaf);
            leaves.get(&leaf).copied().unwrap_or_default()
        })
    }
}

const KVM: &[u8; 12] = b"KVMKVMKVM\0\0\0";

#[test]
fn bare_metal_never_reads_hypervisor_leaves() {
    let mut cpu = Cpu::new(false).with(0x4000_0000, sig(KVM, 0x4000_0001));
    assert_eq!(cpu.detect(), Err(DetectError::NoHypervisor));
    assert_eq!(cpu.calls, vec![1]);
}

#[test]
fn tcg_signature_is_not_kvm() {
    let mut cpu = Cpu::new(true).with(0x4000_0000, sig(b"TCGTCGTCGTCG", 0x4000_0001));
    assert_eq!(cpu.detect(), Err(DetectError::NoSignature));
    // The whole range is scanned: 0x40000000..=0x4000ff00 in steps of 0x100, after leaf 1.
    assert_eq!(cpu.calls.len(), 1 + 256);
    assert_eq!(*cpu.calls.last().unwrap(), 0x4000_ff00);
}

#[test]
fn kvm_at_default_base() {
    let f = 1 << 3 | 1 << 5 | 1 << 24;
    let mut cpu = Cpu::new(true)
        .with(0x4000_0000, sig(KVM, 0x4000_0001))
        .with(
            0x4000_0001,
            CpuIdResult {
                eax: f,
                edx: 1,
                ..Default::default()
            },
        );
    let d = cpu.detect().unwrap();
    assert_eq!(d.base, 0x4000_0000);
    assert_eq!(d.max_leaf, 0x4000_0001);
    assert_eq!(d.features.raw(), f);
    assert_eq!(d.hints, 1);
    assert!(d.features.has(Feature::CLOCKSOURCE2));
    assert!(d.features.has(Feature::STEAL_TIME));
    assert!(d.features.has(Feature::CLOCKSOURCE_STABLE_BIT));
    assert!(!d.features.has(Feature::PV_EOI));
}

#[test]
fn kvm_relocated_behind_hyperv() {
    let mut cpu = Cpu::new(true)
        .with(0x4000_0000, sig(b"Microsoft Hv", 0x4000_000b))
        .with(0x4000_0100, sig(KVM, 0x4000_0101))
        .with(
            0x4000_0101,
            CpuIdResult {
                eax: 1 << 6,
                ..Default::default()
            },
        );
    let d = cpu.detect().unwrap();
    assert_eq!(d.base, 0x4000_0100);
    assert!(d.features.has(Feature::PV_EOI));
    // The feature leaf is read at base | 1, never at 0x40000001.
    assert!(!cpu.calls.contains(&0x4000_0001));
}

#[test]
fn old_host_eax_zero_means_feature_leaf_exists() {
    let mut cpu = Cpu::new(true).with(0x4000_0000, sig(KVM, 0)).with(
        0x4000_0001,
        CpuIdResult {
            eax: 1,
            ..Default::default()
        },
    );
    let d = cpu.detect().unwrap();
    assert_eq!(d.max_leaf, 0x4000_0001);
    assert!(d.features.has(Feature::CLOCKSOURCE));
    assert!(d.features.has_kvmclock());
}

#[test]
fn max_leaf_below_feature_leaf_means_no_features() {
    let mut cpu = Cpu::new(true)
        .with(0x4000_0000, sig(KVM, 0x4000_0000))
        .with(
            0x4000_0001,
            CpuIdResult {
                eax: u32::MAX,
                ..Default::default()
            },
        );
    let d = cpu.detect().unwrap();
    assert_eq!(d.features, Features::default());
    assert!(!cpu.calls.contains(&0x4000_0001));
}

#[test]
fn signature_at_last_base() {
    let mut cpu = Cpu::new(true)
        .with(0x4000_ff00, sig(KVM, 0x4000_ff01))
        .with(
            0x4000_ff01,
            CpuIdResult {
                eax: 1 << 14,
                ..Default::default()
            },
        );
    let d = cpu.detect().unwrap();
    assert_eq!(d.base, 0x4000_ff00);
    assert!(d.features.has_async_pf_int());
}

#[test]
fn abi_constants_match_uapi_header() {
    // arch/x86/include/uapi/asm/kvm_para.h
    assert_eq!(Feature::CLOCKSOURCE.bit(), 0);
    assert_eq!(Feature::CLOCKSOURCE2.bit(), 3);
    assert_eq!(Feature::ASYNC_PF.bit(), 4);
    assert_eq!(Feature::STEAL_TIME.bit(), 5);
    assert_eq!(Feature::PV_EOI.bit(), 6);
    assert_eq!(Feature::ASYNC_PF_INT.bit(), 14);
    assert_eq!(Feature::CLOCKSOURCE_STABLE_BIT.bit(), 24);
    assert_eq!(msr::WALL_CLOCK, 0x11);
    assert_eq!(msr::SYSTEM_TIME, 0x12);
    assert_eq!(msr::WALL_CLOCK_NEW, 0x4b564d00);
    assert_eq!(msr::SYSTEM_TIME_NEW, 0x4b564d01);
    assert_eq!(msr::ASYNC_PF_EN, 0x4b564d02);
    assert_eq!(msr::STEAL_TIME, 0x4b564d03);
    assert_eq!(msr::PV_EOI_EN, 0x4b564d04);
    assert_eq!(msr::ASYNC_PF_INT, 0x4b564d06);
    assert_eq!(msr::ASYNC_PF_ACK, 0x4b564d07);
    assert_eq!(msr::ENABLED, 1);
}

#[test]
fn feature_names_are_distinct_and_known() {
    let names: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
    for (i, n) in names.iter().enumerate() {
        assert_ne!(*n, "UNKNOWN");
        assert!(!names[i + 1..].contains(n));
    }
}

proptest! {
    /// Any signature other than KVM's, at any base, is refused.
    #[test]
    fn foreign_signatures_are_refused(bytes in any::<[u8; 12]>(), slot in 0u32..256, eax in any::<u32>()) {
        prop_assume!(&bytes != KVM);
        let mut cpu = Cpu::new(true).with(0x4000_0000 + slot * 0x100, sig(&bytes, eax));
        prop_assert_eq!(cpu.detect(), Err(DetectError::NoSignature));
    }

    /// KVM is found at whichever base it sits, and the features are read from base | 1.
    #[test]
    fn kvm_found_at_any_base(slot in 0u32..256, eax in any::<u32>(), hints in any::<u32>()) {
        let base = 0x4000_0000 + slot * 0x100;
        let mut cpu = Cpu::new(true)
            .with(base, sig(KVM, base | 1))
            .with(base | 1, CpuIdResult { eax, edx: hints, ..Default::default() });
        let d = cpu.detect().unwrap();
        prop_assert_eq!(d.base, base);
        prop_assert_eq!(d.features.raw(), eax);
        prop_assert_eq!(d.hints, hints);
        // The scan stops at the first match.
        prop_assert_eq!(cpu.calls.len() as u32, 1 + slot + 1 + 1);
    }

    /// `iter()` yields exactly the known features whose bit is set, in `ALL` order.
    #[test]
    fn features_iter_matches_bits(eax in any::<u32>()) {
        let f = Features::from_raw(eax);
        let got: Vec<Feature> = f.iter().collect();
        let want: Vec<Feature> = Feature::ALL.iter().copied().filter(|x| eax & (1 << x.bit()) != 0).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(f.has_kvmclock(), eax & 0b1001 != 0);
    }
}
