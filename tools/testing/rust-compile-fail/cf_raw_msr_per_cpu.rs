// SPDX-License-Identifier: GPL-2.0

//! A raw MSR number (here IA32_GS_BASE) is not a per-CPU descriptor.
// expect: E0308

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_raw_msr_per_cpu",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = kernel::kvm_para::shared::PerCpu::<kernel::pvclock::VcpuTimeInfo>::new(
            kernel::msr::Msr::new(0xc000_0101),
        );
        Ok(Case)
    }
}
