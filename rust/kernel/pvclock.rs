// SPDX-License-Identifier: GPL-2.0

//! Paravirtual clock (pvclock) records shared with the hypervisor.
//!
//! The pure logic — record layouts, scaling, the version protocol, the monotonic clamp — is in
//! [`abi`], which the host-side tests compile unchanged. This module connects it to the
//! hardware: records in shared memory ([`crate::kvm_para::shared`]), the ordered TSC, a global
//! `last_value`, and the kernel's `GUEST_STOPPED` consumers.
//!
//! C headers: [`arch/x86/include/asm/pvclock.h`](srctree/arch/x86/include/asm/pvclock.h),
//! [`arch/x86/include/asm/kvmclock.h`](srctree/arch/x86/include/asm/kvmclock.h)
//!
//! Reference: <https://docs.kernel.org/virt/kvm/x86/msr.html>

pub mod abi;

use crate::{
    arch, bindings,
    kvm_para::shared::{
        HostRecord,
        PerCpu,
        Slot, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        barrier::barrier,
        Arc, //
    },
    tsc,
};

pub use abi::{
    Body,
    Known,
    Reading,
    Source,
    VcpuTimeInfo,
    WallClock, //
};

// SAFETY: `VcpuTimeInfo` is `repr(C)` with integer fields only: every bit pattern is valid, and
// it has no drop glue; `version` is the aligned `u32` at offset 0.
unsafe impl HostRecord for VcpuTimeInfo {
    const VERSION: Option<usize> = Some(0);
}

// SAFETY: As for `VcpuTimeInfo`.
unsafe impl HostRecord for WallClock {
    const VERSION: Option<usize> = Some(0);
}

/// The version word of any record that has one ([`HostRecord::VERSION`]); using it on a record
/// without one fails to build (when the code is generated: `cargo check` and clippy do not see
/// it).
impl<R: HostRecord> abi::Versioned for Slot<'_, R> {
    #[inline]
    fn load_version(&self) -> u32 {
        self.load_u32(
            const {
                match R::VERSION {
                    Some(offset) => offset,
                    None => panic!("the record has no version word"),
                }
            },
        )
    }

    #[inline]
    fn read_barrier(&self) {
        // `virt_rmb()`: x86 does not reorder loads with loads, so a compiler barrier suffices.
        barrier();
    }
}

impl abi::SharedRecord for Slot<'_, VcpuTimeInfo> {
    #[inline]
    fn load_body(&self) -> Body {
        // Multiplier, shift and flags come from one load of the word at offset 24.
        Body::from_words(self.load_u64(8), self.load_u64(16), self.load_u64(24))
    }
}

impl abi::SharedWallClock for Slot<'_, WallClock> {
    #[inline]
    fn load_time(&self) -> (u32, u32) {
        (self.load_u32(4), self.load_u32(8))
    }
}

/// The global last value returned by a clock that clamps its readings (see
/// [`abi::clamp_monotonic`]).
///
/// # Examples
///
/// ```
/// use kernel::pvclock::{
///     abi,
///     LastValue, //
/// };
///
/// let last = LastValue::new();
/// assert_eq!(abi::clamp_monotonic(&last, 100).value, 100);
/// let c = abi::clamp_monotonic(&last, 90);
/// assert_eq!((c.value, c.clamped), (100, true));
/// assert_eq!(last.get(), 100);
/// ```
pub struct LastValue(Atomic<u64>);

impl LastValue {
    /// Creates a last value of 0.
    pub const fn new() -> Self {
        Self(Atomic::new(0))
    }

    /// Returns the current value.
    #[inline]
    pub fn get(&self) -> u64 {
        abi::LastValue::load(self)
    }
}

impl Default for LastValue {
    fn default() -> Self {
        Self::new()
    }
}

impl abi::LastValue for LastValue {
    /// One `movq` on x86-64 ([`crate::arch`]).
    #[inline]
    fn load(&self) -> u64 {
        // SAFETY: `self.0` is a valid, aligned `u64` that is only accessed atomically.
        unsafe { arch::atomic64_read(self.0.as_ptr()) }
    }

