// SPDX-License-Identifier: GPL-2.0

//! Preemption control and proof of the current CPU.
//!
//! Per-CPU state (an MSR, a per-CPU slot) may only be touched while the code cannot migrate to
//! another CPU. [`ThisCpu`] is the proof: it names the current CPU and exists only where the
//! current context stays on that CPU, for example inside a [`disable`] section or in a CPU
//! hotplug callback that runs on its CPU (see [`crate::cpuhp`]).
//!
//! C header: [`include/linux/preempt.h`](srctree/include/linux/preempt.h)

use crate::{
    arch,
    cpu::CpuId,
    types::NotThreadSafe, //
};
use core::marker::PhantomData;

/// The CPU the current context runs on, valid for the lifetime `'a`.
///
/// # Invariants
///
/// For the whole lifetime `'a`, the current context runs on CPU `cpu` and cannot migrate.
#[derive(Clone, Copy, Debug)]
pub struct ThisCpu<'a> {
    cpu: CpuId,
    _not_send: PhantomData<(&'a (), NotThreadSafe)>,
}

impl<'a> ThisCpu<'a> {
    /// Creates the proof for `cpu`.
    ///
    /// # Safety
    ///
    /// For the whole lifetime `'a`, the current context must run on CPU `cpu` and must not be able
    /// to migrate (preemption or interrupts disabled, a per-CPU bound kthread, an IPI handler).
    #[inline]
    pub unsafe fn new_unchecked(cpu: CpuId) -> Self {
        debug_assert_eq!(cpu, CpuId::current());
        // INVARIANT: Guaranteed by the caller.
        Self {
            cpu,
            _not_send: PhantomData,
        }
    }

    /// Returns the CPU.
    #[inline]
    pub fn id(self) -> CpuId {
        self.cpu
    }

    /// Returns the CPU number as an index (below `nr_cpu_ids()`).
    #[inline]
    pub fn index(self) -> usize {
        // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
        self.cpu.as_u32() as usize
    }
}

/// A section with preemption disabled, created by [`disable`].
///
/// Uses the `notrace` variants, so it may be used in clock read paths that tracing itself calls.
///
/// # Invariants
///
/// Preemption is disabled (the preemption count was raised by this guard) while the guard exists.
pub struct Guard {
    _not_send: NotThreadSafe,
}

/// Disables preemption until the returned guard is dropped (`preempt_disable_notrace()`).
///
/// # Examples
///
/// ```
/// use kernel::{
///     cpu::CpuId,
///     preempt, //
/// };
///
/// let guard = preempt::disable();
/// let cpu = guard.this_cpu();
/// // No migration can happen while `guard` lives.
/// assert_eq!(cpu.id(), CpuId::current());
/// drop(guard);
/// ```
#[inline]
pub fn disable() -> Guard {
    arch::preempt_disable_notrace();
    // INVARIANT: Preemption was just disabled.
    Guard {
        _not_send: NotThreadSafe,
    }
}

impl Guard {
    /// Returns the current CPU, which cannot change while the guard lives.
    #[inline]
    pub fn this_cpu(&self) -> ThisCpu<'_> {
        // SAFETY: By the type invariant preemption is disabled for the lifetime of `&self`, so the
        // current context stays on the CPU it runs on now.
        unsafe { ThisCpu::new_unchecked(arch::raw_smp_processor_id()) }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant this guard raised the preemption count.
        unsafe { arch::preempt_enable_notrace() };
    }
}
