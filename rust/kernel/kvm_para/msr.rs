// SPDX-License-Identifier: GPL-2.0

//! The KVM paravirtual MSRs, as sealed descriptors.
//!
//! Most KVM paravirtual MSRs take the guest-physical address of a record that the host then
//! writes. Writing such an MSR from safe code would let it point the host (or, with the wrong
//! number, the CPU) at any memory, so a driver never names an MSR number: it names one of the
//! descriptors below, which only the kernel crate can create, and the owners of host-shared
//! memory ([`PerCpu`], [`with_record`]) write exactly that MSR, with a record of exactly its type,
//! size and alignment, and only the flag bits it allows:
//!
//! | Descriptor | MSR | Record | Align | Flags | Published by |
//! |---|---|---|---|---|---|
//! | [`SYSTEM_TIME_NEW`] | `0x4b564d01` | [`VcpuTimeInfo`] | 64 | enable | [`PerCpu`] |
//! | [`SYSTEM_TIME`] | `0x12` | [`VcpuTimeInfo`] | 64 | enable | [`PerCpu`] |
//! | [`WALL_CLOCK_NEW`] | `0x4b564d00` | [`WallClock`] | 8 | - | [`with_record`] |
//! | [`WALL_CLOCK`] | `0x11` | [`WallClock`] | 8 | - | [`with_record`] |
//! | [`STEAL_TIME`] | `0x4b564d03` | [`KvmStealTime`] | 64 | enable | [`PerCpu`] |
//! | [`PV_EOI_EN`] | `0x4b564d04` | [`PvEoiWord`] | 8 | enable | [`PerCpu`] |
//! | [`ASYNC_PF_EN`] | `0x4b564d02` | [`PvApfData`] | 64 | enable, 3 delivery flags | `kernel::async_pf` |
//!
//! [`ASYNC_PF_EN`]'s record is gated ([`HostRecord::GATED`]): once it is enabled, the host raises
//! `#PF` with a token in `CR2`, which only a registered async-PF dispatcher may handle, so
//! [`PerCpu::enable`] does not build for it and only the kernel crate's async page fault
//! registration enables it. Its companions [`AsyncPfInt`] (the page-ready vector) and
//! [`AsyncPfAck`] are plain value MSRs.
//!
//! Each per-CPU descriptor has at most one owner at a time ([`PerCpu::new`] fails with `EBUSY`
//! otherwise), and so has the pair [`SYSTEM_TIME_NEW`]/[`SYSTEM_TIME`], which set the same host
//! state. Owners in C (the in-tree guest) are not counted: a driver checks for them, and either
//! side only ever writes its own address or 0, so the host never writes freed memory either way.
//!
//! [`PerCpu`]: super::shared::PerCpu
//! [`PerCpu::new`]: super::shared::PerCpu::new
//! [`PerCpu::enable`]: super::shared::PerCpu::enable
//! [`with_record`]: super::shared::with_record
//!
//! Reference: <https://docs.kernel.org/virt/kvm/x86/msr.html>

use super::{
    abi::{
        self,
        KvmStealTime,
        PvApfData,
        PvEoiWord, //
    },
    shared::HostRecord,
    Feature, //
};
use crate::{
    msr::Msr,
    page::PAGE_SIZE,
    preempt::ThisCpu,
    prelude::*,
    pvclock::{
        VcpuTimeInfo,
        WallClock, //
    },
    sync::atomic::AtomicFlag,
};
use core::marker::PhantomData;

/// What a descriptor says about its MSR.
///
/// # Invariants
///
/// `align` is a power of two of at least 8 and at least the alignment of `R`; `enable | flags`
/// lies below `align`; `R` fits in a page.
struct Desc<R: HostRecord> {
    msr: Msr,
    align: usize,
    enable: u64,
    flags: u64,
    feature: Feature,
    name: &'static str,
    _r: PhantomData<R>,
}

impl<R: HostRecord> Desc<R> {
    /// Checks the invariants, at build time for the statics below.
    const fn new(
        msr: u32,
        align: usize,
        enable: u64,
        flags: u64,
        feature: Feature,
        name: &'static str,
    ) -> Self {
        assert!(align.is_power_of_two() && align >= 8 && align >= align_of::<R>());
        assert!(align <= PAGE_SIZE);
        assert!((enable | flags) < align as u64 && enable & flags == 0);
        assert!(size_of::<R>() <= PAGE_SIZE);
        // INVARIANT: Checked above.
        Self {
            msr: Msr::new(msr),
            align,
            enable,
            flags,
            feature,
            name,
            _r: PhantomData,
        }
    }
}

