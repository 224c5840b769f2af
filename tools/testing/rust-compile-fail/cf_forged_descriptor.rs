// SPDX-License-Identifier: GPL-2.0

//! A driver cannot make a descriptor of its own.
// expect: E0451

use kernel::prelude::*;

module! {
    type: Case,
    name: "cf_forged_descriptor",
    authors: ["kvm-guest-rs developers"],
    description: "compile-fail case",
    license: "GPL",
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Its fields are private; with a leaked value, `PerCpu::new()` would take it.
        static OWNED: kernel::sync::atomic::AtomicFlag =
            kernel::sync::atomic::AtomicFlag::new(false);
        let forged: kernel::kvm_para::msr::PerCpuMsr<kernel::pvclock::VcpuTimeInfo> =
            kernel::kvm_para::msr::PerCpuMsr {
                desc: todo!(),
                owned: &OWNED,
            };
        let _ = forged.msr();
        Ok(Case)
    }
}
