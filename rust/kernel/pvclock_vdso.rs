// SPDX-License-Identifier: GPL-2.0

//! The kernel's pvclock page for the vDSO.
//!
//! User space reads a pvclock clocksource without a system call through the vDSO, which reads
//! slot 0 of one page: the page behind `pvclock_get_pvti_cpu0_va()`. Once
//! `VDSO_CLOCKMODE_PVCLOCK` is marked used, every process maps that page into its
//! `[vvar_vclock]` area on first touch and keeps it mapped (`fork()` copies the mapping), and a
//! reader racing with a clocksource switch touches it before its sequence retry. A module's
//! memory therefore cannot be that page: processes would keep reading it after the module is
//! gone, and zapping their mappings would `SIGBUS` the racing readers.
//!
//! The kernel owns the page instead (`pvclock_vdso_page_get()`): allocated once, direct-mapped,
//! shared with the host under memory encryption, never freed, lent to one holder at a time as a
//! [`VdsoPage`]. The holder keeps its per-CPU pvclock records in it
//! ([`PerCpu::new_in`](crate::kvm_para::shared::PerCpu::new_in)), CPU 0's at offset 0, which is
//! the slot the vDSO reads, and may then give its clocksource the page's
//! [`VdsoPage::clock_mode`]. Giving the page back retires slot 0 (no
//! `PVCLOCK_TSC_STABLE_BIT`), so a vDSO that reads it before the next holder writes it falls back
//! to the system call.
//!
//! C header: [`arch/x86/include/asm/pvclock.h`](srctree/arch/x86/include/asm/pvclock.h)

use crate::{
    bindings,
    error::from_err_ptr,
    kvm_para::shared::LentPages,
    prelude::*,
    pvclock::VcpuTimeInfo,
    task::might_sleep,
    time::clocksource::VdsoClockMode, //
};
use core::ptr::NonNull;

/// The kernel's pvclock page for the vDSO, held by one user at a time.
///
/// The page holds `PAGE_SIZE / 64` pvclock records; the vDSO reads the first. Lend it to the
/// records with [`PerCpu::new_in`](crate::kvm_para::shared::PerCpu::new_in), which gives it back
/// only once no MSR points into it.
///
/// # Invariants
///
/// `ptr` is the page `pvclock_vdso_page_get()` returned; this value holds it until it is
/// dropped, which gives it back with `pvclock_vdso_page_put()`.
///
/// # Examples
///
/// ```
/// use kernel::pvclock_vdso::VdsoPage;
///
/// // Fails with EBUSY if the in-tree kvm-clock (or Xen) owns the vDSO's pvclock page.
/// if let Ok(page) = VdsoPage::get() {
///     // One holder at a time.
///     assert_eq!(VdsoPage::get().err(), Some(EBUSY));
///     assert_eq!(page.phys_addr() % 4096, 0);
///     drop(page);
///     // The same page again, for ever.
///     let again = VdsoPage::get()?;
///     assert_eq!(again.phys_addr() % 4096, 0);
/// }
/// # Ok::<(), Error>(())
/// ```
pub struct VdsoPage {
    ptr: NonNull<bindings::pvclock_vsyscall_time_info>,
}

// SAFETY: The page is kernel memory that is never freed; the value only holds its address, and
// giving it back may happen on any thread (process context).
unsafe impl Send for VdsoPage {}

// SAFETY: `&self` methods only read the address or mark the mode used, which is idempotent and
// an atomic OR on the C side.
unsafe impl Sync for VdsoPage {}

impl VdsoPage {
    /// Takes the page; process context.
    ///
    /// Fails with `EBUSY` if another user holds it or a built-in clocksource (the in-tree
    /// kvm-clock, Xen) set its own page for the vDSO, and with `ENOMEM` or the error of
    /// `set_memory_decrypted()` the first time, when the kernel allocates it.
    pub fn get() -> Result<Self> {
        might_sleep();
        // SAFETY: Process context (checked above); the function takes its own lock.
        let ptr = from_err_ptr(unsafe { bindings::pvclock_vdso_page_get() })?;
        // INVARIANT: The page was returned, so this value holds it.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// Returns the guest-physical address of the page (of CPU 0's slot, the one the vDSO reads).
    pub fn phys_addr(&self) -> u64 {
        // SAFETY: The page is direct-mapped kernel memory (type invariant).
        unsafe { bindings::virt_to_phys(self.ptr.as_ptr().cast()) }
    }

    /// Returns the vDSO clock mode that reads slot 0 of the page, for a clocksource whose counter
    /// is pvclock nanoseconds at 1 GHz with a 64-bit mask (what `pvclock_clocksource_read()`
    /// returns, which the vDSO computes from slot 0).
    ///
    /// Marks the mode used, so that processes map the page from now on (for the life of the
    /// system: the mark is never cleared). The vDSO uses slot 0 only while it carries
    /// `PVCLOCK_TSC_STABLE_BIT`, and makes a system call otherwise; give the mode to the
    /// clocksource only if CPU 0's record is in slot 0 and the host's stable bit is trusted, as
    /// `kvm_setup_vsyscall_timeinfo()` does.
    pub fn clock_mode(&self) -> VdsoClockMode {
        // SAFETY: This value holds the page (type invariant), as the function requires.
        unsafe { bindings::pvclock_vdso_enable() };
        // SAFETY: `VDSO_CLOCKMODE_PVCLOCK` is a mode of `enum vdso_clock_mode`; the page the vDSO
        // reads in it is set (`pvclock_vdso_page_get()` succeeded), never freed, and now marked
        // used, so every process can map and read it for ever. That the clocksource's counter is
        // what the vDSO computes from slot 0 is the correctness requirement documented above,
        // not a safety one: a wrong counter gives user space wrong time, not undefined behaviour;
        // and the page only ever holds pvclock records (`LentPages::Record`).
        unsafe { VdsoClockMode::new(bindings::vdso_clock_mode_VDSO_CLOCKMODE_PVCLOCK) }
    }
}

impl Drop for VdsoPage {
    fn drop(&mut self) {
        // `pvclock_vdso_page_put()` takes a mutex.
        might_sleep();
        // SAFETY: This value holds the page (type invariant) and gives it back once. Whoever
        // wrote an MSR with an address in it turned that MSR off before (`PerCpu` forgets the
        // page instead if it cannot).
        unsafe { bindings::pvclock_vdso_page_put(self.ptr.as_ptr()) };
    }
}

// SAFETY: The page is one direct-mapped, page-aligned, physically contiguous page, shared with the
// host under memory encryption (`pvclock_vdso_page_get()`), that only its holder writes and the
// kernel never frees; dropping a `VdsoPage` only gives it back.
unsafe impl LentPages for VdsoPage {
    // Every process can read the page: pvclock records only, what the vDSO expects there.
    type Record = VcpuTimeInfo;

    const LEN: usize = bindings::PAGE_SIZE;

    fn virt(&self) -> NonNull<u8> {
        self.ptr.cast()
    }
}
