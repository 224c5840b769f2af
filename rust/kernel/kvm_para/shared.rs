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
//! allocator. [`PerCpu`] owns the records of all possible CPUs for one MSR, named by a sealed
//! descriptor of [`super::msr`] (so the MSR, the record type and the flag bits always match), and
//! remembers on which CPUs each record is published; only its methods write the MSR, they need
//! proof of the current CPU ([`ThisCpu`]), and nothing the host may still write is ever freed:
//!
//! ```text
//!   PerCpu::new(&MSR)       ─▶ every slot zeroed, none published; MSR has no other owner
//!   enable(this_cpu)        ─▶ slot zeroed, MSR = phys | enable bit, slot published
//!   disable(this_cpu)       ─▶ MSR = 0, unpublished, slot zeroed
//!   reboot, kexec           ─▶ reboot notifier: MSR = 0 on every online CPU (IPI), and no
//!                              further enable succeeds; syscore shutdown: the same again
//!   suspend, hibernation    ─▶ syscore suspend: MSR = 0 on the last CPU (the others went
//!                              offline through their hotplug callbacks); resume: MSR again
//!                              (not for a gated record, see `HostRecord::GATED`)
//!   drop()                  ─▶ still published on an online CPU: disabled there by IPI;
//!                              still published anywhere else: pages leaked, with a warning;
//!                              else pages freed
//! ```
//!
//! Every change of a CPU's published state (check, MSR write, state store) runs on that CPU with
//! local interrupts disabled, so an interrupt or an IPI cannot slip between the check and the
//! MSR write of an enable or a disable running on the same CPU.
//!
//! [`with_record`] does the same for a record the host writes only while handling the MSR
//! write, such as the kvmclock wall clock.
//!
//! Records are only ever accessed with single-copy-atomic word accesses (volatile loads and
//! stores, `READ_ONCE()`/`WRITE_ONCE()` in C), also when they are zeroed, because the host and
//! other CPUs (sysfs readers) may look at them at any time. The read-modify-write operations the
//! features need on their own CPU's record are one instruction each, so the host, which looks at
//! the record between two guest instructions, never sees half of one.
//!
//! Under memory encryption (SEV, TDX), the pages are converted to shared before use and back
//! before they are freed; pages whose conversion fails are leaked, never freed.
//!
//! The crash path (`kdump`) runs neither the reboot notifiers nor the module's code: the
//! records stay published and the host keeps writing them, into memory of the crashed kernel
//! that the crash kernel (which runs in its own reserved region) never allocates.
//!
//! `local_interrupt_disable()` disables interrupts with `local_irq_save()` on every
//! configuration in 7.3 (`include/linux/interrupt_rc.h`), preemptible or not, which is what the
//! per-CPU state machine relies on.
//!
//! C headers: [`arch/x86/include/asm/set_memory.h`](srctree/arch/x86/include/asm/set_memory.h),
//! [`include/linux/syscore_ops.h`](srctree/include/linux/syscore_ops.h),
//! [`include/linux/cc_platform.h`](srctree/include/linux/cc_platform.h),
//! [`include/linux/reboot.h`](srctree/include/linux/reboot.h)

use super::msr::{
    OneShotMsr,
    PerCpuMsr, //
};
use crate::{
    alloc::flags::__GFP_ZERO,
    bindings,
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    interrupt::{
        local_interrupt_disable,
        LocalInterruptDisabled, //
    },
    msr::Msr,
    percpu::PerCpuBox,
    preempt::{
        self,
        ThisCpu, //
    },
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        AtomicFlag,
        Full,
        Relaxed,
        Release, //
    },
    task::might_sleep,
    types::Opaque,
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
/// - [`HostRecord::VERSION`], if set, is the byte offset of a naturally aligned `u32` inside it.
pub unsafe trait HostRecord: Copy + 'static {
    /// Byte offset of the record's `u32` version, odd while the writer updates the record, if it
    /// has one. Zeroing a record then writes the version `u32::MAX` first and 0 last, so that a
    /// reader that checks the version never accepts a half-zeroed record, not even one that, like
    /// the vDSO's `pvclock_read_begin()`, clears the low bit of the version it starts with.
    const VERSION: Option<usize> = None;

    /// Set if enabling the record makes the host do what only a dispatcher the kernel registered
    /// can handle (the async page fault record: the host raises `#PF` with a token in `CR2`).
    /// [`PerCpu::enable`] then does not build; the kernel crate's abstraction of that dispatcher
    /// enables it with [`PerCpu::enable_unchecked`].
    const GATED: bool = false;
}

/// Size of a page, in bytes.
const PAGE_SIZE: usize = bindings::PAGE_SIZE;

/// Whole pages that may be shared with the host: allocated zeroed, converted to shared memory
/// under memory encryption.
///
/// # Invariants
///
/// `page` is an allocation of `2^order` pages at the kernel address `virt`, converted to shared
/// memory if `decrypted`. It is freed (converted back first) only when the value is dropped, and
/// never if it is given up with [`Pages::leak`].
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
        let Some(virt) = NonNull::new(virt.cast::<u8>()) else {
            // SAFETY: The allocation was never used.
            unsafe { bindings::__free_pages(page.as_ptr(), order) };
            return Err(ENOMEM);
        };
        // INVARIANT: Not converted yet; dropping `this` on an error below frees the pages.
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
            // Converted pages hold junk; nobody else knows them yet.
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
    fn leak(self) {
        core::mem::forget(self);
    }
}

