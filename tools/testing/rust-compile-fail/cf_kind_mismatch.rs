// SPDX-License-Identifier: GPL-2.0

//! A per-CPU descriptor is not a one-shot one: the host keeps writing its record.
// expect: E0308

include!("harness.inc");

fn case() -> Result {
    let _ = kernel::kvm_para::shared::with_record(&kernel::kvm_para::msr::SYSTEM_TIME_NEW, |w| {
        w.load_u32(0)
    });
    Ok(())
}
