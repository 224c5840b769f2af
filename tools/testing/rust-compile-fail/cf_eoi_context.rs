// SPDX-License-Identifier: GPL-2.0

//! Safe code cannot make an `EoiContext`, so only the EOI path can take a PV EOI bit.
//!
//! Taking it elsewhere would end an armed interrupt early and the real EOI again.
// expect: E0451

include!("harness.inc");

fn case() -> Result {
    let guard = kernel::preempt::disable();
    let _ctx = kernel::apic_eoi::EoiContext {
        this: guard.this_cpu(),
    };
    Ok(())
}