impl Drop for Pages {
    /// Frees the pages, or leaks them if converting them back to private memory fails.
    fn drop(&mut self) {
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
        // SAFETY: `page` is an allocation of `2^order` pages that nothing uses any more (type
        // invariant: values whose pages the host may still write are leaked, not dropped).
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// Memory that someone else owns and keeps for ever, lent to a [`PerCpu`] for its records: the
/// kernel's pvclock page for the vDSO (`kernel::pvclock_vdso::VdsoPage`), which user space maps
/// and which must therefore outlive any module.
///
/// # Safety
///
/// - [`LentPages::virt`] returns the same kernel address for as long as the value lives: a
///   direct-mapped (`virt_to_phys()` works on it), `PAGE_SIZE`-aligned, physically contiguous
///   block of [`LentPages::LEN`] bytes, shared with the host under memory encryption, that nothing
///   else writes while the value lives.
/// - The memory is never freed: dropping the value only returns it to its owner, and forgetting
///   the value (what [`PerCpu`] does if the host may still write the memory) is allowed.
pub unsafe trait LentPages: Send + Sync + 'static {
    /// The only record type that may be kept in the memory: who else can read the memory (for
    /// the vDSO's page, every process) may see records of this type, and no other.
    type Record: HostRecord;

    /// Size of the memory in bytes.
    const LEN: usize;

    /// Returns the kernel address of the memory.
    fn virt(&self) -> NonNull<u8>;
}

/// A lent value ([`LentPages`]), type-erased: given back to its owner when dropped.
struct Lent {
    value: NonNull<c_void>,
    drop_value: unsafe fn(NonNull<c_void>),
}

impl Drop for Lent {
    fn drop(&mut self) {
        // SAFETY: `value` and `drop_value` come from `Memory::lent()`; this is the only drop.
        unsafe { (self.drop_value)(self.value) };
    }
}

/// The memory of a [`PerCpu`]'s records.
enum Memory {
    /// Allocated for the records, freed with them.
    Own(Pages),
    /// Lent ([`LentPages`]).
    Lent { virt: NonNull<u8>, value: Lent },
}

impl Memory {
    /// Takes the lent memory `pages`.
    fn lent<P: LentPages>(pages: P) -> Result<Self> {
        /// Drops the `P` that `lent()` boxed.
        ///
        /// # Safety
        ///
        /// `value` comes from `KBox::<P>::into_raw()`, and is used no more.
        unsafe fn drop_value<P: LentPages>(value: NonNull<c_void>) {
            // SAFETY: By the function's safety requirements.
            drop(unsafe { KBox::from_raw(value.cast::<P>().as_ptr()) });
        }
        let virt = pages.virt();
        let value = KBox::into_raw(KBox::new(pages, GFP_KERNEL)?);
        Ok(Self::Lent {
            virt,
            value: Lent {
                // SAFETY: `KBox::into_raw()` never returns null.
                value: unsafe { NonNull::new_unchecked(value.cast()) },
                drop_value: drop_value::<P>,
            },
        })
    }

    /// Returns the kernel address of the memory.
    fn virt(&self) -> NonNull<u8> {
        match self {
            Self::Own(pages) => pages.virt,
            Self::Lent { virt, .. } => *virt,
        }
    }

    /// Returns the guest-physical address of the byte at `offset`, inside the memory.
    fn phys(&self, offset: usize) -> u64 {
        match self {
            Self::Own(pages) => pages.phys(offset),
            // SAFETY: Lent memory is direct-mapped and physically contiguous (`LentPages`), and
            // `offset` is inside it (checked by the callers).
            Self::Lent { virt, .. } => unsafe {
                bindings::virt_to_phys(virt.as_ptr().cast()) + offset as u64
            },
        }
    }

    /// Gives the memory up without freeing or returning it: the host may still write it.
    fn leak(self) {
        match self {
            Self::Own(pages) => pages.leak(),
            // Its owner never gets it back (allowed by `LentPages`).
            Self::Lent { value, .. } => core::mem::forget(value),
        }
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

    /// Returns the address of the `W` at byte `offset`, which must lie inside the record and be
    /// aligned for `W`.
    ///
    /// # Panics
    ///
    /// Panics if it does not (a build error for a constant `offset`, as the callers pass).
    #[inline(always)]
    pub(crate) fn word<W>(&self, offset: usize) -> *mut W {
        assert!(offset % size_of::<W>() == 0 && offset + size_of::<W>() <= size_of::<T>());
        // SAFETY: The word lies inside the record (checked above).
        unsafe { self.ptr.as_ptr().cast::<u8>().add(offset).cast::<W>() }
    }

    /// Loads the `u8` at byte `offset` of the record.
    ///
    /// # Panics
    ///
    /// Panics if the byte lies outside the record.
    #[inline]
    pub fn load_u8(&self, offset: usize) -> u8 {
        // SAFETY: `word()` checked the bounds; a byte is always aligned.
        unsafe { Self::load(self.word::<u8>(offset)) }
    }

    /// Loads the `u32` at byte `offset` of the record with one untorn load.
    ///
    /// # Panics
    ///
    /// Panics if `offset` is not 4-byte aligned or the `u32` lies outside the record.
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        // SAFETY: `word()` checked the bounds and the alignment relative to the record, which is
        // aligned to at least 8: the descriptors of `super::msr` require it, and slots and
        // one-shot records start at multiples of their alignment.
        unsafe { Self::load(self.word::<u32>(offset)) }
    }

