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
/// Inline on x86-64 (the C function's own alternatives, see `kernel::arch`), so the read costs
/// what it costs in C.
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
#[inline(always)]
pub fn read_ordered() -> u64 {
    crate::arch::rdtsc_ordered()
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
