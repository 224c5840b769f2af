// SPDX-License-Identifier: GPL-2.0

//! Architecture fast paths for the kernel crate.
//!
//! A few C inline functions are, on x86-64, one or two instructions that hot Rust paths (a clock
//! read, a per-CPU counter, a shared-memory flag) cannot afford to reach through a call: the
//! preemption count, the current CPU number, `this_cpu_ptr()`, `local64_t`, `rdtsc_ordered()`
//! and `__test_and_clear_bit()`. This module gives them one home. `arch/x86_64.rs` writes each as the
//! inline assembly of the C function it names; the fallback calls the C helpers or uses atomics.
//!
//! A module cannot inline C helpers unless `CONFIG_RUST_INLINE_HELPERS` links their LLVM bitcode
//! into the Rust code, which needs a clang of the same LLVM major version as rustc
//! (`CONFIG_RUSTC_CLANG_LLVM_COMPATIBLE`). With it, the helpers give the code the C callers get,
//! and the fallback is used on x86-64 too; the assembly is only for toolchains without it.
//!
//! The functions are `pub(crate)`: the safe interfaces are `kernel::preempt`, `kernel::percpu`,
//! `kernel::local`, `kernel::tsc` and `kernel::kvm_para::shared`.

#[cfg(all(CONFIG_X86_64, not(CONFIG_RUST_INLINE_HELPERS)))]
pub(crate) mod x86_64;
#[cfg(all(CONFIG_X86_64, not(CONFIG_RUST_INLINE_HELPERS)))]
pub(crate) use x86_64::*;

#[cfg(not(all(CONFIG_X86_64, not(CONFIG_RUST_INLINE_HELPERS))))]
mod fallback;
#[cfg(not(all(CONFIG_X86_64, not(CONFIG_RUST_INLINE_HELPERS))))]
pub(crate) use fallback::*;
