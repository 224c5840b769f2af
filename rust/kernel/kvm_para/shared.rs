// SPDX-License-Identifier: GPL-2.0

//! Guest memory shared with the hypervisor through KVM paravirtual MSRs.
//!
//! Several KVM features work by telling the host, through an MSR, the guest-physical address of
//! a small record the host then writes on its own schedule: kvmclock's time records, steal time,
//! the PV EOI word, the async page fault reason. All of them follow one protocol
//! (`Documentation/virt/kvm/x86/msr.rst`):
//!
//! - the MSR value is the record's guest-physical address ORed with flag bits below the
//!   record's alignment (bit 0 usually enables);
//! - the host writes the record only while the MSR holds its address, and stops once a write of
//!   0 to the MSR has returned;
//! - MSRs are per vCPU, so each CPU registers its own record from that CPU.
//!
//! The danger is freeing memory the host still writes: the host knows nothing about the guest's
//! allocator. [`PerCpu`] owns the records of all possible CPUs and remembers on which CPUs each
//! is published; only its methods write the MSR, they need proof of the current CPU
//! ([`ThisCpu`]), and its destructor frees nothing the host may still write:
//!
//! ```text
//!   PerCpu::new()           ─▶ every slot zeroed, none published
//!   enable(this_cpu, flags) ─▶ slot zeroed, MSR = phys | flags, slot published
//!   disable(this_cpu)       ─▶ MSR = 0, slot zeroed, unpublished
//!   drop()                  ─▶ still published on an online CPU: disabled there by IPI;
//!                              still published anywhere else: pages leaked, with a warning;
//!                              else pages freed
//! ```
//!
//! [`with_record`] does the same for a record the host writes only while handling the MSR
//! write, such as the kvmclock wall clock.
//!
//! Under memory encryption (SEV, TDX), the pages are converted to shared before use and back
//! before they are freed; pages whose conversion fails are leaked, never freed.
//!
//! C headers: [`arch/x86/include/asm/set_memory.h`](srctree/arch/x86/include/asm/set_memory.h),
//! [`include/linux/cc_platform.h`](srctree/include/linux/cc_platform.h)