macro_rules! accessors {
    () => {
        /// Returns the MSR.
        pub const fn msr(&self) -> Msr {
            self.desc.msr
        }

        /// Returns the alignment the record needs (its slot is aligned at least so).
        pub const fn align(&self) -> usize {
            self.desc.align
        }

        /// Returns the bit that enables the feature, written with every address (0 if none).
        pub const fn enable_bit(&self) -> u64 {
            self.desc.enable
        }

        /// Returns the further flag bits a caller may add to the address.
        pub const fn flags(&self) -> u64 {
            self.desc.flags
        }

        /// Returns the host feature that makes the MSR available.
        pub const fn feature(&self) -> Feature {
            self.desc.feature
        }

        /// Returns the MSR's name, as in `msr.rst`.
        pub const fn name(&self) -> &'static str {
            self.desc.name
        }
    };
}

/// A per-CPU MSR whose record safe code may publish with
/// [`PerCpu`](super::shared::PerCpu): the host only writes the record, and nothing in the guest
/// must be in place before it does.
pub struct PerCpuMsr<R: HostRecord> {
    desc: Desc<R>,
    /// Set while a [`PerCpu`](super::shared::PerCpu) owns the MSR, or another MSR that points
    /// the host at the same per-vCPU state.
    owned: &'static AtomicFlag,
}

impl<R: HostRecord> PerCpuMsr<R> {
    accessors!();

    /// Returns the flag that is set while an owner exists.
    pub(crate) fn owned(&self) -> &AtomicFlag {
        self.owned
    }
}

/// An MSR whose record the host writes only while it handles the MSR write, such as the
/// kvmclock wall clock: [`with_record`](super::shared::with_record) publishes it.
pub struct OneShotMsr<R: HostRecord> {
    desc: Desc<R>,
}

impl<R: HostRecord> OneShotMsr<R> {
    accessors!();
}

