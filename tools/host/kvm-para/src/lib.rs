// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel crate's `kvm_para::abi` module.
//!
//! The file is included unchanged from `rust/kernel/kvm_para/abi.rs`, so what is tested here is
//! exactly what the guest kernel runs.

#[path = "../../../../rust/kernel/kvm_para/abi.rs"]
pub mod abi;
