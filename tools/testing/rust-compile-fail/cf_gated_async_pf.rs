// SPDX-License-Identifier: GPL-2.0

//! Async PF has no safe publisher: its MSR makes the host raise #PF with a token.
// expect: E0308

include!("harness.inc");

fn case() -> Result {
    let _ = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::ASYNC_PF_EN);
    Ok(())
}
