// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel crate's `pvclock::abi` module.
//!
//! The file is included unchanged from `rust/kernel/pvclock/abi.rs`, so what is tested here is
//! exactly what the guest kernel runs.

#[path = "../../../../rust/kernel/pvclock/abi.rs"]
pub mod abi;