    /// One `lock cmpxchgq` on x86-64 ([`crate::arch`]).
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> core::result::Result<u64, u64> {
        // ORDERING: Only the value matters; the records are read before and independently.
        // SAFETY: As in `load()`.
        let prev = unsafe { arch::atomic64_cmpxchg_relaxed(self.0.as_ptr(), current, new) };
        if prev == current {
            Ok(prev)
        } else {
            Err(prev)
        }
    }
}

/// Reads a pvclock record in shared memory with the current TSC (see [`abi::read`]).
///
/// `record` should be the current CPU's (with the current CPU pinned), so that the TSC and the
/// record belong to the same CPU. `fallback` is only called if the record is unusable.
#[inline]
pub fn read(
    record: &Slot<'_, VcpuTimeInfo>,
    fallback: impl FnOnce() -> Body,
    last: &LastValue,
    trust_stable: bool,
) -> Reading {
    abi::read(record, fallback, tsc::read_ordered, last, trust_stable)
}

/// Reads a pvclock record whose version an earlier [`read`] checked (see [`abi::read_known`]).
///
/// Same conditions as [`read`].
#[inline(always)]
pub fn read_known(record: &Slot<'_, VcpuTimeInfo>, known: impl FnOnce() -> u64) -> abi::Known {
    abi::read_known(record, known, tsc::read_ordered)
}

/// Publication of per-CPU pvclock records in `hv_clock_per_cpu`, the pointers the kernel's
/// watchdogs check for `PVCLOCK_GUEST_STOPPED`.
///
/// `kvm_check_and_clear_guest_paused()` (`arch/x86/kernel/kvmclock.c`) is called by the soft
/// lockup detector on every period, by the workqueue watchdog and by the RCU stall detector
/// before it reports a stall. If the current CPU's `hv_clock_per_cpu` record has
/// `GUEST_STOPPED`, it clears the flag and touches all watchdogs (`pvclock_touch_watchdogs()`:
/// soft lockup, clocksource watchdog, RCU stall, hung task), none of which a module could reach
/// otherwise. The in-tree kvmclock fills these pointers at boot; with `no-kvmclock` they stay
/// NULL, and an owner of the records can publish its own.
///
/// # Invariants
///
/// While `self` exists, `hv_clock_per_cpu` of every possible CPU points to that CPU's record in
/// `records`, which `self` keeps alive.
pub struct PausedHook {
    records: Arc<PerCpu<VcpuTimeInfo>>,
}

impl PausedHook {
    /// Points `hv_clock_per_cpu` of every possible CPU at its record in `records`.
    ///
    /// Fails with `EBUSY` if a pointer is already set (the in-tree kvmclock runs), `EINVAL` if the
    /// records are not laid out like `struct pvclock_vsyscall_time_info` (64-byte slots), and
    /// `ENODEV` without `CONFIG_KVM_GUEST`.
    pub fn new(records: Arc<PerCpu<VcpuTimeInfo>>) -> Result<Self> {
        Self::publish(&records)?;
        // INVARIANT: Every pointer was published above.
        Ok(Self { records })
    }

    #[cfg(CONFIG_KVM_GUEST)]
    fn publish(records: &PerCpu<VcpuTimeInfo>) -> Result {
        if records.stride() != size_of::<bindings::pvclock_vsyscall_time_info>() {
            return Err(EINVAL);
        }
        for (n, cpu) in crate::cpu::possible_cpus().enumerate() {
            // SAFETY: `cpu` is a possible CPU, so its per-CPU area exists; the pointer is only
            // accessed atomically here and with single loads by its readers. The record is
            // 64-byte aligned in a 64-byte slot, the layout of `struct
            // pvclock_vsyscall_time_info`, and stays allocated until `drop()` resets the pointer
            // and waits for the readers.
            let prev = unsafe {
                crate::sync::atomic::cmpxchg(
                    bindings::hv_clock_per_cpu_ptr(cpu.as_u32()),
                    core::ptr::null_mut(),
                    Self::ours(records, cpu),
                    Relaxed,
                )
            };
            if prev.is_err() {
                // Someone else (the in-tree kvmclock, another hook) owns this CPU's pointer:
                // take back the ones set so far. The watchdogs may have loaded one of them
                // meanwhile; they run with interrupts or preemption disabled, so a grace period
                // later none uses it and `records` may go.
                Self::unpublish(records, crate::cpu::possible_cpus().take(n));
                if n > 0 {
                    // SAFETY: Called in process context (`new()` is).
                    unsafe { bindings::synchronize_rcu() };
                }
                return Err(EBUSY);
            }
        }
        Ok(())
    }

