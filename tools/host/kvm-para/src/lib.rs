// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel crate's `kvm_para::abi` module.
//!
//! The file is included unchanged from `rust/kernel/kvm_para/abi.rs`, so what is tested here is
//! exactly what the guest kernel runs; so is the one kernel-crate type it uses,
//! `kernel::cpuid::CpuIdResult`, from its pure file.

#[path = "../../../../rust/kernel/cpuid/result.rs"]
pub mod cpuid;

#[path = "../../../../rust/kernel/kvm_para/abi.rs"]
pub mod abi;
