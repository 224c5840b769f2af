// SPDX-License-Identifier: GPL-2.0

//! Safe code cannot take a PV EOI word's bits with `take_u32()` (async page fault records only).
//!
//! Taking an armed bit would end its interrupt outside the EOI path, and the EOI again after.
// expect: E0599

include!("harness.inc");

fn case() -> Result {
    let words = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::PV_EOI_EN)?;
    let guard = kernel::preempt::disable();
    let _ = words.take_u32(guard.this_cpu(), 0);
    Ok(())
}
