// SPDX-License-Identifier: GPL-2.0

//! Tests of the steal clock's baseline (`StealBaseline::value()`), alone and followed by the
//! monotonic clamp the driver applies (`pvclock::abi::clamp_monotonic_from`).

use kvm_para::abi::StealBaseline;
use proptest::prelude::*;
use pvclock::abi::{clamp_monotonic_from, LastValue};
use std::cell::Cell;

#[test]
fn no_baseline_or_new_registration_needs_a_rebase() {
    let none = StealBaseline::default();
    assert_eq!(none.value(5, 2), None);
    let b = StealBaseline {
        steal: 100,
        version: 10,
        start: 7,
    };
    // The record started again: its version is below the baseline's.
    assert_eq!(b.value(500, 8), None);
    assert_eq!(b.value(100, 10), Some(7));
    assert_eq!(b.value(150, 12), Some(57));
}

#[test]
fn below_the_baseline_or_wrapping_lands_below_start() {
    let b = StealBaseline {
        steal: 1_000,
        version: 2,
        start: 500,
    };
    assert_eq!(b.value(999, 4), Some(0));
    let far = StealBaseline {
        steal: 0,
        version: 2,
        start: u64::MAX / 2,
    };
    let wraps = far.value(u64::MAX, 4).unwrap();
    assert!(wraps < far.start, "{wraps}");
}

proptest! {
    /// Within a registration, the value is `start` plus what the host added since the baseline.
    #[test]
    fn continues_from_start(base in any::<u64>(), start in 0u64..1 << 62, d in 0u64..1 << 62,
                            v0 in 1u32..u32::MAX / 2, dv in 0u32..1000) {
        prop_assume!(base.checked_add(d).is_some());
        let b = StealBaseline { steal: base, version: u64::from(v0), start };
        prop_assert_eq!(b.value(base + d, v0 + dv), Some(start + d));
    }

    /// Whatever the host writes (any `steal`, going back, jumping, wrapping) and however the
    /// record is registered again (its versions start over), the baseline followed by the
    /// driver's clamp (`pvclock::abi::clamp_monotonic_from`) never goes backwards, flags exactly the
    /// readings below what was returned before, and never moves more than the host added since
    /// the baseline.
    #[test]
    fn with_the_clamp_never_backwards(steps in prop::collection::vec(
        (any::<bool>(), any::<u64>(), 0u32..4), 1..64)) {
        let last = Last(Cell::new(0));
        let mut baseline = StealBaseline::default();
        let mut version = 2u32;
        for (again, steal, dv) in steps {
            if again {
                // Registered again: the record starts over, the hotplug callback has no
                // baseline (the host had not written the record yet).
                version = 2 + 2 * dv;
                baseline = StealBaseline::default();
            } else {
                version += 2 * dv;
            }
            let before = last.load();
            let value = match baseline.value(steal, version) {
                Some(v) => {
                    let c = clamp_monotonic_from(&last, before, v);
                    prop_assert_eq!(c.clamped, v < before);
                    if c.value > before {
                        // Only the host's excess over the baseline raises the clock.
                        prop_assert!(steal >= baseline.steal);
                        prop_assert_eq!(c.value - baseline.start, steal - baseline.steal);
                    }
                    c.value
                }
                None => {
                    prop_assert!(baseline.version == 0 || u64::from(version) < baseline.version);
                    // The CPU takes a new baseline; the value stands still.
                    baseline = StealBaseline { steal, version: u64::from(version), start: before };
                    before
                }
            };
            prop_assert!(value >= before);
            prop_assert_eq!(value, last.load().max(before));
        }
    }
}

/// The driver's per-CPU last value, single-threaded.
struct Last(Cell<u64>);

impl LastValue for Last {
    fn load(&self) -> u64 {
        self.0.get()
    }

    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        let prev = self.0.get();
        if prev == current {
            self.0.set(new);
            Ok(prev)
        } else {
            Err(prev)
        }
    }
}