/// Defines the descriptor static `$name` of the MSR `abi::msr::$name`, named `MSR_KVM_$name` as
/// in `msr.rst`; a per-CPU one gets an ownership flag of its own unless `owned` names a shared one.
macro_rules! descriptor {
    (
        $(#[$doc:meta])*
        $kind:ident<$record:ty> $name:ident:
            align $align:expr, enable $enable:expr, flags $flags:expr, $feature:ident
            $(, owned $($owned:tt)+)?
    ) => {
        $(#[$doc])*
        pub static $name: $kind<$record> = $kind {
            desc: Desc::new(
                abi::msr::$name,
                $align,
                $enable,
                $flags,
                Feature::$feature,
                concat!("MSR_KVM_", stringify!($name)),
            ),
            $(owned: descriptor!(@owned $kind $($owned)+),)?
        };
    };
    (@owned PerCpuMsr own) => {{
        static OWNED: AtomicFlag = AtomicFlag::new(false);
        &OWNED
    }};
    (@owned PerCpuMsr $($shared:tt)+) => {
        $($shared)+
    };
}

/// Ownership of the kvmclock record of a vCPU: KVM keeps one (`vcpu->arch.time`), whichever of
/// the two system-time MSRs sets it.
static KVMCLOCK_OWNED: AtomicFlag = AtomicFlag::new(false);

/// Alignment of a kvmclock record: a `struct pvclock_vsyscall_time_info` slot.
const PVCLOCK_ALIGN: usize = crate::pvclock::abi::SLOT_ALIGN;

descriptor! {
    /// `MSR_KVM_SYSTEM_TIME_NEW`: the per-CPU kvmclock record (needs `CLOCKSOURCE2`).
    PerCpuMsr<VcpuTimeInfo> SYSTEM_TIME_NEW:
        align PVCLOCK_ALIGN, enable abi::msr::ENABLED, flags 0, CLOCKSOURCE2,
        owned &KVMCLOCK_OWNED
}

descriptor! {
    /// `MSR_KVM_SYSTEM_TIME`: the legacy per-CPU kvmclock record (needs `CLOCKSOURCE`).
    PerCpuMsr<VcpuTimeInfo> SYSTEM_TIME:
        align PVCLOCK_ALIGN, enable abi::msr::ENABLED, flags 0, CLOCKSOURCE,
        owned &KVMCLOCK_OWNED
}

descriptor! {
    /// `MSR_KVM_WALL_CLOCK_NEW`: the wall clock at kvmclock 0, written during the MSR write
    /// (needs `CLOCKSOURCE2`).
    OneShotMsr<WallClock> WALL_CLOCK_NEW: align 8, enable 0, flags 0, CLOCKSOURCE2
}

descriptor! {
    /// `MSR_KVM_WALL_CLOCK`: the legacy wall clock (needs `CLOCKSOURCE`).
    OneShotMsr<WallClock> WALL_CLOCK: align 8, enable 0, flags 0, CLOCKSOURCE
}

descriptor! {
    /// `MSR_KVM_STEAL_TIME`: the per-CPU steal-time record (needs `STEAL_TIME`).
    PerCpuMsr<KvmStealTime> STEAL_TIME:
        align 64, enable abi::msr::ENABLED, flags 0, STEAL_TIME, owned own
}

descriptor! {
    /// `MSR_KVM_PV_EOI_EN`: the per-CPU PV EOI word (needs `PV_EOI`).
    ///
    /// Safe to publish without an EOI override: a guest that ignores the word and writes the APIC
    /// EOI register anyway only loses the fast path (the host clears its pending bit on the next
    /// exit, `apic_sync_pv_eoi_from_guest()`).
    PerCpuMsr<PvEoiWord> PV_EOI_EN:
        align 8, enable abi::msr::ENABLED, flags 0, PV_EOI, owned own
}

descriptor! {
    /// `MSR_KVM_ASYNC_PF_EN`: the per-CPU async page fault record (needs `ASYNC_PF`).
    PerCpuMsr<PvApfData> ASYNC_PF_EN:
        align 64,
        enable abi::msr::ENABLED,
        flags abi::msr::ASYNC_PF_SEND_ALWAYS
            | abi::msr::ASYNC_PF_DELIVERY_AS_PF_VMEXIT
            | abi::msr::ASYNC_PF_DELIVERY_AS_INT,
        ASYNC_PF,
        owned own
}

/// `MSR_KVM_ASYNC_PF_INT`: the vector of the page-ready interrupt (needs `ASYNC_PF_INT`).
pub struct AsyncPfInt(());

impl AsyncPfInt {
    /// The MSR.
    pub const MSR: Msr = Msr::new(abi::msr::ASYNC_PF_INT);

    /// Sets the page-ready vector of the current CPU.
    ///
    /// Returns `EIO` if the host refuses the write (`#GP`).
    ///
    /// # Safety
    ///
    /// `vector` must have a handler installed for as long as async page faults with interrupt
    /// delivery may be enabled on this CPU: the host injects it.
    pub unsafe fn set_vector(_cpu: ThisCpu<'_>, vector: u8) -> Result {
        // SAFETY: The value is a vector, not an address; the caller guarantees its handler.
        unsafe { Self::MSR.write_safe(u64::from(vector)) }
    }
}

/// `MSR_KVM_ASYNC_PF_ACK`: tells the host that the page-ready token was consumed (needs
/// `ASYNC_PF_INT`).
pub struct AsyncPfAck(());

impl AsyncPfAck {
    /// The MSR.
    pub const MSR: Msr = Msr::new(abi::msr::ASYNC_PF_ACK);

    /// Acknowledges the page-ready notification of the current CPU (writes 1).
    ///
    /// Returns `EIO` if the host refuses the write (`#GP`).
    #[inline]
    pub fn ack(_cpu: ThisCpu<'_>) -> Result {
        // SAFETY: Writing 1 lets the host deliver the next page-ready notification to this CPU:
        // it may write a token into the `ASYNC_PF_EN` record and inject the `ASYNC_PF_INT`
        // vector, which only happens while async PF is enabled, and `ASYNC_PF_EN` has no safe
        // publisher (the record is gated, `HostRecord::GATED`): whoever enabled it vouched for the
        // record and the vector.
        unsafe { Self::MSR.write_safe(1) }
    }
}

// SAFETY: `repr(C)` with integer fields only: every bit pattern is valid, no drop glue;
// `version` is an aligned `u32`.
unsafe impl HostRecord for KvmStealTime {
    const VERSION: Option<usize> = Some(KvmStealTime::VERSION);
}

// SAFETY: As for `KvmStealTime`.
unsafe impl HostRecord for PvEoiWord {}

// SAFETY: As for `KvmStealTime`.
unsafe impl HostRecord for PvApfData {
    const GATED: bool = true;
}
