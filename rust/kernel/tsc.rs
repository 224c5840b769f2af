// SPDX-License-Identifier: GPL-2.0

//! x86 time-stamp counter.
//!
//! C header: [`arch/x86/include/asm/tsc.h`](srctree/arch/x86/include/asm/tsc.h)

use crate::bindings;

/// Reads the TSC of the current CPU in program order (`rdtsc_ordered()`).
///
/// Uses `RDTSCP` or `LFENCE; RDTSC`, whichever the CPU prefers, so the read cannot be hoisted
/// above earlier loads: a TSC read after loading a pvclock version belongs to that version.
/// Callable in any context, including NMI.
///
/// # Examples
///
/// ```
/// use kernel::tsc;
///
/// let a = tsc::read_ordered();
/// let b = tsc::read_ordered();
/// assert!(b >= a);
/// ```
#[inline]
pub fn read_ordered() -> u64 {
    // SAFETY: `rdtsc_ordered()` has no preconditions.
    unsafe { bindings::rdtsc_ordered() }
}

/// How `rdtsc_ordered()` reads the TSC on this machine, decided once and then read inline.
///
/// `rdtsc_ordered()` is an `ALTERNATIVE_2()` patched at boot: `RDTSCP` if the CPU has it, else
/// `LFENCE; RDTSC` if `LFENCE` orders `RDTSC` (`X86_FEATURE_LFENCE_RDTSC`), else a plain `RDTSC`.
/// A module calling it pays a call to the C helper on every read; hot paths (a clocksource
/// read) instead detect the variant once with [`OrderedTsc::detect`] and call
/// [`OrderedTsc::read`], which is the chosen instruction sequence behind one predictable branch.
///
/// # Examples
///
/// ```
/// use kernel::tsc::{
///     self,
///     OrderedTsc, //
/// };
///
/// let tsc = OrderedTsc::detect();
/// let a = tsc.read();
/// let b = tsc::read_ordered();
/// let c = tsc.read();
/// assert!(a <= b && b <= c);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderedTsc {
    /// `RDTSCP`, which waits for all earlier instructions (`X86_FEATURE_RDTSCP`).
    Rdtscp,
    /// `LFENCE; RDTSC` (`X86_FEATURE_LFENCE_RDTSC`).
    LfenceRdtsc,
    /// A plain `RDTSC`, like `rdtsc_ordered()` on CPUs with neither feature.
    Rdtsc,
}

impl OrderedTsc {
    /// Returns the variant `rdtsc_ordered()` uses on this machine.
    pub fn detect() -> Self {
        if boot_cpu_has(bindings::X86_FEATURE_RDTSCP) {
            Self::Rdtscp
        } else if boot_cpu_has(bindings::X86_FEATURE_LFENCE_RDTSC) {
            Self::LfenceRdtsc
        } else {
            Self::Rdtsc
        }
    }

    /// Reads the TSC of the current CPU in program order, like [`read_ordered`].
    ///
    /// Callable in any context. The read is a compiler barrier: it is neither moved before earlier
    /// loads (a pvclock version) nor after later ones.
    #[inline(always)]
    pub fn read(self) -> u64 {
        let (lo, hi): (u32, u32);
        match self {
            // SAFETY: `RDTSCP` is available (checked by `detect()`) and only writes the three
            // registers named here; CR4.TSD is clear in the kernel. Not `nomem`: a compiler
            // barrier, as the ordering requires.
            Self::Rdtscp => unsafe {
                crate::asm!(
                    "rdtscp";
                    out("eax") lo,
                    out("edx") hi,
                    out("ecx") _,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: As above, `LFENCE` and `RDTSC` are available on every x86-64 CPU.
            Self::LfenceRdtsc => unsafe {
                crate::asm!(
                    "lfence\n\trdtsc";
                    out("eax") lo,
                    out("edx") hi,
                    options(nostack, preserves_flags),
                )
            },
            // SAFETY: As above.
            Self::Rdtsc => unsafe {
                crate::asm!(
                    "rdtsc";
                    out("eax") lo,
                    out("edx") hi,
                    options(nostack, preserves_flags),
                )
            },
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }
}

/// Returns the TSC frequency in kHz the kernel calibrated at boot (`tsc_khz`), 0 if unknown.
#[inline]
pub fn khz() -> u32 {
    // SAFETY: `tsc_khz` is written during boot and only read afterwards; a plain read of an
    // aligned `u32` cannot tear.
    unsafe { bindings::tsc_khz }
}

/// Returns `true` if the kernel marked the TSC unstable (`check_tsc_unstable()`).
#[inline]
pub fn is_unstable() -> bool {
    // SAFETY: `check_tsc_unstable()` only reads a flag.
    unsafe { bindings::check_tsc_unstable() != 0 }
}

/// Returns `true` if the TSC ticks at a constant rate (`X86_FEATURE_CONSTANT_TSC`).
#[inline]
pub fn has_constant_rate() -> bool {
    boot_cpu_has(bindings::X86_FEATURE_CONSTANT_TSC)
}

/// Returns `true` if the TSC keeps ticking in deep C-states (`X86_FEATURE_NONSTOP_TSC`).
#[inline]
pub fn has_nonstop() -> bool {
    boot_cpu_has(bindings::X86_FEATURE_NONSTOP_TSC)
}

/// Returns `true` if the boot CPU has the feature `bit` (an `X86_FEATURE_*` number).
#[inline]
fn boot_cpu_has(bit: u32) -> bool {
    // CAST: `X86_FEATURE_*` numbers are below `32 * NCAPINTS`, far inside `i32`.
    // SAFETY: `boot_cpu_has()` only reads the boot CPU's capability bits.
    unsafe { bindings::boot_cpu_has(bit as i32) }
}
