// SPDX-License-Identifier: GPL-2.0

//! KVM paravirtual ABI: CPUID leaves, feature bits and MSR numbers.
//!
//! This file is pure logic; its one dependency, [`CpuIdResult`], is pure too
//! (`rust/kernel/cpuid/result.rs`). It is compiled into the kernel crate as
//! `kernel::kvm_para::abi` and, unchanged, into the host-side test crate
//! (`tools/host/kvm-para`), where it is unit- and property-tested with `cargo test`.
//!
//! C header: [`arch/x86/include/uapi/asm/kvm_para.h`](srctree/arch/x86/include/uapi/asm/kvm_para.h)
//!
//! Reference: <https://docs.kernel.org/virt/kvm/x86/cpuid.html>

/// CPUID leaf 1, ECX bit 31: running under a hypervisor.
pub const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;

/// First leaf of the hypervisor CPUID range.
pub const HYPERVISOR_LEAF_FIRST: u32 = 0x4000_0000;

/// Last base the signature scan looks at (inclusive).
pub const HYPERVISOR_LEAF_LAST: u32 = 0x4000_ff00;

/// Distance between two candidate bases of the signature scan.
pub const HYPERVISOR_LEAF_STEP: u32 = 0x100;

/// Offset of the feature leaf from the base (`KVM_CPUID_FEATURES`).
pub const FEATURES_LEAF_OFFSET: u32 = 1;

/// The KVM signature in EBX, ECX, EDX of the base leaf.
pub const SIGNATURE: [u8; 12] = *b"KVMKVMKVM\0\0\0";

pub use crate::cpuid::CpuIdResult;

/// Returns the 12 signature bytes a hypervisor base leaf stores in EBX, ECX and EDX (in that
/// order).
pub const fn signature(r: &CpuIdResult) -> [u8; 12] {
    let b = r.ebx.to_le_bytes();
    let c = r.ecx.to_le_bytes();
    let d = r.edx.to_le_bytes();
    [
        b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3],
    ]
}

/// A KVM paravirtual feature: a bit of EAX in the feature leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature(u32);

impl Feature {
    /// `KVM_FEATURE_CLOCKSOURCE`: kvmclock through the legacy MSRs 0x11/0x12.
    pub const CLOCKSOURCE: Self = Self(0);
    /// `KVM_FEATURE_CLOCKSOURCE2`: kvmclock through MSRs 0x4b564d00/01.
    pub const CLOCKSOURCE2: Self = Self(3);
    /// `KVM_FEATURE_ASYNC_PF`: `MSR_KVM_ASYNC_PF_EN`.
    pub const ASYNC_PF: Self = Self(4);
    /// `KVM_FEATURE_STEAL_TIME`: `MSR_KVM_STEAL_TIME`.
    pub const STEAL_TIME: Self = Self(5);
    /// `KVM_FEATURE_PV_EOI`: `MSR_KVM_PV_EOI_EN`.
    pub const PV_EOI: Self = Self(6);
    /// `KVM_FEATURE_ASYNC_PF_INT`: page-ready notification by interrupt.
    pub const ASYNC_PF_INT: Self = Self(14);
    /// `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`: the guest may trust `PVCLOCK_TSC_STABLE_BIT`.
    pub const CLOCKSOURCE_STABLE_BIT: Self = Self(24);

    /// The features this project uses, in the order they are reported.
    pub const ALL: [Self; 7] = [
        Self::CLOCKSOURCE,
        Self::CLOCKSOURCE2,
        Self::ASYNC_PF,
        Self::STEAL_TIME,
        Self::PV_EOI,
        Self::ASYNC_PF_INT,
        Self::CLOCKSOURCE_STABLE_BIT,
    ];

    /// Returns the bit number of the feature in the feature leaf's EAX.
    pub const fn bit(self) -> u32 {
        self.0
    }

    /// Returns the feature's name as in `Documentation/virt/kvm/x86/cpuid.rst`, without the
    /// `KVM_FEATURE_` prefix.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "CLOCKSOURCE",
            3 => "CLOCKSOURCE2",
            4 => "ASYNC_PF",
            5 => "STEAL_TIME",
            6 => "PV_EOI",
            14 => "ASYNC_PF_INT",
            24 => "CLOCKSOURCE_STABLE_BIT",
            _ => "UNKNOWN",
        }
    }
}

/// The set of features in EAX of the feature leaf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features(u32);

impl Features {
    /// Wraps a raw EAX value of the feature leaf.
    pub const fn from_raw(eax: u32) -> Self {
        Self(eax)
    }

    /// Returns the raw EAX value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Returns `true` if `feature` is present.
    pub const fn has(self, feature: Feature) -> bool {
        self.0 & (1 << feature.bit()) != 0
    }

