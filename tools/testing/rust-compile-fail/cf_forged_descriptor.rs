// SPDX-License-Identifier: GPL-2.0

//! A driver cannot make a descriptor of its own.
// expect: E0451

include!("harness.inc");

fn case() -> Result {
    // Its fields are private; with a leaked value, `PerCpu::new()` would take it.
    static OWNED: kernel::sync::atomic::AtomicFlag = kernel::sync::atomic::AtomicFlag::new(false);
    let forged: kernel::kvm_para::msr::PerCpuMsr<kernel::pvclock::VcpuTimeInfo> =
        kernel::kvm_para::msr::PerCpuMsr {
            desc: todo!(),
            owned: &OWNED,
        };
    let _ = forged.msr();
    Ok(())
}
