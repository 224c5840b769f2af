// SPDX-License-Identifier: GPL-2.0

//! Host build of the driver's async page fault token table.
//!
//! The file is included unchanged from `samples/kvm_guest_rs/async_pf/table.rs`, so what is
//! tested here is exactly what the guest kernel runs; its items are crate-visible there, so its
//! tests are unit tests here.

#[cfg(test)]
#[path = "../../../../samples/kvm_guest_rs/async_pf/table.rs"]
mod table;

#[cfg(test)]
mod tests;
