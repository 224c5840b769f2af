// SPDX-License-Identifier: GPL-2.0

//! x86 model-specific registers.
//!
//! Checked accessors: a `RDMSR` or `WRMSR` of a register the CPU (or the hypervisor) does not
//! implement raises `#GP`, which the kernel's exception table turns into an error instead of an
//! oops. Reading a register has no effect on memory and is safe; writing one can make the CPU or
//! the hypervisor do anything, including writing to guest memory, so it is `unsafe`. Safe owners
//! of such registers (for example `kernel::kvm_para::shared::PerCpu`) wrap the write.
//!
//! C header: [`arch/x86/include/asm/msr.h`](srctree/arch/x86/include/asm/msr.h)

use crate::{
    bindings,
    error::{
        code::EIO,
        to_result,
        Result, //
    },
};

/// An x86 model-specific register number.
///
/// # Examples
///
/// ```
/// use kernel::msr::Msr;
///
/// // IA32_TSC (0x10) exists on every x86-64 CPU, and reading it is harmless.
/// let tsc = Msr::new(0x10);
/// assert_eq!(tsc.number(), 0x10);
/// let a = tsc.read_safe()?;
/// let b = tsc.read_safe()?;
/// assert!(b >= a);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Msr(u32);

impl Msr {
    /// Creates an MSR number.
    #[inline]
    pub const fn new(number: u32) -> Self {
        Self(number)
    }

    /// Returns the MSR number (the value of `ECX` for `RDMSR`/`WRMSR`).
    #[inline]
    pub const fn number(self) -> u32 {
        self.0
    }

    /// Reads this MSR on the current CPU.
    ///
    /// Returns [`EIO`] if the read raised `#GP` (the MSR does not exist, or the hypervisor refuses
    /// it). Callable in any context; the caller decides which CPU it runs on.
    #[inline]
    pub fn read_safe(self) -> Result<u64> {
        let mut val = 0u64;
        // SAFETY: `rdmsrq_safe()` recovers from `#GP` and writes the value through the pointer,
        // which is valid for writes.
        let ret = unsafe { bindings::rdmsrq_safe(self.0, &mut val) };
        if ret != 0 {
            return Err(EIO);
        }
        Ok(val)
    }

    /// Writes `val` to this MSR on the current CPU.
    ///
    /// Returns [`EIO`] if the write raised `#GP` (the MSR does not exist or the value is
    /// reserved).
    ///
    /// # Safety
    ///
    /// The write must not break an invariant the kernel relies on. In particular, if `val` makes
    /// the CPU or the hypervisor access memory (e.g. a guest-physical address in a KVM
    /// paravirtual MSR), that memory must stay allocated and otherwise unused until the feature
    /// is disabled again on this CPU.
    #[inline]
    pub unsafe fn write_safe(self, val: u64) -> Result {
        // SAFETY: `wrmsrq_safe()` recovers from `#GP`; the caller upholds the requirements on the
        // effect of the write.
        let ret = unsafe { bindings::wrmsrq_safe(self.0, val) };
        to_result(ret).map_err(|_| EIO)
    }
}

impl From<Msr> for u32 {
    fn from(msr: Msr) -> Self {
        msr.0
    }
}