    /// Returns `true` if the host offers a kvmclock through either MSR pair.
    pub const fn has_kvmclock(self) -> bool {
        self.has(Feature::CLOCKSOURCE2) || self.has(Feature::CLOCKSOURCE)
    }

    /// Returns `true` if async page faults with interrupt-based page-ready can be used.
    ///
    /// Like the C guest, this requires `ASYNC_PF_INT`, which implies `ASYNC_PF`.
    pub const fn has_async_pf_int(self) -> bool {
        self.has(Feature::ASYNC_PF_INT)
    }

    /// Iterates over the features of [`Feature::ALL`] that are present.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.into_iter().filter(move |f| self.has(*f))
    }
}

/// KVM paravirtual MSR numbers.
pub mod msr {
    /// Legacy wall clock (needs `CLOCKSOURCE`).
    pub const WALL_CLOCK: u32 = 0x11;
    /// Legacy system time (needs `CLOCKSOURCE`).
    pub const SYSTEM_TIME: u32 = 0x12;
    /// Wall clock (needs `CLOCKSOURCE2`).
    pub const WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
    /// Per-CPU system time (needs `CLOCKSOURCE2`).
    pub const SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
    /// Async page fault enable.
    pub const ASYNC_PF_EN: u32 = 0x4b56_4d02;
    /// Steal time.
    pub const STEAL_TIME: u32 = 0x4b56_4d03;
    /// PV EOI enable.
    pub const PV_EOI_EN: u32 = 0x4b56_4d04;
    /// Async page fault page-ready vector.
    pub const ASYNC_PF_INT: u32 = 0x4b56_4d06;
    /// Async page fault page-ready acknowledge.
    pub const ASYNC_PF_ACK: u32 = 0x4b56_4d07;
    /// Enable bit shared by the PV MSRs (`KVM_MSR_ENABLED`).
    pub const ENABLED: u64 = 1;
    /// `MSR_KVM_ASYNC_PF_EN`: also for faults in kernel mode (`KVM_ASYNC_PF_SEND_ALWAYS`).
    pub const ASYNC_PF_SEND_ALWAYS: u64 = 1 << 1;
    /// `MSR_KVM_ASYNC_PF_EN`: also while nested (`KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT`).
    pub const ASYNC_PF_DELIVERY_AS_PF_VMEXIT: u64 = 1 << 2;
    /// `MSR_KVM_ASYNC_PF_EN`: page ready by interrupt (`KVM_ASYNC_PF_DELIVERY_AS_INT`).
    pub const ASYNC_PF_DELIVERY_AS_INT: u64 = 1 << 3;
}

/// `struct kvm_steal_time`: the steal-time record of one vCPU (`MSR_KVM_STEAL_TIME`).
///
/// The host updates it around each vCPU entry, with `version` odd while it writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct KvmStealTime {
    /// Nanoseconds the vCPU was runnable but not running.
    pub steal: u64,
    /// Version, odd while the host updates the record.
    pub version: u32,
    /// Flags (none defined).
    pub flags: u32,
    /// `KVM_VCPU_PREEMPTED` and `KVM_VCPU_FLUSH_TLB`.
    pub preempted: u8,
    /// Padding.
    pub u8_pad: [u8; 3],
    /// Padding up to 64 bytes.
    pub pad: [u32; 11],
}

impl KvmStealTime {
    /// Byte offset of `steal`.
    pub const STEAL: usize = core::mem::offset_of!(Self, steal);
    /// Byte offset of `version`.
    pub const VERSION: usize = core::mem::offset_of!(Self, version);
    /// Byte offset of `preempted`.
    pub const PREEMPTED: usize = core::mem::offset_of!(Self, preempted);
}

/// Where one registration of a steal-time record begins: the host's `steal` and the record's
/// version then, and the value the steal clock had returned before.
///
/// The host writes a record's `steal` from 0 (a zeroed record) plus everything its vCPU waited
/// since KVM last charged it, its whole history at the first write after a vCPU's first enable.
/// A steal clock that must never go backwards and must not dump that history into the tick
/// continues each registration from its baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StealBaseline {
    /// The host's `steal` when the registration began.
    pub steal: u64,
    /// The record's (even) version then; 0 if the host had not written the record.
    pub version: u64,
    /// The value the steal clock returned before the registration began.
    pub start: u64,
}

impl StealBaseline {
    /// Maps a consistent reading (`steal` at the even, non-zero `version`) to the steal clock's
    /// value, before the monotonic clamp.
    ///
    /// `None` if the reading needs a new baseline first: there is none yet, or the record
    /// started again (its version went below the baseline's: registered anew). A `steal` below
    /// the baseline's gives 0, and one so large that the sum wraps gives a value below `start`:
    /// both below anything returned since, so the clamp catches them as backward steps (2^64 ns
    /// are 584 years: no host adds that much).
    #[inline(always)]
    pub fn value(&self, steal: u64, version: u32) -> Option<u64> {
        if self.version == 0 || u64::from(version) < self.version {
            return None;
        }
        Some(if steal < self.steal {
            0
        } else {
            (steal - self.steal).wrapping_add(self.start)
        })
    }
}