    /// Returns the pointer `hv_clock_per_cpu` of `cpu` gets from `records`.
    #[cfg(CONFIG_KVM_GUEST)]
    fn ours(
        records: &PerCpu<VcpuTimeInfo>,
        cpu: crate::cpu::CpuId,
    ) -> *mut bindings::pvclock_vsyscall_time_info {
        records
            .slot(cpu)
            .as_ptr()
            .cast::<bindings::pvclock_vsyscall_time_info>()
    }

    /// Resets the pointers of `cpus` that still point into `records`.
    #[cfg(CONFIG_KVM_GUEST)]
    fn unpublish(records: &PerCpu<VcpuTimeInfo>, cpus: impl Iterator<Item = crate::cpu::CpuId>) {
        for cpu in cpus {
            // SAFETY: `cpu` is a possible CPU; the pointer is only reset if it is still ours.
            let _ = unsafe {
                crate::sync::atomic::cmpxchg(
                    bindings::hv_clock_per_cpu_ptr(cpu.as_u32()),
                    Self::ours(records, cpu),
                    core::ptr::null_mut(),
                    Relaxed,
                )
            };
        }
    }

    #[cfg(not(CONFIG_KVM_GUEST))]
    fn publish(_records: &PerCpu<VcpuTimeInfo>) -> Result {
        Err(ENODEV)
    }

    /// Returns `true` if some CPU's `hv_clock_per_cpu` is set, i.e. the in-tree kvmclock (or
    /// another hook) owns the per-CPU pvclock records.
    ///
    /// This is how to tell whether the in-tree driver runs: with `no-kvmclock` (or `nopv`) the
    /// pointers stay NULL. The system-time MSR itself is no indication: firmware such as SeaBIOS
    /// registers a record of its own and leaves it registered when it boots the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::pvclock::PausedHook;
    ///
    /// // Off KVM, or without `CONFIG_KVM_GUEST`, nothing owns the records.
    /// if kernel::kvm_para::KvmPara::detect().is_err() {
    ///     assert!(!PausedHook::in_use());
    /// }
    /// ```
    pub fn in_use() -> bool {
        #[cfg(CONFIG_KVM_GUEST)]
        {
            crate::cpu::possible_cpus().any(|cpu| {
                // SAFETY: `cpu` is a possible CPU, so its per-CPU area exists; the pointer is
                // read with one load.
                let p = unsafe {
                    crate::sync::atomic::atomic_load(
                        bindings::hv_clock_per_cpu_ptr(cpu.as_u32()),
                        Relaxed,
                    )
                };
                !p.is_null()
            })
        }
        #[cfg(not(CONFIG_KVM_GUEST))]
        false
    }

    /// Returns the published records.
    pub fn records(&self) -> &Arc<PerCpu<VcpuTimeInfo>> {
        &self.records
    }
}

impl Drop for PausedHook {
    fn drop(&mut self) {
        #[cfg(CONFIG_KVM_GUEST)]
        {
            Self::unpublish(&self.records, crate::cpu::possible_cpus());
            // The readers run in interrupt context or with preemption disabled: after a grace
            // period none of them still uses a record.
            // SAFETY: Called in process context.
            unsafe { bindings::synchronize_rcu() };
        }
    }
}

/// Tells the hung task detector that the guest was stopped (`reset_hung_task_detector()`).
///
/// The one watchdog toucher of `pvclock_touch_watchdogs()` that modules can call. Callable in any
/// context.
#[inline]
pub fn touch_hung_task_detector() {
    // SAFETY: `reset_hung_task_detector()` only sets a flag.
    unsafe { bindings::reset_hung_task_detector() };
}
