// SPDX-License-Identifier: GPL-2.0

//! x86 `CPUID` instruction.
//!
//! C header: [`arch/x86/include/asm/cpuid/api.h`](srctree/arch/x86/include/asm/cpuid/api.h)

mod result;

pub use result::CpuIdResult;

/// Executes `CPUID` for `leaf` and `subleaf` on the current CPU.
///
/// Goes through the kernel's `cpuid_count()`, so it uses the paravirtualised `CPUID` where the
/// kernel does.
///
/// # Examples
///
/// ```
/// use kernel::cpuid;
///
/// // Leaf 0 returns the highest basic leaf and the vendor string on every x86 CPU.
/// let r = cpuid::cpuid_count(0, 0);
/// assert!(r.eax >= 1);
/// ```
#[inline]
pub fn cpuid_count(leaf: u32, subleaf: u32) -> CpuIdResult {
    let mut r = CpuIdResult::default();
    // CAST: `cpuid_count()` takes the subleaf as `int`; every `u32` bit pattern is valid in ECX.
    let subleaf = subleaf as i32;
    // SAFETY: `CPUID` is always available on x86-64 and has no side effect on kernel state; the
    // four pointers are valid for writes for the duration of the call.
    unsafe {
        bindings::cpuid_count(
            leaf, subleaf, &mut r.eax, &mut r.ebx, &mut r.ecx, &mut r.edx,
        )
    };
    r
}

/// Executes `CPUID` for `leaf` (subleaf 0) on the current CPU.
#[inline]
pub fn cpuid(leaf: u32) -> CpuIdResult {
    cpuid_count(leaf, 0)
}
