// SPDX-License-Identifier: GPL-2.0

//! The result of `CPUID`, without the instruction: pure, so that the host tests of code that
//! interprets `CPUID` leaves (`kernel::kvm_para::abi`) compile it unchanged.

/// The four registers returned by one `CPUID` instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuIdResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}
