// SPDX-License-Identifier: GPL-2.0

//! kvm-clock-rs policy: the clocksource rating and the MSR pair, chosen like the in-tree
//! `kvmclock_init()`.
//!
//! Pure logic with no kernel dependency: a module of the driver, and, unchanged, of the host
//! test crate `tools/host/pvclock` (`policy`), where `cargo test` checks it. The kernel crate's
//! `pvclock::abi` keeps the mechanism (record layouts, scaling, the version protocol).

/// Rating of the in-tree `kvm-clock`, above the TSC's 300.
pub(crate) const RATING: i32 = 400;

/// Rating of the in-tree `kvm-clock` when the TSC is invariant, just below the TSC's 300.
pub(crate) const RATING_INVARIANT_TSC: i32 = 299;

/// Highest rating a clocksource may have ("499-400: perfect, the ideal clocksource").
pub(crate) const RATING_MAX: i32 = 499;

/// Returns the rating the in-tree driver would use (`kvmclock_init()`).
///
/// With an invariant TSC (`constant_tsc` and `nonstop_tsc`, not marked unstable) the TSC is the
/// better clocksource, so kvmclock rates itself just below it.
pub(crate) const fn default_rating(
    constant_tsc: bool,
    nonstop_tsc: bool,
    tsc_unstable: bool,
) -> i32 {
    if constant_tsc && nonstop_tsc && !tsc_unstable {
        RATING_INVARIANT_TSC
    } else {
        RATING
    }
}

/// Returns the rating for a `rating` module parameter: 0 selects `default`, `1..=499` is used as
/// is, anything else is refused.
pub(crate) const fn rating_from_param(param: i32, default: i32) -> Option<i32> {
    match param {
        0 => Some(default),
        1..=RATING_MAX => Some(param),
        _ => None,
    }
}

/// Which MSR pair a kvmclock uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MsrPair {
    /// `MSR_KVM_SYSTEM_TIME_NEW` / `MSR_KVM_WALL_CLOCK_NEW` (`KVM_FEATURE_CLOCKSOURCE2`).
    New,
    /// The deprecated `MSR_KVM_SYSTEM_TIME` / `MSR_KVM_WALL_CLOCK` (`KVM_FEATURE_CLOCKSOURCE`).
    Legacy,
}

/// Chooses the MSR pair like `kvmclock_init()`: the new pair if offered, else the legacy one.
pub(crate) const fn msr_pair(clocksource2: bool, clocksource: bool) -> Option<MsrPair> {
    if clocksource2 {
        Some(MsrPair::New)
    } else if clocksource {
        Some(MsrPair::Legacy)
    } else {
        None
    }
}