    /// Loads the `u64` at byte `offset` of the record with one untorn load.
    ///
    /// # Panics
    ///
    /// Panics if `offset` is not 8-byte aligned or the `u64` lies outside the record.
    #[inline]
    pub fn load_u64(&self, offset: usize) -> u64 {
        // SAFETY: As in `load_u32()`.
        unsafe { Self::load(self.word::<u64>(offset)) }
    }

    /// `READ_ONCE()` of a naturally aligned word the host may write concurrently.
    ///
    /// A volatile load of an aligned `u8`, `u32` or `u64` is one untorn `mov` on x86-64, exactly
    /// what `READ_ONCE()` compiles to, and what the DMA abstraction (`dma_read!`) uses for memory
    /// a device writes. [`crate::sync::atomic::atomic_load`] would be the same instruction behind
    /// an out-of-line C helper (`atomic_read()`), one call per word on every clock read while
    /// `CONFIG_RUST_INLINE_HELPERS` is unavailable (it needs a clang with rustc's LLVM). The
    /// guest's own stores to records are volatile word stores too, or one-instruction atomics.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and naturally aligned for `W` (a `u8`, `u32` or `u64`).
    #[inline(always)]
    unsafe fn load<W: Copy>(ptr: *const W) -> W {
        // SAFETY: By the function's safety requirements.
        unsafe { core::ptr::read_volatile(ptr) }
    }
}

/// The publish state of a [`PerCpu`], in an allocation of its own so that the reboot notifier
/// and the IPI handlers can reach it.
///
/// Not generic: its callbacks are compiled into the kernel crate, never into a module, so a
/// `PerCpu` that is leaked (`mem::forget()`) leaves no notifier pointing into unloaded module
/// text, only leaked memory.
///
/// # Invariants
///
/// - `base` is the kernel address of `nr` slots of `stride` bytes; `stride` is a power of two
///   between 8 and `PAGE_SIZE`.
/// - `published[cpu]` is non-zero if and only if `msr` may hold the address of slot `cpu` on
///   CPU `cpu`, i.e. the host may write that slot.
/// - `published[cpu]` changes only on CPU `cpu` with local interrupts disabled, in one section
///   together with the MSR write (so no other enable or disable of this state can run between
///   the check, the MSR write and the store).
/// - Once `shut_down` is set, no slot is published again.
/// - `syscore` is registered with `register_syscore()` (its `data` pointing at `self`) from
///   `PerCpu::new()` until `PerCpu::drop()` unregisters it; `suspended` is only used by its
///   callbacks, which run on one CPU with interrupts off.
/// - `reboot` is registered with `register_reboot_notifier()` from `PerCpu::new()` until
///   `PerCpu::drop()` unregisters it.
struct State {
    base: NonNull<u8>,
    stride: usize,
    nr: usize,
    /// The MSR, its enable bit and name (from the descriptor).
    msr: Msr,
    enable: u64,
    name: &'static str,
    /// [`HostRecord::VERSION`] of the record type.
    version: Option<usize>,
    /// [`HostRecord::GATED`] of the record type: not enabled again at resume.
    gated: bool,
    published: KVec<Atomic<u64>>,
    shut_down: AtomicFlag,
    reboot: Opaque<bindings::notifier_block>,
    syscore: Opaque<bindings::syscore>,
    /// The MSR value the syscore suspend callback took back, to restore at resume.
    suspended: Atomic<u64>,
}

/// The syscore callbacks of every [`State`] (suspend and hibernation, shutdown).
static SYSCORE_OPS: bindings::syscore_ops = bindings::syscore_ops {
    suspend: Some(State::syscore_suspend),
    resume: Some(State::syscore_resume),
    shutdown: Some(State::syscore_shutdown),
};

impl State {
    /// Returns the address of slot `i`.
    #[inline]
    fn slot_ptr(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.nr);
        // SAFETY: Slot `i` lies inside the allocation of `nr * stride` bytes (type invariant).
        unsafe { self.base.as_ptr().add(i * self.stride) }
    }

    /// Zeroes slot `i` with volatile `u32` stores (`WRITE_ONCE()`), so that concurrent readers
    /// on other CPUs (or an NMI on this one) see every word either old or zero; a version word is
    /// made odd first and 0 last ([`HostRecord::VERSION`]).
    ///
    /// The odd value is `u32::MAX`, not 1: a reader in the style of `pvclock_read_begin()` (the
    /// vDSO reads CPU 0's kvmclock record from every CPU while that record may be zeroed) starts
    /// from `version & !1` and accepts what it read if the version still equals that at the end.
    /// Starting from 1 it would accept the final 0 with the words it read half-zeroed; starting
    /// from `u32::MAX` it waits for `0xffff_fffe`, which this never writes.
    fn zero(&self, i: usize) {
        let p = self.slot_ptr(i).cast::<u32>();
        let version = self.version.map(|v| v / 4);
        // SAFETY (all three stores): The slot is `stride` bytes, a multiple of 8, at an address
        // aligned to `stride` (type invariant), and the version word lies inside the record; the
        // host does not write the slot (it is not published), and the guest accesses records only
        // with word-sized marked accesses.
        if let Some(v) = version {
            // SAFETY: See above.
            unsafe { core::ptr::write_volatile(p.add(v), u32::MAX) };
        }
        for w in (0..self.stride / 4).filter(|&w| Some(w) != version) {
            // SAFETY: See above.
            unsafe { core::ptr::write_volatile(p.add(w), 0) };
        }
        if let Some(v) = version {
            // SAFETY: See above.
            unsafe { core::ptr::write_volatile(p.add(v), 0) };
        }
    }

