// SPDX-License-Identifier: GPL-2.0

//! Control case: what the descriptors allow compiles.
// expect: ok

include!("harness.inc");

fn case() -> Result {
    let steal = kernel::kvm_para::shared::PerCpu::new(&kernel::kvm_para::msr::STEAL_TIME)?;
    let guard = kernel::preempt::disable();
    let _ = steal.enable(guard.this_cpu());
    drop(guard);
    let _ = kernel::kvm_para::shared::with_record(&kernel::kvm_para::msr::WALL_CLOCK_NEW, |w| {
        w.load_u32(0)
    })?;
    Ok(())
}
