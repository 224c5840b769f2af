// SPDX-License-Identifier: GPL-2.0

//! A raw MSR number (here IA32_GS_BASE) is not a per-CPU descriptor.
// expect: E0308

include!("harness.inc");

fn case() -> Result {
    let _ = kernel::kvm_para::shared::PerCpu::<kernel::pvclock::VcpuTimeInfo>::new(
        kernel::msr::Msr::new(0xc000_0101),
    );
    Ok(())
}
