// SPDX-License-Identifier: GPL-2.0

//! A raw MSR number (here IA32_GS_BASE) is not a one-shot descriptor.
// expect: E0308

include!("harness.inc");

fn case() -> Result {
    let _ = kernel::kvm_para::shared::with_record(
        kernel::msr::Msr::new(0xc000_0101),
        |w: kernel::kvm_para::shared::Slot<'_, kernel::pvclock::WallClock>| w.load_u32(0),
    );
    Ok(())
}