    /// Returns the index of the CPU the caller runs on, with interrupts disabled.
    ///
    /// The MSR is written on the CPU that runs, so the slot index comes from that CPU too, not
    /// from `cpu`: even a `ThisCpu` made wrong by a bug elsewhere cannot make `published` disagree
    /// with the MSRs.
    fn this_index(cpu: ThisCpu<'_>) -> usize {
        let now = crate::arch::raw_smp_processor_id();
        debug_assert_eq!(now, cpu.id());
        // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
        now.as_u32() as usize
    }

    /// Publishes slot `cpu` on its CPU with `flags`, interrupts disabled.
    fn enable(&self, cpu: ThisCpu<'_>, flags: u64, _irq: &LocalInterruptDisabled) -> Result {
        let i = Self::this_index(cpu);
        if self.shut_down.load(Relaxed) {
            return Err(ESHUTDOWN);
        }
        if self.published[i].load(Relaxed) != 0 {
            return Err(EBUSY);
        }
        self.zero(i);
        // SAFETY: `slot_ptr()` is a direct-mapped kernel address inside the allocation.
        let value =
            unsafe { bindings::virt_to_phys(self.slot_ptr(i).cast()) } | self.enable | flags;
        // INVARIANT: Marked published before the host may learn the address; interrupts are off
        // and we run on CPU `i`, so nothing else changes `published[i]` until the store below.
        self.published[i].store(value, Relaxed);
        // SAFETY: `value` points the host at slot `i` on CPU `i` (we run on it, per `cpu`), with
        // the record type and flags of that MSR (descriptor invariants, taken over in
        // `PerCpu::new()`). The slot stays allocated until it is disabled again: `PerCpu::drop()`
        // frees nothing that is still published.
        if let Err(e) = unsafe { self.msr.write_safe(value) } {
            // INVARIANT: The write raised `#GP`, so the host did not take the address.
            self.published[i].store(0, Relaxed);
            return Err(e);
        }
        Ok(())
    }

    /// Unpublishes slot `cpu` on its CPU, interrupts disabled.
    fn disable(&self, cpu: ThisCpu<'_>, _irq: &LocalInterruptDisabled) -> Result {
        let i = Self::this_index(cpu);
        if self.published[i].load(Relaxed) == 0 {
            return Ok(());
        }
        // SAFETY: Writing 0 stops the host from writing the record.
        unsafe { self.msr.write_safe(0) }?;
        // INVARIANT: The host no longer writes the slot; interrupts are off on CPU `i`.
        self.published[i].store(0, Relaxed);
        self.zero(i);
        Ok(())
    }

    /// Returns `true` while any slot is published.
    fn busy(&self) -> bool {
        self.published.iter().any(|p| p.load(Relaxed) != 0)
    }

    /// Unpublishes the slot of every online CPU, by IPI; waits for them.
    ///
    /// # Safety
    ///
    /// Must be called from process context, with `self` pinned (it is passed to the handlers).
    unsafe fn disable_online(&self) {
        /// Disables the current CPU's slot.
        ///
        /// # Safety
        ///
        /// `info` must point to a live `State`; must run in an IPI handler (or with interrupts
        /// disabled) on the CPU whose slot it disables.
        unsafe extern "C" fn disable_here(info: *mut c_void) {
            // SAFETY: Guaranteed by the caller.
            let this = unsafe { &*info.cast::<State>() };
            // SAFETY: IPI handlers run with interrupts disabled on their CPU, and so stay on it.
            let irq = unsafe { LocalInterruptDisabled::assume_disabled() };
            // SAFETY: As above.
            let cpu = unsafe { ThisCpu::new_unchecked(CpuId::current()) };
            let _ = this.disable(cpu, irq);
        }
        // SAFETY: `self` outlives the call, which waits for every handler (`wait = true`);
        // `__cpu_online_mask` is a valid cpumask.
        unsafe {
            bindings::on_each_cpu_cond_mask(
                None,
                Some(disable_here),
                core::ptr::from_ref(self).cast_mut().cast(),
                true,
                &raw const bindings::__cpu_online_mask,
            )
        };
    }

