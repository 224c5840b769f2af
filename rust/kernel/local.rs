// SPDX-License-Identifier: GPL-2.0

//! CPU-local counters (`local64_t`).
//!
//! A statistic that only one CPU updates — typically a per-CPU slot updated with preemption
//! disabled, and possibly from interrupts on the same CPU — does not need a `LOCK`ed
//! read-modify-write: an add that one instruction performs cannot be split by an interrupt.
//! Any CPU may read the counter. This is the contract of `local_t`/`local64_t`.
//!
//! On x86-64 [`Local64::add`] is that instruction, inline (see [`crate::arch`]). Elsewhere, and
//! with `CONFIG_RUST_INLINE_HELPERS`, it is an atomic add, which is correct everywhere, just
//! slower.
//!
//! C header: [`arch/x86/include/asm/local.h`](srctree/arch/x86/include/asm/local.h),
//! [`include/asm-generic/local64.h`](srctree/include/asm-generic/local64.h)

use crate::{
    arch,
    sync::atomic::Atomic, //
};

/// A 64-bit counter updated by one CPU at a time and read by any.
///
/// Updates from two CPUs at once are memory-safe but may lose counts: keep one counter per CPU
/// and update it with preemption disabled (or from a context bound to the CPU).
///
/// # Examples
///
/// ```
/// use kernel::{
///     local::Local64,
///     preempt, //
/// };
///
/// let c = Local64::new(0);
/// {
///     let _guard = preempt::disable();
///     c.add(1);
///     c.add(41);
/// }
/// assert_eq!(c.get(), 42);
/// c.set(7);
/// assert_eq!(c.get(), 7);
/// ```
#[repr(transparent)]
pub struct Local64(Atomic<u64>);

impl Local64 {
    /// Creates a counter with the value `v`.
    pub const fn new(v: u64) -> Self {
        Self(Atomic::new(v))
    }

    /// Returns the value, read with one untorn load (`local64_read()`).
    #[inline(always)]
    pub fn get(&self) -> u64 {
        // SAFETY: `as_ptr()` is valid and 8-byte aligned for the lifetime of `&self`, and every
        // access to the counter goes through these single-instruction or atomic operations.
        unsafe { arch::local64_read(self.0.as_ptr()) }
    }

    /// Sets the value (`local64_set()`).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        // SAFETY: As in `get()`.
        unsafe { arch::local64_set(self.0.as_ptr(), v) };
    }

    /// Adds `v` (wrapping), like `local64_add()`.
    #[inline(always)]
    pub fn add(&self, v: u64) {
        // SAFETY: As in `get()`. Another CPU's update at the same time may lose counts, but is
        // still two atomic accesses: no data race (see the type's documentation).
        unsafe { arch::local64_add(self.0.as_ptr(), v) };
    }

    /// Adds 1, like `local64_inc()`.
    #[inline(always)]
    pub fn inc(&self) {
        // SAFETY: As in `add()`.
        unsafe { arch::local64_inc(self.0.as_ptr()) };
    }
}

impl Default for Local64 {
    fn default() -> Self {
        Self::new(0)
    }
}
