// SPDX-License-Identifier: GPL-2.0

//! A raw MSR number (here IA32_GS_BASE) is not a one-shot descriptor.
// expect: E0308

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_raw_msr_one_shot",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = kernel::kvm_para::shared::with_record(
            kernel::msr::Msr::new(0xc000_0101),
            |w: kernel::kvm_para::shared::Slot<'_, kernel::pvclock::WallClock>| w.load_u32(0),
        );
        Ok(Case)
    }
}