/// The PV EOI word of one vCPU (`MSR_KVM_PV_EOI_EN`); the host sets bit 0
/// (`KVM_PV_EOI_ENABLED`) when the guest may skip the EOI of the interrupt it injects.
///
/// The C guest uses an `unsigned long`; the host reads and writes the lowest byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct PvEoiWord {
    /// Bit 0: the EOI may be skipped.
    pub word: u64,
}

impl PvEoiWord {
    /// Byte offset of the `u32` that holds bit 0.
    pub const WORD: usize = 0;
    /// The bit the host sets (`KVM_PV_EOI_BIT`).
    pub const BIT: u32 = 0;
}

/// `struct kvm_vcpu_pv_apf_data`: the async page fault record of one vCPU
/// (`MSR_KVM_ASYNC_PF_EN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct PvApfData {
    /// Reason of a "page not present" #PF (`KVM_PV_REASON_PAGE_NOT_PRESENT`), 0 when consumed.
    pub flags: u32,
    /// Token of a "page ready" notification, 0 when consumed.
    pub token: u32,
    /// Padding.
    pub pad: [u8; 56],
    /// Set by the host when async page faults are enabled.
    pub enabled: u32,
}

impl PvApfData {
    /// Byte offset of `flags`.
    pub const FLAGS: usize = core::mem::offset_of!(Self, flags);
    /// Byte offset of `token`.
    pub const TOKEN: usize = core::mem::offset_of!(Self, token);
}

impl Default for PvApfData {
    fn default() -> Self {
        Self {
            flags: 0,
            token: 0,
            pad: [0; 56],
            enabled: 0,
        }
    }
}

// The layouts of `arch/x86/include/uapi/asm/kvm_para.h`.
const _: () = assert!(size_of::<KvmStealTime>() == 64 && KvmStealTime::PREEMPTED == 16);
const _: () =
    assert!(size_of::<PvApfData>() == 128 && core::mem::offset_of!(PvApfData, enabled) == 64);

/// Why [`detect`] found no KVM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectError {
    /// CPUID.1:ECX.HYPERVISOR is clear: bare metal, the 0x4000xxxx leaves are meaningless.
    NoHypervisor,
    /// A hypervisor is present, but no base in 0x40000000..=0x4000ff00 has the KVM signature.
    NoSignature,
}

/// What [`detect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    /// Base of the KVM CPUID leaves (0x40000000 unless relocated, e.g. behind Hyper-V).
    pub base: u32,
    /// Highest KVM leaf (EAX of the base leaf, with 0 read as `base + 1` for old hosts).
    pub max_leaf: u32,
    /// EAX of the feature leaf (0 if the host has no feature leaf).
    pub features: Features,
    /// EDX of the feature leaf (hints, e.g. `KVM_HINTS_REALTIME`).
    pub hints: u32,
}

/// Detects KVM with `cpuid`, a function that executes `CPUID` for a leaf (subleaf 0).
///
/// Follows `kvm_cpuid_base()` in `arch/x86/kernel/kvm.c`: the hypervisor bit first, then a scan
/// of the bases 0x40000000..=0x4000ff00 in steps of 0x100 for the signature, then the feature
/// leaf at `base | 1`. A base leaf whose EAX is 0 comes from an old host and means the feature
/// leaf exists; an EAX below `base + 1` means it does not.
pub fn detect(mut cpuid: impl FnMut(u32) -> CpuIdResult) -> Result<Detection, DetectError> {
    if cpuid(1).ecx & CPUID_1_ECX_HYPERVISOR == 0 {
        return Err(DetectError::NoHypervisor);
    }
    let mut base = HYPERVISOR_LEAF_FIRST;
    loop {
        let leaf = cpuid(base);
        if signature(&leaf) == SIGNATURE {
            let features_leaf = base | FEATURES_LEAF_OFFSET;
            let max_leaf = if leaf.eax == 0 {
                features_leaf
            } else {
                leaf.eax
            };
            let (features, hints) = if max_leaf >= features_leaf {
                let f = cpuid(features_leaf);
                (Features::from_raw(f.eax), f.edx)
            } else {
                (Features::default(), 0)
            };
            return Ok(Detection {
                base,
                max_leaf,
                features,
                hints,
            });
        }
        if base >= HYPERVISOR_LEAF_LAST {
            return Err(DetectError::NoSignature);
        }
        base += HYPERVISOR_LEAF_STEP;
    }
}
