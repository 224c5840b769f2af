// SPDX-License-Identifier: GPL-2.0

//! Writing an MSR is unsafe.
// expect: E0133

include!("harness.inc");

fn case() -> Result {
    let _ = kernel::msr::Msr::new(0xc000_0101).write_safe(0);
    Ok(())
}
