// SPDX-License-Identifier: GPL-2.0

//! The reschedule call inside `kernel::preempt`'s inline asm, in a function that returns early
//! on one path (so the frame could be shrink-wrapped), for objtool to validate
//! (tools/testing/rust-asm-frame/asm-frame.sh).

use kernel::prelude::*;

module! {
    type: AsmFrame,
    name: "rust_asm_frame",
    authors: ["kvm-guest-rs developers"],
    description: "frame of a call from inline asm",
    license: "GPL",
}

/// Reads `*x` times 3 with preemption disabled, or `*x` alone when `early`.
#[inline(never)]
#[no_mangle]
pub fn kgr_asm_frame_case(x: &u64, early: bool) -> u64 {
    if early {
        return *x;
    }
    let guard = kernel::preempt::disable();
    let v = core::hint::black_box(*x).wrapping_mul(3);
    drop(guard);
    v
}

struct AsmFrame;

impl kernel::Module for AsmFrame {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let x = 14;
        if kgr_asm_frame_case(&x, false) != 42 {
            return Err(EINVAL);
        }
        Ok(AsmFrame)
    }
}
