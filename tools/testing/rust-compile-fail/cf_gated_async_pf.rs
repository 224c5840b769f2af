// SPDX-License-Identifier: GPL-2.0

//! Async PF has no safe publisher: its MSR makes the host raise #PF with a token.
//!
//! Only `kernel::async_pf::Registration` enables the record, with its dispatcher registered.
// expect: E0080

include!("harness.inc");

fn case() -> Result {
    let apf = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::ASYNC_PF_EN)?;
    let guard = kernel::preempt::disable();
    apf.enable(guard.this_cpu())
}