    /// Returns the `State` of a syscore callback and the proofs of its context.
    ///
    /// # Safety
    ///
    /// `data` must be the `data` of the `syscore` of a live `State`, and the caller a syscore
    /// callback: those run on the one CPU left online, with interrupts disabled.
    unsafe fn syscore_context<'a>(
        data: *mut c_void,
    ) -> (&'a State, ThisCpu<'a>, &'a LocalInterruptDisabled) {
        // SAFETY: By the safety requirements.
        let this = unsafe { &*data.cast::<State>() };
        // SAFETY: Syscore callbacks run with interrupts disabled, so they stay on their CPU.
        let irq = unsafe { LocalInterruptDisabled::assume_disabled() };
        // SAFETY: As above.
        let cpu = unsafe { ThisCpu::new_unchecked(CpuId::current()) };
        (this, cpu, irq)
    }

    /// Suspend and hibernation (also the restore kernel's jump into the image, and kexec with
    /// `preserve_context`): the other CPUs are offline (their records were disabled by their
    /// hotplug callbacks), so disable this one's, and remember it for [`State::syscore_resume`].
    ///
    /// # Safety
    ///
    /// Called by the syscore code with the `data` of a registered `syscore` of a live `State`.
    unsafe extern "C" fn syscore_suspend(data: *mut c_void) -> c_int {
        // SAFETY: By the safety requirements.
        let (this, cpu, irq) = unsafe { Self::syscore_context(data) };
        let value = this.published[cpu.index()].load(Relaxed);
        if this.disable(cpu, irq).is_err() {
            // The host refuses to stop: the suspend must not go on with it writing.
            return EIO.to_errno();
        }
        this.suspended.store(value, Relaxed);
        0
    }

    /// Resume: publishes again what [`State::syscore_suspend`] took back (the host forgot it),
    /// unless the record is gated: only its dispatcher's owner may enable it, after what it needs
    /// first (the async PF vector, which the host forgot too), so the CPU resumes without it.
    ///
    /// # Safety
    ///
    /// As for [`State::syscore_suspend`].
    unsafe extern "C" fn syscore_resume(data: *mut c_void) {
        // SAFETY: By the safety requirements.
        let (this, cpu, irq) = unsafe { Self::syscore_context(data) };
        let value = this.suspended.xchg(0, Relaxed);
        if value != 0 && !this.gated {
            // CAST: `stride` is at most `PAGE_SIZE`; the flag bits are below it.
            let flags = value & (this.stride as u64 - 1) & !this.enable;
            let _ = this.enable(cpu, flags, irq);
        }
    }

    /// Shutdown (reboot, kexec), after the reboot notifiers: nothing may be published any more.
    ///
    /// Runs in process context with every CPU still online (after `migrate_to_reboot_cpu()`),
    /// so it does what the reboot notifier does. It also covers an owner created after the
    /// reboot notifiers ran: `register_syscore()` in [`PerCpu::new`] takes the lock this runs
    /// under, and `system_state` is already past `SYSTEM_RUNNING` here.
    ///
    /// # Safety
    ///
    /// `data` must be the `data` of the registered `syscore` of a live, pinned `State`.
    unsafe extern "C" fn syscore_shutdown(data: *mut c_void) {
        // SAFETY: By the safety requirements.
        let this = unsafe { &*data.cast::<State>() };
        this.shut_down.xchg(true, Full);
        // SAFETY: Process context; `this` is pinned (safety requirements).
        unsafe { this.disable_online() };
    }

    /// The reboot notifier: every record off on every CPU before the next kernel or the
    /// firmware takes the memory over.
    ///
    /// # Safety
    ///
    /// `nb` must be the `reboot` field of a live, pinned `State`.
    unsafe extern "C" fn reboot_notify(
        nb: *mut bindings::notifier_block,
        _action: c_ulong,
        _data: *mut c_void,
    ) -> c_int {
        let nb = Opaque::cast_from(nb);
        // SAFETY: By the safety requirements, `nb` is embedded in a live `State`.
        let this = unsafe { &*crate::container_of!(nb, State, reboot) };
        // INVARIANT: From now on no enable succeeds; an enable running now on another CPU
        // finishes before that CPU takes the IPI below, which then disables it. The fully
        // ordered exchange keeps the online mask `disable_online()` reads after this store, so a
        // CPU that comes online after that read sees the flag.
        this.shut_down.xchg(true, Full);
        // SAFETY: Reboot notifiers run in process context; `this` is pinned (safety requirements).
        unsafe { this.disable_online() };
        // CAST: `NOTIFY_DONE` is 0.
        bindings::NOTIFY_DONE as c_int
    }
}

/// Fails with `EPERM` in NMI context.
///
/// An NMI can interrupt a section with interrupts disabled, so an enable or disable from an NMI
/// could slip between the check and the MSR write of one running on the same CPU.
#[inline]
fn not_in_nmi() -> Result {
    // SAFETY: `in_nmi()` only reads the preemption count.
    if unsafe { bindings::in_nmi() } {
        return Err(EPERM);
    }
    Ok(())
}

