// SPDX-License-Identifier: GPL-2.0

//! Architecture fast paths for the kernel crate.
//!
//! A few C inline functions are, on x86-64, one or two instructions that hot Rust paths (a clock
//! read, a per-CPU counter, a shared-memory flag) cannot afford to reach through a call: the
//! preemption count, the current CPU number, `this_cpu_ptr()`, `local64_t`, `rdtsc_ordered()`
//! and `__test_and_clear_bit()`. This module gives them one home. `arch/x86_64.rs` writes each
//! as the inline assembly of the C function it names; `arch/fallback.rs` calls the C helpers or
//! uses atomics, on other architectures, on UML and `!CONFIG_SMP` x86-64 (which lack the per-CPU
//! variables the assembly names), and with `CONFIG_RUST_INLINE_HELPERS`.
//!
//! A module cannot inline C helpers unless `CONFIG_RUST_INLINE_HELPERS` links their LLVM bitcode
//! into the Rust code, which needs a clang of the same LLVM major version as rustc
//! (`CONFIG_RUSTC_CLANG_LLVM_COMPATIBLE`). With it, the helpers give the C code for the
//! preemption count, the CPU number, `this_cpu_ptr()` and `rdtsc_ordered()`; `local64_t` and
//! the test-and-clear then use `LOCK`ed atomics, which are correct, just slower.
//!
//! These are low-level building blocks: use the safe interfaces, `kernel::preempt`,
//! `kernel::percpu`, `kernel::local`, `kernel::tsc` and `kernel::kvm_para::shared`.

#[cfg(all(
    CONFIG_X86_64,
    CONFIG_SMP,
    not(CONFIG_UML),
    not(CONFIG_RUST_INLINE_HELPERS)
))]
pub mod x86_64;
#[cfg(all(
    CONFIG_X86_64,
    CONFIG_SMP,
    not(CONFIG_UML),
    not(CONFIG_RUST_INLINE_HELPERS)
))]
pub use x86_64::*;

#[cfg(not(all(
    CONFIG_X86_64,
    CONFIG_SMP,
    not(CONFIG_UML),
    not(CONFIG_RUST_INLINE_HELPERS)
)))]
mod fallback;
#[cfg(not(all(
    CONFIG_X86_64,
    CONFIG_SMP,
    not(CONFIG_UML),
    not(CONFIG_RUST_INLINE_HELPERS)
)))]
pub use fallback::*;
