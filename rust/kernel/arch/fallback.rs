// SPDX-License-Identifier: GPL-2.0

//! The fast paths through the C helpers (inlined with `CONFIG_RUST_INLINE_HELPERS`) and the
//! kernel's atomics, for every configuration without the x86-64 assembly.

use crate::{
    bindings,
    cpu::CpuId,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

/// `preempt_disable_notrace()`.
#[inline(always)]
pub fn preempt_disable_notrace() {
    // SAFETY: `preempt_disable_notrace()` may be called in any context.
    unsafe { bindings::preempt_disable_notrace() };
}

/// `preempt_enable_notrace()`.
///
/// # Safety
///
/// The caller must have raised the preemption count with [`preempt_disable_notrace`].
#[inline(always)]
pub unsafe fn preempt_enable_notrace() {
    // SAFETY: The caller raised the preemption count.
    unsafe { bindings::preempt_enable_notrace() };
}

/// `raw_smp_processor_id()`.
#[inline(always)]
pub fn raw_smp_processor_id() -> CpuId {
    CpuId::current()
}

/// `this_cpu_ptr()`.
#[inline(always)]
pub fn this_cpu_ptr<T>(ptr: *mut T) -> *mut T {
    // SAFETY: `this_cpu_ptr()` only computes an address.
    unsafe { bindings::this_cpu_ptr(ptr.cast()) }.cast::<T>()
}

/// `this_cpu_read()` of an 8-byte per-CPU variable, through [`this_cpu_ptr`].
///
/// # Safety
///
/// `ptr` must be a per-CPU address (`__percpu`) of an 8-byte aligned `u64` initialised on the
/// current CPU and not written while it may be read.
#[inline(always)]
pub unsafe fn this_cpu_read_u64(ptr: *const u64) -> u64 {
    // SAFETY: The current CPU's copy is valid and not written concurrently (guaranteed by the
    // caller).
    unsafe { *this_cpu_ptr(ptr.cast_mut()) }
}

/// `local64_read()`, as a relaxed atomic load.
///
/// # Safety
///
/// `p` must be valid and 8-byte aligned, and accessed concurrently only with atomic operations.
#[inline(always)]
pub unsafe fn local64_read(p: *const u64) -> u64 {
    // SAFETY: Guaranteed by the caller.
    unsafe { Atomic::from_ptr(p.cast_mut()) }.load(Relaxed)
}

/// `local64_set()`, as a relaxed atomic store.
///
/// # Safety
///
/// As for [`local64_read`], and `p` must be writable.
#[inline(always)]
pub unsafe fn local64_set(p: *mut u64, v: u64) {
    // SAFETY: As in `local64_read()`.
    unsafe { Atomic::from_ptr(p) }.store(v, Relaxed);
}

/// `local64_add()`, as a relaxed atomic add: correct on every CPU, slower than `local_t`.
///
/// # Safety
///
/// As for [`local64_set`].
#[inline(always)]
pub unsafe fn local64_add(p: *mut u64, v: u64) {
    // SAFETY: As in `local64_read()`.
    unsafe { Atomic::from_ptr(p) }.add(v, Relaxed);
}

/// `local64_inc()`.
///
/// # Safety
///
/// As for [`local64_set`].
#[inline(always)]
pub unsafe fn local64_inc(p: *mut u64) {
    // SAFETY: Guaranteed by the caller.
    unsafe { local64_add(p, 1) };
}

/// `atomic64_read()`, as a relaxed atomic load.
///
/// # Safety
///
/// `p` must be valid and 8-byte aligned, and accessed concurrently only with atomic operations.
#[inline(always)]
pub unsafe fn atomic64_read(p: *const u64) -> u64 {
    // SAFETY: Guaranteed by the caller.
    unsafe { Atomic::from_ptr(p.cast_mut()) }.load(Relaxed)
}

/// `atomic64_cmpxchg_relaxed()`: stores `new` if `*p` is `old`, and returns the previous value
/// either way.
///
/// # Safety
///
/// `p` must be valid for writes and 8-byte aligned, and accessed concurrently only with atomic
/// operations.
#[inline(always)]
pub unsafe fn atomic64_cmpxchg_relaxed(p: *mut u64, old: u64, new: u64) -> u64 {
    // SAFETY: Guaranteed by the caller.
    match unsafe { Atomic::from_ptr(p) }.cmpxchg(old, new, Relaxed) {
        Ok(prev) | Err(prev) => prev,
    }
}

/// `rdtsc_ordered()`.
#[cfg(CONFIG_X86)]
#[inline(always)]
pub fn rdtsc_ordered() -> u64 {
    // SAFETY: `rdtsc_ordered()` may be called in any context.
    unsafe { bindings::rdtsc_ordered() }
}

/// `__test_and_clear_bit()` on a 32-bit word, as a `cmpxchg` loop (stronger than needed).
///
/// # Safety
///
/// `word` must be valid and 4-byte aligned and accessed concurrently only with atomic (or
/// single-instruction) operations. `BIT` must be below 32 (a build error otherwise).
#[cfg(CONFIG_X86)]
#[inline(always)]
pub unsafe fn test_and_clear_bit_u32<const BIT: u32>(word: *mut u32) -> bool {
    const { assert!(BIT < 32) };
    let mask = 1u32 << BIT;
    // SAFETY: Guaranteed by the caller.
    let a = unsafe { Atomic::from_ptr(word) };
    let mut old = a.load(Relaxed);
    while old & mask != 0 {
        match a.cmpxchg(old, old & !mask, Relaxed) {
            Ok(_) => return true,
            Err(now) => old = now,
        }
    }
    false
}

/// `xchg_relaxed()` of a 32-bit word (no ordering beyond the exchange itself); returns the old
/// value.
///
/// # Safety
///
/// `word` must be valid and 4-byte aligned, and accessed concurrently only with atomic (or
/// single-instruction) operations.
#[inline(always)]
pub unsafe fn xchg_u32(word: *mut u32, new: u32) -> u32 {
    // SAFETY: Guaranteed by the caller.
    unsafe { crate::sync::atomic::xchg(word, new, Relaxed) }
}
