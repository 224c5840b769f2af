// SPDX-License-Identifier: GPL-2.0

//! Dynamically allocated per-CPU variables (`alloc_percpu()`).
//!
//! [`PerCpuBox<T>`] holds one `T` for every possible CPU in the per-CPU areas. A context that
//! cannot migrate reaches its own CPU's value with [`PerCpuBox::this_cpu`], which costs what
//! `this_cpu_ptr()` costs in C: on x86-64 one add from `%gs`, with no bounds check and no CPU
//! number; [`PerCpuBox::this_cpu_read`] reads a `u64` with one `%gs`-relative load, as
//! `this_cpu_read()` does. Any CPU may look at any CPU's value with [`PerCpuBox::get`], e.g. to
//! sum statistics.
//!
//! C header: [`include/linux/percpu.h`](srctree/include/linux/percpu.h)

use crate::{
    alloc::Flags,
    arch, bindings,
    cpu::{
        cpu_possible,
        possible_cpus,
        CpuId, //
    },
    preempt::ThisCpu,
    prelude::*,
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// One `T` for every possible CPU, in the per-CPU areas (`alloc_percpu()`).
///
/// The values are shared between CPUs (`T: Sync`): the usual pattern is counters that their own
/// CPU updates (see [`crate::local::Local64`]) and any CPU reads.
///
/// # Invariants
///
/// `ptr` is a per-CPU allocation (`__percpu` address) holding an initialised `T` for every
/// possible CPU; it is freed, after dropping the values, only in `drop()`.
///
/// # Examples
///
/// ```
/// use kernel::{
///     cpu::CpuId,
///     local::Local64,
///     percpu::PerCpuBox,
///     preempt, //
/// };
///
/// let hits = PerCpuBox::new(|_| Local64::new(0), GFP_KERNEL)?;
/// {
///     let guard = preempt::disable();
///     hits.this_cpu(guard.this_cpu()).inc();
/// }
/// let total: u64 = hits.iter().map(|(_, c)| c.get()).sum();
/// assert_eq!(total, 1);
/// assert!(hits.get(CpuId::current()).is_some());
///
/// // A `u64` is read with one load.
/// let ids = PerCpuBox::new(|cpu| u64::from(cpu.as_u32()), GFP_KERNEL)?;
/// {
///     let guard = preempt::disable();
///     let this = guard.this_cpu();
///     assert_eq!(ids.this_cpu_read(this), u64::from(this.id().as_u32()));
/// }
/// # Ok::<(), Error>(())
/// ```
pub struct PerCpuBox<T> {
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

// SAFETY: The values may be dropped on another CPU than the one that created them (`T: Send`),
// and every CPU can reach every value through `&self` (`T: Sync`).
unsafe impl<T: Send + Sync> Send for PerCpuBox<T> {}

// SAFETY: `&self` only gives out `&T`, and `T: Sync`.
unsafe impl<T: Sync> Sync for PerCpuBox<T> {}

impl<T> PerCpuBox<T> {
    /// Returns the address of `cpu`'s copy (`per_cpu_ptr()`).
    ///
    /// # Safety
    ///
    /// `ptr` must be a per-CPU allocation and `cpu` a possible CPU.
    #[inline]
    unsafe fn cpu_ptr(ptr: NonNull<T>, cpu: CpuId) -> *mut T {
        // SAFETY: Guaranteed by the caller.
        unsafe { bindings::per_cpu_ptr(ptr.as_ptr().cast(), cpu.as_u32()) }.cast::<T>()
    }
}

impl<T: Sync> PerCpuBox<T> {
    /// Allocates the per-CPU variable and sets the value of every possible CPU to `init(cpu)`.
    ///
    /// Fails with `EINVAL` for a zero-sized `T` or one the per-CPU allocator cannot align, and
    /// with `ENOMEM` if the allocation fails.
    pub fn new(init: impl Fn(CpuId) -> T, flags: Flags) -> Result<Self> {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        if size == 0 || align > bindings::PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `__alloc_percpu_gfp()` may be called with any size, alignment and flags; it
        // returns NULL on failure.
        let p = unsafe { bindings::__alloc_percpu_gfp(size, align, flags.as_raw()) };
        let ptr = NonNull::new(p.cast::<T>()).ok_or(ENOMEM)?;
        for cpu in possible_cpus() {
            // SAFETY: `ptr` is a per-CPU allocation of a `T` and `cpu` is a possible CPU, so the
            // address is that CPU's uninitialised, suitably aligned copy.
            unsafe { Self::cpu_ptr(ptr, cpu).write(init(cpu)) };
        }
        // INVARIANT: Every possible CPU's value was written above.
        Ok(Self {
            ptr,
            _t: PhantomData,
        })
    }

    /// Returns the value of `cpu`, or `None` if `cpu` is not a possible CPU.
    pub fn get(&self, cpu: CpuId) -> Option<&T> {
        if !cpu_possible(cpu) {
            return None;
        }
        // SAFETY: By the type invariant the value of the possible CPU `cpu` is initialised and
        // lives as long as `self`.
        Some(unsafe { &*Self::cpu_ptr(self.ptr, cpu) })
    }

    /// Returns the possible CPUs and their values.
    pub fn iter(&self) -> impl Iterator<Item = (CpuId, &T)> {
        possible_cpus().filter_map(move |cpu| Some((cpu, self.get(cpu)?)))
    }

    /// Returns the value of the current CPU, which `cpu` proves cannot change (`this_cpu_ptr()`).
    #[inline(always)]
    pub fn this_cpu<'a>(&'a self, cpu: ThisCpu<'a>) -> &'a T {
        let _ = cpu;
        // SAFETY: The current CPU is online, hence possible: its value is initialised and lives
        // as long as `self`.
        unsafe { &*arch::this_cpu_ptr(self.ptr.as_ptr()) }
    }
}

impl PerCpuBox<u64> {
    /// Returns the value of the current CPU, which `cpu` proves cannot change
    /// (`this_cpu_read()`): one `%gs`-relative load on x86-64, one instruction less than
    /// [`PerCpuBox::this_cpu`] and a load.
    ///
    /// An integer, so that the load has nothing to carry but bits: a table of addresses stores
    /// them with exposed provenance (`expose_provenance()`), and the reader takes it up again.
    #[inline(always)]
    pub fn this_cpu_read(&self, cpu: ThisCpu<'_>) -> u64 {
        let _ = cpu;
        // SAFETY: `ptr` is a per-CPU allocation with the current (online, hence possible) CPU's
        // value initialised (type invariant), 8-byte aligned (allocated with the alignment of
        // `u64`); `&self` gives no way to write it, so it is not written while it may be read.
        // `cpu` proves that the caller cannot migrate while it lives, and whatever ends that
        // (enabling preemption or interrupts again) is a compiler barrier, which two merged
        // reads cannot cross.
        unsafe { arch::this_cpu_read_u64(self.ptr.as_ptr()) }
    }
}

impl<T> Drop for PerCpuBox<T> {
    fn drop(&mut self) {
        for cpu in possible_cpus() {
            // SAFETY: By the type invariant the value of every possible CPU is initialised, and
            // nothing uses it any more.
            unsafe { core::ptr::drop_in_place(Self::cpu_ptr(self.ptr, cpu)) };
        }
        // SAFETY: By the type invariant `ptr` is a per-CPU allocation, freed only here.
        unsafe { bindings::free_percpu(self.ptr.as_ptr().cast()) };
    }
}
