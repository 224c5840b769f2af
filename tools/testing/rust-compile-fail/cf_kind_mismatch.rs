// SPDX-License-Identifier: GPL-2.0

//! A per-CPU descriptor is not a one-shot one: the host keeps writing its record.
// expect: E0308

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_kind_mismatch",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ =
            kernel::kvm_para::shared::with_record(&kernel::kvm_para::msr::SYSTEM_TIME_NEW, |w| {
                w.load_u32(0)
            });
        Ok(Case)
    }
}
