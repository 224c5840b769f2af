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
/// This is the C inline function's own `ALTERNATIVE_2()` (generated from
/// `<asm/alternative.h>`), inlined here: its alternative entries are applied to vmlinux at boot
/// and to a module when it is loaded, so the read costs what it costs in C, with no call.
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
    let (lo, hi): (u32, u32);
    // SAFETY: The instructions of every alternative exist on the CPUs the kernel patches them
    // in for, and only write EAX, EDX and (RDTSCP) ECX; CR4.TSD is clear in the kernel. Not
    // `nomem`: like the C `asm volatile`, the read stays between the loads around it.
    unsafe {
        crate::asm!(
            include!(concat!(
                env!("OBJTREE"),
                "/rust/kernel/generated_arch_rdtsc_ordered_asm.rs"
            ));
            out("eax") lo,
            out("edx") hi,
            out("ecx") _,
            options(nostack, preserves_flags),
        )
    };
    (u64::from(hi) << 32) | u64::from(lo)
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
