// SPDX-License-Identifier: GPL-2.0

//! Safe code cannot forge `Ended`, so an EOI override cannot claim an EOI it did not do.
//!
//! An interrupt never ended would block every interrupt of lower or equal priority.
// expect: E0133

include!("harness.inc");

#[allow(dead_code)]
fn forge<'a>(ctx: kernel::apic_eoi::EoiContext<'a>) -> kernel::apic_eoi::Ended<'a> {
    kernel::apic_eoi::Ended::new_unchecked(ctx)
}

fn case() -> Result {
    Ok(())
}