/// The ownership of a [`PerCpuMsr`], released when dropped.
struct Owner<R: HostRecord>(&'static PerCpuMsr<R>);

impl<R: HostRecord> Owner<R> {
    /// Becomes the owner of `desc`; `EBUSY` if it has one.
    fn claim(desc: &'static PerCpuMsr<R>) -> Result<Self> {
        if desc.owned().xchg(true, Acquire) {
            return Err(EBUSY);
        }
        Ok(Self(desc))
    }
}

impl<R: HostRecord> Drop for Owner<R> {
    fn drop(&mut self) {
        self.0.owned().store(false, Release);
    }
}

/// Records of type `R` shared with the host through a per-CPU MSR, one per possible CPU.
///
/// # Invariants
///
/// - `pages` holds the slots `state` describes; `stride` is a power of two between
///   `size_of::<R>()` (and the descriptor's alignment) and `PAGE_SIZE`, so no slot crosses a page.
/// - `pages` is only taken in `drop()`, and is freed only if no slot is published any more.
/// - `own` holds, for every possible CPU, the address of its slot, whose provenance (that of the
///   slots' memory) is exposed.
/// - While `self` exists, it is the only owner of its descriptor (`_owner`).
pub struct PerCpu<R: HostRecord> {
    state: Pin<KBox<State>>,
    desc: &'static PerCpuMsr<R>,
    pages: Option<Memory>,
    own: PerCpuBox<u64>,
    _owner: Owner<R>,
}

// SAFETY: The raw pointers only refer to memory this owner manages (a lent value it holds is
// `Send + Sync` by `LentPages`, and only dropped); all shared state is atomic or changed only on
// its own CPU with interrupts off.
unsafe impl<R: HostRecord> Send for PerCpu<R> {}

// SAFETY: `&self` methods either read atomically or act on the current CPU's slot only, with
// interrupts disabled; a lent value is never accessed through `&self`.
unsafe impl<R: HostRecord> Sync for PerCpu<R> {}

impl<R: HostRecord> PerCpu<R> {
    /// Allocates zeroed records for all possible CPUs, to be registered through `desc`, each in
    /// a slot aligned as `desc` requires.
    ///
    /// Fails with `EBUSY` if `desc` has another owner. From now on until it is dropped, the owner
    /// turns every record off at reboot and kexec.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::kvm_para::{
    ///     msr::STEAL_TIME,
    ///     shared::PerCpu, //
    /// };
    ///
    /// let slots = PerCpu::new(&STEAL_TIME)?;
    /// // One owner at a time.
    /// assert_eq!(PerCpu::new(&STEAL_TIME).err(), Some(EBUSY));
    /// for (cpu, _) in slots.iter_possible() {
    ///     // Every slot is 64-byte aligned and zeroed; none is published.
    ///     assert_eq!(slots.phys_addr(cpu) % 64, 0);
    ///     assert_eq!(slots.slot(cpu).load_u32(0), 0);
    ///     assert!(!slots.is_enabled(cpu));
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new(desc: &'static PerCpuMsr<R>) -> Result<Self> {
        Self::new_with(desc, |len| Ok(Memory::Own(Pages::new(len)?)))
    }

    /// Like [`PerCpu::new`], with the records in the lent memory `pages` (which holds records of
    /// type `R` only, [`LentPages::Record`]) rather than in pages of their own: CPU `n`'s record
    /// at offset `n * stride()`, every record zeroed first. When dropped, the owner gives `pages`
    /// back, or forgets it if a record may still be written by the host.
    ///
    /// Fails with `E2BIG` if the records of all possible CPUs do not fit in `pages`, and with
    /// `EBUSY` if `desc` has another owner (`pages` is given back then).
    pub fn new_in<P: LentPages<Record = R>>(desc: &'static PerCpuMsr<R>, pages: P) -> Result<Self> {
        let mut pages = Some(pages);
        Self::new_with(desc, |len| {
            if len > P::LEN {
                return Err(E2BIG);
            }
            // PANIC: `new_with()` calls this once.
            Memory::lent(pages.take().expect("called once"))
        })
        .inspect(|this| {
            // The memory may hold an earlier owner's records.
            for i in 0..this.state.nr {
                this.state.zero(i);
            }
        })
    }

    /// [`PerCpu::new`] with memory from `memory(len)`, which must return at least `len` bytes.
    fn new_with(
        desc: &'static PerCpuMsr<R>,
        memory: impl FnOnce(usize) -> Result<Memory>,
    ) -> Result<Self> {
        let owner = Owner::claim(desc)?;
        // At most `PAGE_SIZE` and at least 8: descriptor invariants.
        let stride = size_of::<R>().max(desc.align()).next_power_of_two();
        // CAST: `nr_cpu_ids()` is at most `NR_CPUS`, which fits in `usize`.
        let nr = nr_cpu_ids() as usize;
        let mut published = KVec::with_capacity(nr, GFP_KERNEL)?;
        for _ in 0..nr {
            published.push(Atomic::new(0u64), GFP_KERNEL)?;
        }
        let pages = memory(nr * stride)?;
        let base = pages.virt();
        // The table holds plain integers, which one `%gs`-relative load reads (`this_slot()`):
        // the slots' provenance is exposed here and taken up again there.
        let own = PerCpuBox::new(
            |cpu| {
                // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
                // SAFETY: Slot `cpu` lies inside the allocation of `nr * stride` bytes.
                let slot = unsafe { base.add(cpu.as_u32() as usize * stride) };
                // CAST: An address fits in `u64`.
                slot.as_ptr().expose_provenance() as u64
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: `stride` is a power of two in `8..=PAGE_SIZE`, the allocation covers `nr`
        // slots, nothing is published.
        let state = KBox::pin(
            State {
                base,
                stride,
                nr,
                msr: desc.msr(),
                enable: desc.enable_bit(),
                name: desc.name(),
                version: R::VERSION,
                gated: R::GATED,
                published,
                shut_down: AtomicFlag::new(false),
                reboot: Opaque::new(bindings::notifier_block {
                    notifier_call: Some(State::reboot_notify),
                    next: core::ptr::null_mut(),
                    priority: 0,
                }),
                syscore: Opaque::new(bindings::syscore {
                    node: bindings::list_head {
                        next: core::ptr::null_mut(),
                        prev: core::ptr::null_mut(),
                    },
                    ops: &SYSCORE_OPS,
                    data: core::ptr::null_mut(),
                }),
                suspended: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `syscore` is pinned in `state`, which lives until `drop()` unregisters it;
        // `data` points at `state`, as the callbacks require.
        // INVARIANT: Registered here, unregistered in `drop()`.
        unsafe {
            (*state.syscore.get()).data = core::ptr::from_ref::<State>(&state).cast_mut().cast();
            bindings::register_syscore(state.syscore.get());
        }
        // SAFETY: `reboot` is pinned in `state`, which lives until `drop()` unregisters it; the
        // callback's requirements hold. `register_reboot_notifier()` cannot fail.
        // INVARIANT: Registered here, unregistered in `drop()`.
        unsafe { bindings::register_reboot_notifier(state.reboot.get()) };
        // Created while the system goes down (the reboot chain may have run already): publish
        // nothing. `kernel_restart_prepare()` and friends set `system_state` after the reboot
        // notifiers and before `syscore_shutdown()`, which runs under the lock
        // `register_syscore()` above took: either that shutdown disables this owner, or it ran
        // before and this read sees the new state.
        // SAFETY: `system_state` is a plain `enum` the kernel sets once per transition.
        let state_now = unsafe { core::ptr::read_volatile(&raw const bindings::system_state) };
        if state_now > bindings::system_states_SYSTEM_RUNNING {
            state.shut_down.store(true, Relaxed);
        }
        // INVARIANT: `pages` holds the slots of `state`; `own` points at them.
        Ok(Self {
            state,
            desc,
            pages: Some(pages),
            own,
            _owner: owner,
        })
    }

    /// Returns the MSR the records are registered through.
    pub fn msr(&self) -> crate::msr::Msr {
        self.desc.msr()
    }

    /// Returns the size of a slot, which is also its alignment.
    pub fn stride(&self) -> usize {
        self.state.stride
    }

    /// Returns the possible CPUs with their slots.
    pub fn iter_possible(&self) -> impl Iterator<Item = (CpuId, Slot<'_, R>)> {
        crate::cpu::possible_cpus().map(move |cpu| (cpu, self.slot(cpu)))
    }

    /// Returns the index of `cpu`'s slot.
    #[inline]
    fn index(&self, cpu: CpuId) -> usize {
        // CAST: CPU numbers are below `nr_cpu_ids()`, which fits in `usize`.
        let i = cpu.as_u32() as usize;
        debug_assert!(i < self.state.nr);
        i
    }

    #[inline]
    fn pages(&self) -> &Memory {
        // PANIC: `pages` is only taken in `drop()`.
        self.pages.as_ref().expect("pages are present until drop")
    }

    /// Returns `cpu`'s record. Any CPU may read any record.
    #[inline]
    pub fn slot(&self, cpu: CpuId) -> Slot<'_, R> {
        let ptr = self.state.slot_ptr(self.index(cpu));
        Slot {
            // SAFETY: `ptr` is inside a non-null allocation.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast::<R>()) },
            _owner: PhantomData,
        }
    }

    /// Returns the current CPU's record, like [`PerCpu::slot`] but from a per-CPU pointer (one
    /// `%gs`-relative load on x86-64, as `this_cpu_read()` of a pointer in C).
    #[inline(always)]
    pub fn this_slot<'a>(&'a self, cpu: ThisCpu<'a>) -> Slot<'a, R> {
        // CAST: The table holds addresses (type invariant), which fit in `usize`.
        let addr = self.own.this_cpu_read(cpu) as usize;
        let ptr = core::ptr::with_exposed_provenance_mut::<R>(addr);
        Slot {
            // SAFETY: The current CPU is online, hence possible: `addr` is the address of its
            // slot, non-null, with the slots' memory's provenance, which was exposed when the
            // table was filled (type invariant).
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _owner: PhantomData,
        }
    }

    /// Returns the guest-physical address of `cpu`'s record.
    pub fn phys_addr(&self, cpu: CpuId) -> u64 {
        // NO-OVERFLOW: `nr * stride` bytes were allocated.
        self.pages().phys(self.index(cpu) * self.state.stride)
    }

    /// Returns `true` if `cpu`'s record is registered with the host.
    #[inline]
    pub fn is_enabled(&self, cpu: CpuId) -> bool {
        self.msr_value(cpu) != 0
    }

    /// Returns the MSR value this owner last wrote on `cpu` (0 if not registered).
    ///
    /// The value holds a physical address: do not show it to unprivileged users.
    pub fn msr_value(&self, cpu: CpuId) -> u64 {
        self.state.published[self.index(cpu)].load(Relaxed)
    }

    /// Zeroes the current CPU's record and registers it with the host:
    /// `MSR = phys | enable bit`.
    ///
    /// Fails with `EBUSY` if the record is registered already, `ESHUTDOWN` once the system is
    /// rebooting, `EPERM` in NMI context, and `EIO` if the MSR write raised `#GP` (the record is
    /// then not registered). Callable in any other context; the check, the MSR write and the
    /// state change run with interrupts disabled.
    pub fn enable(&self, cpu: ThisCpu<'_>) -> Result {
        self.enable_with_flags(cpu, 0)
    }

    /// Like [`PerCpu::enable`], with the further flag bits `flags` the descriptor allows;
    /// `EINVAL` for any other bit.
    ///
    /// Does not build for a [`HostRecord::GATED`] record.
    pub fn enable_with_flags(&self, cpu: ThisCpu<'_>, flags: u64) -> Result {
        const {
            assert!(
                !R::GATED,
                "only the kernel's dispatcher for this record may enable it"
            )
        };
        // SAFETY: The record is not gated.
        unsafe { self.enable_unchecked(cpu, flags) }
    }

    /// [`PerCpu::enable_with_flags`], also for a [`HostRecord::GATED`] record.
    ///
    /// # Safety
    ///
    /// If `R` is gated, the guest must handle what the host does once the record is enabled on
    /// this CPU, for as long as it stays enabled (for the async page fault record,
    /// [`PvApfData`](super::abi::PvApfData): the kernel's dispatcher is registered and knows this
    /// record, and the page-ready vector is set).
    pub unsafe fn enable_unchecked(&self, cpu: ThisCpu<'_>, flags: u64) -> Result {
        if flags & !self.desc.flags() != 0 {
            return Err(EINVAL);
        }
        not_in_nmi()?;
        let irq = local_interrupt_disable();
        self.state.enable(cpu, flags, &irq)
    }

    /// Unregisters the current CPU's record (`MSR = 0`) and zeroes it.
    ///
    /// Does nothing if it is not registered. If the MSR write raises `#GP`, the record stays
    /// marked registered (the host may still write it) and `EIO` is returned. `EPERM` in NMI
    /// context, like [`PerCpu::enable`].
    pub fn disable(&self, cpu: ThisCpu<'_>) -> Result {
        not_in_nmi()?;
        let irq = local_interrupt_disable();
        self.state.disable(cpu, &irq)
    }
}

impl<R: HostRecord> PerCpu<R> {
    /// Disables the record of every online CPU, by IPI, and waits for them; process context.
    ///
    /// A CPU that goes offline meanwhile runs its IPI while it dies, or its own hotplug callback
    /// disables it. For an owner that must have the host stop before something else goes, such
    /// as a dispatcher its records depend on.
    pub fn disable_online(&self) {
        might_sleep();
        // SAFETY: Process context (checked above); `state` is pinned.
        unsafe { self.state.disable_online() };
    }
}

impl<R: HostRecord> Drop for PerCpu<R> {
    fn drop(&mut self) {
        // The IPIs, unregistering the notifiers and the page conversion sleep.
        might_sleep();
        if self.state.busy() {
            // A slot is still registered: disable it on its CPU, before the reboot notifier and
            // the syscore entry go (a reboot meanwhile finds nothing published). Hotplug is not
            // locked (a drop from a hotplug callback would deadlock): a CPU that goes offline
            // meanwhile runs its queued IPIs while it dies, and one that stays offline keeps its
            // slot published, which leaks the pages below. Nothing enables a slot meanwhile:
            // `&mut self`, and a resume cannot run while a task drops this.
            // SAFETY: Process context; `state` is pinned.
            unsafe { self.state.disable_online() };
        }
        // SAFETY: `reboot` was registered in `new()`. Unregistering waits for a notifier call in
        // progress, so the state stays valid for it.
        unsafe { bindings::unregister_reboot_notifier(self.state.reboot.get()) };
        // SAFETY: `syscore` was registered in `new()`; unregistering takes the syscore lock, so
        // no shutdown callback runs on `state` afterwards (suspend callbacks run with every task
        // frozen, never concurrently with this).
        unsafe { bindings::unregister_syscore(self.state.syscore.get()) };
        if self.state.busy() {
            for (i, p) in self.state.published.iter().enumerate() {
                let v = p.load(Relaxed);
                if v != 0 {
                    pr_warn!(
                        "kvm_para: {} of CPU {} still points the host at its record; leaking the records\n",
                        self.state.name,
                        i
                    );
                }
            }
            // Never free memory the host may write.
            if let Some(pages) = self.pages.take() {
                pages.leak();
            }
        }
        // Otherwise `pages` is freed when the fields are dropped.
    }
}

/// Registers a one-shot record through `desc` on the current CPU, unregisters it, then calls `f`
/// on what the host wrote and frees it.
///
/// For records the host writes only while it handles the MSR write, such as the kvmclock wall
/// clock ([`super::msr::WALL_CLOCK_NEW`], which has no enable bit). The MSR is written with the
/// record's address, then with 0, with preemption disabled in between so both writes go to the
/// same CPU; `f` runs afterwards, in the caller's context, and may sleep. Fails with `EIO` if the
/// first write raises `#GP`; if the second one does, the page is leaked rather than freed.
///
/// # Examples
///
/// ```
/// use kernel::{
///     kvm_para::{
///         msr::WALL_CLOCK_NEW,
///         shared::with_record,
///         Feature,
///         KvmPara, //
///     },
///     pvclock::abi, //
/// };
///
/// if let Ok(kvm) = KvmPara::detect() {
///     if kvm.has(Feature::CLOCKSOURCE2) {
///         let epoch = with_record(&WALL_CLOCK_NEW, |w| abi::wall_clock(&w, abi::MAX_RETRIES))?;
///         // The host wrote a consistent record: the VM was started after 1970.
///         assert!(epoch.map(|e| e.sec > 0).unwrap_or(false));
///     }
/// }
/// # Ok::<(), Error>(())
/// ```
pub fn with_record<R: HostRecord, T>(
    desc: &'static OneShotMsr<R>,
    f: impl FnOnce(Slot<'_, R>) -> T,
) -> Result<T> {
    let pages = Pages::new(size_of::<R>())?;
    let phys = pages.phys(0);
    {
        let _guard = preempt::disable();
        // SAFETY: The host writes the page only while this MSR holds its address (a one-shot
        // MSR); it is reset to 0 below before the page is freed, on the same CPU (preemption is
        // disabled).
        unsafe { desc.msr().write_safe(phys | desc.enable_bit()) }?;
        // SAFETY: Writing 0 stops the host from writing the page.
        if unsafe { desc.msr().write_safe(0) }.is_err() {
            pr_warn!("kvm_para: cannot reset {}; leaking its page\n", desc.name());
            pages.leak();
            return Err(EIO);
        }
    }
    let slot = Slot {
        ptr: pages.virt.cast::<R>(),
        _owner: PhantomData,
    };
    Ok(f(slot))
}
