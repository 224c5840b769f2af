// SPDX-License-Identifier: GPL-2.0

//! Control case: what the descriptors allow compiles.
// expect: ok

use kernel::prelude::*;

module! {
    type: Case,
    name: "ok_descriptors",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let steal = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::STEAL_TIME)?;
        let guard = kernel::preempt::disable();
        let _ = steal.enable(guard.this_cpu());
        drop(guard);
        let _ =
            kernel::kvm_para::shared::with_record(&kernel::kvm_para::msr::WALL_CLOCK_NEW, |w| {
                w.load_u32(0)
            })?;
        Ok(Case)
    }
}
