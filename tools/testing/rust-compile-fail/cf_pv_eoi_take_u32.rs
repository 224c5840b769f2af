// SPDX-License-Identifier: GPL-2.0

//! Safe code cannot take a word of a host-shared record (`take_u32()` is gone from the API).
//!
//! Taking an armed PV EOI bit would end its interrupt outside the EOI path, and the EOI again
//! after; taking an async PF token would lose its wake-up. Only the kernel crate's EOI path and
//! page-ready callback consume them.
// expect: E0599

include!("harness.inc");

fn case() -> Result {
    let words = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::PV_EOI_EN)?;
    let apf = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::ASYNC_PF_EN)?;
    let guard = kernel::preempt::disable();
    let _ = words.take_u32(guard.this_cpu(), 0);
    let _ = apf.take_u32(guard.this_cpu(), 4);
    Ok(())
}
