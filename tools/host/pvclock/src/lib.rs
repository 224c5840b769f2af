// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel crate's `pvclock::abi` module.
//!
//! The file is included unchanged from `rust/kernel/pvclock/abi.rs`, so what is tested here is
//! exactly what the guest kernel runs.

#[path = "../../../../rust/kernel/pvclock/abi.rs"]
pub mod abi;

/// The driver's kvm-clock-rs policy (rating, MSR pair), included unchanged from
/// `samples/kvm_guest_rs/kvmclock/policy.rs`; its items are crate-visible there, so its tests
/// are unit tests here.
#[cfg(test)]
#[path = "../../../../samples/kvm_guest_rs/kvmclock/policy.rs"]
mod policy;

#[cfg(test)]
mod policy_tests {
    use crate::policy::{
        default_rating, msr_pair, rating_from_param, MsrPair, RATING, RATING_INVARIANT_TSC,
    };

    #[test]
    fn rating_policy_matches_kvmclock_init() {
        assert_eq!(default_rating(true, true, false), RATING_INVARIANT_TSC);
        assert_eq!(default_rating(true, true, true), RATING);
        assert_eq!(default_rating(true, false, false), RATING);
        assert_eq!(default_rating(false, true, false), RATING);
        assert_eq!(rating_from_param(0, 299), Some(299));
        assert_eq!(rating_from_param(1, 400), Some(1));
        assert_eq!(rating_from_param(499, 400), Some(499));
        for bad in [-1, 500, i32::MIN, i32::MAX] {
            assert_eq!(rating_from_param(bad, 400), None, "{bad}");
        }
    }

    #[test]
    fn msr_pair_prefers_clocksource2() {
        assert_eq!(msr_pair(true, true), Some(MsrPair::New));
        assert_eq!(msr_pair(true, false), Some(MsrPair::New));
        assert_eq!(msr_pair(false, true), Some(MsrPair::Legacy));
        assert_eq!(msr_pair(false, false), None);
    }
}
