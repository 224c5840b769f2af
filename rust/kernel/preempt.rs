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
    arch::count_inc();
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
        unsafe { ThisCpu::new_unchecked(arch::this_cpu_id()) }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant this guard raised the preemption count.
        unsafe { arch::count_dec_and_resched() };
    }
}

/// The operations behind [`disable`] and [`Guard`], inline where the C macros are plain per-CPU
/// instructions.
///
/// On x86-64 `preempt_disable_notrace()`, `preempt_enable_notrace()` and
/// `raw_smp_processor_id()` are one or two `%gs`-relative instructions. Called through the C
/// helpers (which a module cannot inline unless `CONFIG_RUST_INLINE_HELPERS`), each costs a call,
/// the helper's `endbr64` and `ret`, and the caller-saved registers the call clobbers: in a clock
/// read, more than the work itself. With `CONFIG_PREEMPT_DYNAMIC` the reschedule goes through a
/// static call, so that configuration keeps the helpers.
#[cfg(all(CONFIG_X86_64, not(CONFIG_PREEMPT_DYNAMIC)))]
mod arch {
    use crate::{
        bindings,
        cpu::CpuId, //
    };

    // The instructions below are `incq`/`decq`/`movl` of the C per-CPU variables: check their
    // types, so a change in C breaks the build instead of the preemption count.
    const _: fn() -> (*const crate::ffi::c_ulong, *const crate::ffi::c_int) = || {
        (
            &raw const bindings::__preempt_count,
            &raw const bindings::cpu_number,
        )
    };
    crate::static_assert!(size_of::<crate::ffi::c_ulong>() == 8);
    crate::static_assert!(size_of::<crate::ffi::c_int>() == 4);

    /// `__preempt_count_inc()` followed by `barrier()`.
    #[inline(always)]
    pub(super) fn count_inc() {
        // SAFETY: `%gs` addresses the current CPU's per-CPU area in kernel mode, and
        // `__preempt_count` is a per-CPU `unsigned long`; an increment in one instruction cannot
        // be split by an interrupt or a migration. The asm is not `nomem`: it is a compiler
        // barrier, like `preempt_disable_notrace()`.
        unsafe {
            crate::asm!(
                "incq %gs:{pc}(%rip)";
                pc = sym bindings::__preempt_count,
                options(nostack),
            )
        };
    }

    /// `barrier()` followed by `__preempt_count_dec()` (and, with `CONFIG_PREEMPTION`, the
    /// reschedule when the count reaches 0 with a reschedule pending).
    ///
    /// # Safety
    ///
    /// The preemption count must have been raised by the caller.
    #[inline(always)]
    pub(super) unsafe fn count_dec_and_resched() {
        // SAFETY: As in `count_inc()`. x86 keeps `PREEMPT_NEED_RESCHED` inverted in the count,
        // so it reaches 0 exactly when preemption is enabled again and a reschedule is pending;
        // `preempt_schedule_notrace_thunk` then saves every register it clobbers, as for the C
        // caller (`__preempt_schedule_notrace()`). The stack is not touched otherwise.
        //
        // The `call` is where C needs `ASM_CALL_CONSTRAINT` (a frame set up before the call, for
        // frame-pointer unwinding and objtool). Without `nostack` the compiler treats the asm as
        // using the stack (it keeps the stack aligned for the call and the red zone is off in
        // the kernel), and with `CONFIG_FRAME_POINTER` the kernel builds Rust with
        // `-Cforce-frame-pointers=yes`, so every function containing it has its frame.
        #[cfg(CONFIG_PREEMPTION)]
        unsafe {
            crate::asm!(
                "decq %gs:{pc}(%rip)\n\tjnz 2f\n\tcall {resched}\n2:";
                pc = sym bindings::__preempt_count,
                resched = sym bindings::preempt_schedule_notrace_thunk,
            )
        };
        // SAFETY: As in `count_inc()`.
        #[cfg(not(CONFIG_PREEMPTION))]
        unsafe {
            crate::asm!(
                "decq %gs:{pc}(%rip)";
                pc = sym bindings::__preempt_count,
                options(nostack),
            )
        };
    }

    /// `raw_smp_processor_id()`: the current CPU, meaningful while the context cannot migrate.
    #[inline(always)]
    pub(super) fn this_cpu_id() -> CpuId {
        let cpu: u32;
        // SAFETY: `cpu_number` is a per-CPU `int`, read with one `%gs`-relative load. `pure`: the
        // value only changes with a migration, and the preemption count changes that allow one
        // are memory clobbers the compiler does not move this load across; an unused read is
        // dropped.
        unsafe {
            crate::asm!(
                "movl %gs:{nr}(%rip), {cpu:e}";
                nr = sym bindings::cpu_number,
                cpu = out(reg) cpu,
                options(nostack, pure, readonly, preserves_flags),
            )
        };
        // SAFETY: `cpu_number` of an online CPU is below `nr_cpu_ids()`.
        unsafe { CpuId::from_u32_unchecked(cpu) }
    }
}

/// The helper-based fallback of the module above.
#[cfg(not(all(CONFIG_X86_64, not(CONFIG_PREEMPT_DYNAMIC))))]
mod arch {
    use crate::{
        bindings,
        cpu::CpuId, //
    };

    #[inline]
    pub(super) fn count_inc() {
        // SAFETY: `preempt_disable_notrace()` can be called in any context.
        unsafe { bindings::preempt_disable_notrace() };
    }

    /// # Safety
    ///
    /// The preemption count must have been raised by the caller.
    #[inline]
    pub(super) unsafe fn count_dec_and_resched() {
        // SAFETY: The caller raised the preemption count.
        unsafe { bindings::preempt_enable_notrace() };
    }

    #[inline]
    pub(super) fn this_cpu_id() -> CpuId {
        CpuId::current()
    }
}