use crate::{
    alloc::flags::__GFP_ZERO,
    bindings,
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    msr::Msr,
    percpu::PerCpuBox,
    preempt::{
        self,
        ThisCpu, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// A record layout the host may write.
///
/// # Safety
///
/// - The type is `repr(C)` and every bit pattern is a valid value (the host may write anything).
/// - It has no drop glue.
pub unsafe trait HostRecord: Copy {}

/// Size of a page, in bytes.
const PAGE_SIZE: usize = bindings::PAGE_SIZE;

/// Whole pages that may be shared with the host: allocated zeroed, converted to shared memory
/// under memory encryption.
///
/// # Invariants
///
/// `page` is an allocation of `2^order` pages at the kernel address `virt`, converted to shared
/// memory if `decrypted`. It is freed (converted back first) only in `free()`.
struct Pages {
    page: NonNull<bindings::page>,
    virt: NonNull<u8>,
    order: u32,
    decrypted: bool,
}

impl Pages {
    /// Allocates zeroed pages covering at least `len` bytes.
    fn new(len: usize) -> Result<Self> {
        let pages = len.div_ceil(PAGE_SIZE).max(1);
        let order = pages.next_power_of_two().trailing_zeros();
        // SAFETY: `alloc_pages()` may be called in process context with any order; a failure
        // returns NULL.
        let page = unsafe { bindings::alloc_pages((GFP_KERNEL | __GFP_ZERO).as_raw(), order) };
        let page = NonNull::new(page).ok_or(ENOMEM)?;
        // SAFETY: `page` is a valid lowmem page (no `__GFP_HIGHMEM`), so it has a kernel address.
        let virt = unsafe { bindings::page_address(page.as_ptr()) };
        let virt = NonNull::new(virt.cast::<u8>()).ok_or(ENOMEM)?;
        let mut this = Self {
            page,
            virt,
            order,
            decrypted: false,
        };
        // SAFETY: `cc_platform_has()` only reads platform flags.
        if unsafe { bindings::cc_platform_has(bindings::cc_attr_CC_ATTR_GUEST_MEM_ENCRYPT) } {
            // CAST: `virt` is a kernel address; 1 << order pages fit in `c_int` for any order
            // `alloc_pages()` accepts.
            // SAFETY: The pages belong to this allocation and are not mapped elsewhere.
            let ret =
                unsafe { bindings::set_memory_decrypted(this.virt.as_ptr() as usize, 1 << order) };
            if ret != 0 {
                // A failed conversion leaves the pages in an unknown state: never reuse them.
                pr_warn!(
                    "kvm_para: set_memory_decrypted() failed ({}), leaking {} pages\n",
                    ret,
                    1u32 << order
                );
                this.leak();
                return Err(Error::from_errno(ret));
            }
            this.decrypted = true;
            // Converted pages hold junk.
            // SAFETY: The allocation is `PAGE_SIZE << order` bytes at `virt`.
            unsafe { core::ptr::write_bytes(this.virt.as_ptr(), 0, PAGE_SIZE << order) };
        }
        Ok(this)
    }

    /// Returns the guest-physical address of the byte at `offset`.
    fn phys(&self, offset: usize) -> u64 {
        // SAFETY: `virt` is a direct-mapped kernel address of this allocation; `offset` is inside
        // it (checked by the callers), and the pages are physically contiguous.
        unsafe { bindings::virt_to_phys(self.virt.as_ptr().cast()) + offset as u64 }
    }

    /// Gives up the pages without freeing them: the host may still write them, or their
    /// encryption state is unknown.
    fn leak(self) {}

    /// Frees the pages, or leaks them if converting them back to private memory fails.
    fn free(self) {
        if self.decrypted {
            // SAFETY: The pages were converted with `set_memory_decrypted()` and are unused.
            let ret = unsafe {
                bindings::set_memory_encrypted(self.virt.as_ptr() as usize, 1 << self.order)
            };
            if ret != 0 {
                pr_warn!(
                    "kvm_para: set_memory_encrypted() failed ({}), leaking pages\n",
                    ret
                );
                return;
            }
        }
        // SAFETY: `page` is an allocation of `2^order` pages that nothing uses any more.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// A record in shared memory, valid while the owner it was borrowed from lives.
///
/// Reads use single-copy-atomic loads (`READ_ONCE()`), because the host may write at any time.
#[derive(Clone, Copy)]
pub struct Slot<'a, T: HostRecord> {
    ptr: NonNull<T>,
    _owner: PhantomData<&'a T>,
}

impl<T: HostRecord> Slot<'_, T> {
    /// Returns the address of the record.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Loads the `u32` at byte `offset` of the record with one untorn load.
    ///
    /// # Panics
    ///
    /// Panics if `offset` is not 4-byte aligned or the `u32` lies outside the record.
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        assert!(offset % 4 == 0 && offset + 4 <= size_of::<T>());
        // SAFETY: The word lies inside the record (checked above), which is valid while `'a`
        // lives and aligned to at least 8 (see `load_u64()`), and `offset` is 4-byte aligned.
        // The host's concurrent writes are outside the kernel's memory model, like a device's
        // DMA; see `Slot::load()` for why the load is volatile.
        unsafe { Self::load(self.ptr.as_ptr().cast::<u8>().add(offset).cast::<u32>()) }
    }

    /// Loads the `u64` at byte `offset` of the record with one untorn load.
    ///
    /// # Panics
    ///
    /// Panics if `offset` is not 8-byte aligned or the `u64` lies outside the record.
    #[inline]
    pub fn load_u64(&self, offset: usize) -> u64 {
        assert!(offset % 8 == 0 && offset + 8 <= size_of::<T>());
        // SAFETY: As in `load_u32()`, with an 8-byte aligned `offset` in a record aligned to at
        // least 8: `PerCpu::new()` refuses slot alignments below 8, and `with_record()` puts the
        // record at the start of a page.
        unsafe { Self::load(self.ptr.as_ptr().cast::<u8>().add(offset).cast::<u64>()) }
    }

    /// `READ_ONCE()` of a naturally aligned word the host may write concurrently.
    ///
    /// A volatile load of an aligned `u32` or `u64` is one untorn `mov` on x86-64, exactly what
    /// `READ_ONCE()` compiles to, and what the DMA abstraction (`dma_read!`) uses for memory a
    /// device writes. [`crate::sync::atomic::atomic_load`] would be the same instruction behind
    /// an out-of-line C helper (`atomic_read()`), one call per word on every clock read while
    /// `CONFIG_RUST_INLINE_HELPERS` is unavailable (it needs a clang with rustc's LLVM); the
    /// records are only ever read here, so nothing mixes the two kinds of access.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and naturally aligned for `W` (a `u32` or `u64`).
    #[inline(always)]
    unsafe fn load<W: Copy>(ptr: *const W) -> W {
        // SAFETY: By the function's safety requirements.
        unsafe { core::ptr::read_volatile(ptr) }
    }
}

/// The address of one CPU's slot, in a [`PerCpu`]'s per-CPU table.
struct SlotAddr<T>(NonNull<T>);

// SAFETY: A plain address; what it points to is accessed as `PerCpu` allows.
unsafe impl<T> Send for SlotAddr<T> {}

// SAFETY: As for `Send`.
unsafe impl<T> Sync for SlotAddr<T> {}

/// Records shared with the host, one per possible CPU, registered through a per-CPU MSR.
///
/// # Invariants
///
/// - `pages` holds `nr` slots of `stride` bytes; `stride` is a power of two between
///   `size_of::<T>()` and `PAGE_SIZE`, so no slot crosses a page.
/// - `base` is the kernel address of `pages` (kept apart so that the read path needs no
///   `Option` check); `pages` is only taken in `drop()`.
/// - `own` holds, for every possible CPU, the address of its slot.
/// - `published[cpu]` is non-zero if and only if `msr` may hold the address of slot `cpu` on CPU
///   `cpu`, i.e. the host may write that slot.
pub struct PerCpu<T: HostRecord> {
    msr: Msr,
    pages: Option<Pages>,
    base: NonNull<u8>,
    own: PerCpuBox<SlotAddr<T>>,
    stride: usize,
    nr: usize,
    published: KVec<Atomic<u64>>,
    _t: PhantomData<T>,
}

// SAFETY: The raw pointers only refer to memory this owner manages; all shared state is atomic.
unsafe impl<T: HostRecord> Send for PerCpu<T> {}

// SAFETY: `&self` methods either read atomically or act on the current CPU's slot only.
unsafe impl<T: HostRecord> Sync for PerCpu<T> {}

impl<T: HostRecord> PerCpu<T> {
    /// Allocates zeroed records for all possible CPUs, each in a slot of at least `align` bytes
    /// aligned to `align`, to be registered through `msr`.
    ///
    /// `align` must be a power of two between the alignment of `T` (and at least 8) and
    /// `PAGE_SIZE`; `EINVAL` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{
    ///     kvm_para::shared::PerCpu,
    ///     msr::Msr,
    ///     pvclock::VcpuTimeInfo, //
    /// };
    ///
    /// let slots = PerCpu::<VcpuTimeInfo>::new(Msr::new(0x4b56_4d01), 64)?;
    /// for cpu in 0..kernel::cpu::nr_cpu_ids() {
    ///     let cpu = kernel::cpu::CpuId::from_u32(cpu).ok_or(EINVAL)?;
    ///     // Every slot is 64-byte aligned and zeroed; none is published.
    ///     assert_eq!(slots.phys_addr(cpu) % 64, 0);
    ///     assert_eq!(slots.slot(cpu).load_u32(0), 0);
    ///     assert!(!slots.is_enabled(cpu));
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(msr: Msr, align: usize) -> Result<Self> {
        if !align.is_power_of_two() || align < align_of::<T>().max(8) || align > PAGE_SIZE {
            return Err(EINVAL);
        }
        let stride = size_of::<T>().max(align).next_power_of_two();
        if stride > PAGE_SIZE {
            return Err(EINVAL);
        }
        // CAST: `nr_cpu_ids()` is at most `NR_CPUS`, which fits in `usize`.
        let nr = nr_cpu_ids() as usize;
        let mut published = KVec::with_capacity(nr, GFP_KERNEL)?;
        for _ in 0..nr {
            published.push(Atomic::new(0u64), GFP_KERNEL)?;
        }
        let pages = Pages::new(nr * stride)?;
        let base = pages.virt;
        // The pages are only freed in `drop()` (below, `pages` is dropped on error).
        let own = PerCpuBox::new(
            |cpu| {
                // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
                // SAFETY: Slot `cpu` lies inside the allocation of `nr * stride` bytes.
                SlotAddr(unsafe { base.add(cpu.as_u32() as usize * stride) }.cast())
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: `stride` is a power of two in `size_of::<T>()..=PAGE_SIZE`, the allocation
        // covers `nr` slots, nothing is published.
        Ok(Self {
            msr,
            base,
            own,
            pages: Some(pages),
            stride,
            nr,
            published,
            _t: PhantomData,
        })
    }

    /// Returns the MSR the records are registered through.
    pub fn msr(&self) -> Msr {
        self.msr
    }

    /// Returns the size of a slot, which is also its alignment.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Returns the byte offset of `cpu`'s slot.
    #[inline]
    fn offset(&self, cpu: CpuId) -> usize {
        // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
        let i = cpu.as_u32() as usize;
        debug_assert!(i < self.nr);
        // No overflow: `nr * stride` bytes were allocated.
        i.wrapping_mul(self.stride)
    }

    #[inline]
    fn pages(&self) -> &Pages {
        // PANIC: `pages` is only taken in `drop()`.
        self.pages.as_ref().expect("pages are present until drop")
    }

    /// Returns `cpu`'s record. Any CPU may read any record.
    #[inline]
    pub fn slot(&self, cpu: CpuId) -> Slot<'_, T> {
        // SAFETY: The slot lies inside the allocation at `base` (type invariant), which lives as
        // long as `self`.
        let ptr = unsafe { self.base.as_ptr().add(self.offset(cpu)) };
        Slot {
            // SAFETY: `ptr` is inside a non-null allocation.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast::<T>()) },
            _owner: PhantomData,
        }
    }

    /// Returns the current CPU's record, like [`PerCpu::slot`] but from a per-CPU pointer (one
    /// `%gs`-relative load on x86-64, as `this_cpu_read()` of a pointer in C).
    #[inline(always)]
    pub fn this_slot<'a>(&'a self, cpu: ThisCpu<'a>) -> Slot<'a, T> {
        Slot {
            ptr: self.own.this_cpu(cpu).0,
            _owner: PhantomData,
        }
    }

    /// Returns the guest-physical address of `cpu`'s record.
    pub fn phys_addr(&self, cpu: CpuId) -> u64 {
        self.pages().phys(self.offset(cpu))
    }

    /// Returns `true` if `cpu`'s record is registered with the host.
    #[inline]
    pub fn is_enabled(&self, cpu: CpuId) -> bool {
        self.published[self.offset(cpu) / self.stride].load(Relaxed) != 0
    }

    /// Returns the MSR value this owner last wrote on `cpu` (0 if not registered).
    pub fn msr_value(&self, cpu: CpuId) -> u64 {
        self.published[self.offset(cpu) / self.stride].load(Relaxed)
    }

    /// Zeroes the current CPU's record and registers it with the host: `msr = phys | flags`.
    ///
    /// `flags` must only use bits below the slot size (e.g. bit 0, `KVM_MSR_ENABLED`), else
    /// `EINVAL`. Fails with `EBUSY` if the record is registered already, and with `EIO` if the
    /// MSR write raised `#GP` (the record is then not registered).
    pub fn enable(&self, cpu: ThisCpu<'_>, flags: u64) -> Result {
        // CAST: `stride` is at most `PAGE_SIZE`, which fits in `u64`.
        if flags == 0 || flags >= self.stride as u64 {
            return Err(EINVAL);
        }
        let i = cpu.index();
        if self.published[i].load(Relaxed) != 0 {
            return Err(EBUSY);
        }
        let value = self.phys_addr(cpu.id()) | flags;
        // SAFETY: The slot is not published, so the host does not write it; it is ours.
        unsafe { core::ptr::write_bytes(self.slot(cpu.id()).as_ptr(), 0, 1) };
        // INVARIANT: Mark the slot published before the host may learn its address.
        self.published[i].store(value, Relaxed);
        // SAFETY: `value` points the host at slot `i` on CPU `i` (we run on it, per `cpu`). The
        // slot stays allocated until it is disabled again: `drop()` frees nothing that is still
        // published.
        if let Err(e) = unsafe { self.msr.write_safe(value) } {
            // INVARIANT: The write raised `#GP`, so the host did not take the address.
            self.published[i].store(0, Relaxed);
            return Err(e);
        }
        Ok(())
    }

    /// Unregisters the current CPU's record (`msr = 0`) and zeroes it.
    ///
    /// Does nothing if it is not registered. If the MSR write raises `#GP`, the record stays
    /// marked registered (the host may still write it) and `EIO` is returned.
    pub fn disable(&self, cpu: ThisCpu<'_>) -> Result {
        let i = cpu.index();
        if self.published[i].load(Relaxed) == 0 {
            return Ok(());
        }
        // SAFETY: Writing 0 stops the host from writing the record.
        unsafe { self.msr.write_safe(0) }?;
        // INVARIANT: The host no longer writes the slot.
        self.published[i].store(0, Relaxed);
        // SAFETY: The slot is no longer published, so nothing else writes it.
        unsafe { core::ptr::write_bytes(self.slot(cpu.id()).as_ptr(), 0, 1) };
        Ok(())
    }

    /// Disables the record of `cpu` on that CPU, by IPI. Returns `false` if it stays published.
    fn disable_remote(&self, cpu: u32) -> bool {
        /// # Safety
        ///
        /// `info` must point to a live `PerCpu<T>`; must run in the IPI handler on the CPU whose
        /// record it disables.
        unsafe extern "C" fn disable_here<T: HostRecord>(info: *mut c_void) {
            // SAFETY: Guaranteed by the caller.
            let this = unsafe { &*info.cast::<PerCpu<T>>() };
            // SAFETY: IPI handlers run with interrupts disabled on their CPU.
            let cpu = unsafe { ThisCpu::new_unchecked(CpuId::current()) };
            let _ = this.disable(cpu);
        }
        // CAST: CPU numbers fit in `c_int`.
        // SAFETY: `self` outlives the call, which waits for the handler (`wait = true`).
        let ret = unsafe {
            bindings::smp_call_function_single(
                cpu as c_int,
                Some(disable_here::<T>),
                core::ptr::from_ref(self).cast_mut().cast(),
                true,
            )
        };
        // CAST: As above.
        ret == 0 && self.published[cpu as usize].load(Relaxed) == 0
    }
}

impl<T: HostRecord> Drop for PerCpu<T> {
    fn drop(&mut self) {
        let busy = |this: &Self| this.published.iter().any(|p| p.load(Relaxed) != 0);
        if busy(self) {
            // A slot is still registered: disable it on its CPU. Hotplug is locked so that the
            // online CPUs stay online; this is why a `PerCpu` must not be dropped from a CPU
            // hotplug callback.
            // SAFETY: Process context, not called with hotplug locked (see above).
            unsafe { bindings::cpus_read_lock() };
            for (i, p) in self.published.iter().enumerate() {
                if p.load(Relaxed) == 0 {
                    continue;
                }
                // CAST: `i < nr_cpu_ids()`, which fits in `u32` and `c_int`.
                let cpu = i as u32;
                // SAFETY: `__cpu_online_mask` is a valid cpumask; `cpu` is a valid CPU number.
                let online = unsafe {
                    bindings::cpumask_test_cpu(cpu as c_int, &raw mut bindings::__cpu_online_mask)
                };
                if online {
                    self.disable_remote(cpu);
                }
            }
            // SAFETY: Paired with the `cpus_read_lock()` above.
            unsafe { bindings::cpus_read_unlock() };
        }
        if busy(self) {
            for (i, p) in self.published.iter().enumerate() {
                let v = p.load(Relaxed);
                if v != 0 {
                    pr_warn!(
                        "kvm_para: MSR {:#x} of CPU {} still points the host at {:#x}; leaking the records\n",
                        self.msr.number(),
                        i,
                        v
                    );
                }
            }
            // Never free memory the host may write.
            if let Some(pages) = self.pages.take() {
                pages.leak();
            }
            return;
        }
        if let Some(pages) = self.pages.take() {
            pages.free();
        }
    }
}

/// Registers a one-shot record through `msr` on the current CPU, calls `f` on it, unregisters
/// it and frees it.
///
/// For records the host writes only while it handles the MSR write, such as the kvmclock wall
/// clock (`MSR_KVM_WALL_CLOCK_NEW`, which has no enable bit). The MSR is written with the record's
/// address, then with 0, with preemption disabled in between so both writes go to the same
/// CPU. Fails with `EIO` if the first write raises `#GP`; if the second one does, the page is
/// leaked rather than freed.
///
/// # Examples
///
/// ```
/// use kernel::{
///     kvm_para::{
///         shared::with_record,
///         Feature,
///         KvmPara, //
///     },
///     msr::Msr,
///     pvclock::{
///         abi,
///         WallClock, //
///     },
/// };
///
/// if let Ok(kvm) = KvmPara::detect() {
///     if kvm.has(Feature::CLOCKSOURCE2) {
///         let epoch = with_record::<WallClock, _>(Msr::new(0x4b56_4d00), |w| {
///             abi::wall_clock(&w, abi::MAX_RETRIES)
///         })?;
///         // The host wrote a consistent record: the VM was started after 1970.
///         assert!(epoch.map(|e| e.sec > 0).unwrap_or(false));
///     }
/// }
/// # Ok::<(), Error>(())
/// ```
pub fn with_record<T: HostRecord, R>(msr: Msr, f: impl FnOnce(Slot<'_, T>) -> R) -> Result<R> {
    if align_of::<T>() > PAGE_SIZE || size_of::<T>() > PAGE_SIZE {
        return Err(EINVAL);
    }
    let pages = Pages::new(size_of::<T>())?;
    let slot = Slot {
        ptr: pages.virt.cast::<T>(),
        _owner: PhantomData,
    };
    let result = {
        let _guard = preempt::disable();
        // SAFETY: The host writes the page only while this MSR holds its address; it is reset to
        // 0 below before the page is freed, on the same CPU (preemption is disabled).
        match unsafe { msr.write_safe(pages.phys(0)) } {
            Err(e) => Err(e),
            Ok(()) => {
                let r = f(slot);
                // SAFETY: Writing 0 stops the host from writing the page.
                match unsafe { msr.write_safe(0) } {
                    Ok(()) => Ok(r),
                    Err(_) => {
                        pr_warn!(
                            "kvm_para: cannot reset MSR {:#x}; leaking its page\n",
                            msr.number()
                        );
                        pages.leak();
                        return Err(EIO);
                    }
                }
            }
        }
    };
    pages.free();
    result
}
