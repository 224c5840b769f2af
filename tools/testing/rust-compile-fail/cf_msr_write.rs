// SPDX-License-Identifier: GPL-2.0

//! Writing an MSR is unsafe.
// expect: E0133

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_msr_write",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = kernel::msr::Msr::new(0xc000_0101).write_safe(0);
        Ok(Case)
    }
}
