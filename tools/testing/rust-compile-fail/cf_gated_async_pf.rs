// SPDX-License-Identifier: GPL-2.0

//! Async PF has no safe publisher: its MSR makes the host raise #PF with a token.
// expect: E0308

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_gated_async_pf",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::ASYNC_PF_EN);
        Ok(Case)
    }
}
