// SPDX-License-Identifier: GPL-2.0

//! The read policy: TSC_STABLE trusted only with the CPUID bit, the global monotonic clamp
//! (sequential and concurrent), and the fallback for unusable records.

mod common;

use common::{body_for, Last, Scripted};
use proptest::prelude::*;
use pvclock::abi::{
    clamp_monotonic, read, read_known, Body, Known, LastValue, SnapshotError, Source,
    GUEST_STOPPED, NO_KNOWN_VERSION, TSC_STABLE_BIT,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

fn stable_body() -> Body {
    body_for(1_000_000_000, 0, 0, TSC_STABLE_BIT)
}

#[test]
fn stable_bit_trusted_only_with_cpuid_bit() {
    let last = Last::default();
    last.0.store(1_000_000, Ordering::Relaxed);
    let rec = Scripted::new(&[2], stable_body());
    // Trusted: the raw value, even below last_value, and last_value untouched.
    let r = read(&rec, stable_body, || 500, &last, true);
    assert_eq!((r.ns, r.source, r.clamped), (500, Source::Stable, false));
    assert_eq!(last.load(), 1_000_000);
    // Not trusted (no CPUID bit): clamped to last_value.
    let r = read(&rec, stable_body, || 500, &last, false);
    assert_eq!(
        (r.ns, r.source, r.clamped),
        (1_000_000, Source::Clamped, true)
    );
}

#[test]
fn record_without_stable_flag_is_clamped_even_with_cpuid_bit() {
    let last = Last::default();
    last.0.store(700, Ordering::Relaxed);
    let rec = Scripted::new(&[2], body_for(1_000_000_000, 0, 0, 0));
    let r = read(&rec, stable_body, || 500, &last, true);
    assert_eq!((r.ns, r.clamped), (700, true));
    let r = read(&rec, stable_body, || 900, &last, true);
    assert_eq!((r.ns, r.clamped, last.load()), (900, false, 900));
}

#[test]
fn guest_stopped_flag_is_reported() {
    let last = Last::default();
    let rec = Scripted::new(
        &[2],
        body_for(1_000_000_000, 0, 0, TSC_STABLE_BIT | GUEST_STOPPED),
    );
    let r = read(&rec, stable_body, || 5, &last, true);
    assert_eq!(r.flags & GUEST_STOPPED, GUEST_STOPPED);
    assert_eq!(r.ns, 5);
}

#[test]
fn unusable_records_fall_back_and_clamp() {
    let fallback = body_for(1_000_000_000, 0, 10_000, TSC_STABLE_BIT);
    let mut zero_mul = stable_body();
    zero_mul.mul = 0;
    for (rec, why) in [
        (
            Scripted::new(&[0], Body::default()),
            SnapshotError::Unwritten,
        ),
        (
            Scripted::new(&[2], zero_mul),
            SnapshotError::Invalid(pvclock::abi::Invalid::MulZero),
        ),
        (
            Scripted::new(&[3], stable_body()),
            SnapshotError::Busy { version: 3 },
        ),
    ] {
        let last = Last::default();
        let r = read(&rec, || fallback, || 5, &last, true);
        assert_eq!(r.source, Source::Fallback(why));
        assert_eq!(r.ns, 10_005, "{why:?}");
        assert_eq!(
            last.load(),
            10_005,
            "fallback readings always go through the clamp"
        );
        last.0.store(20_000, Ordering::Relaxed);
        let r = read(&rec, || fallback, || 5, &last, true);
        assert_eq!((r.ns, r.clamped), (20_000, true));
    }
}

#[test]
fn clamp_counts_only_real_corrections() {
    let last = Last::default();
    assert_eq!(clamp_monotonic(&last, 10).value, 10);
    let c = clamp_monotonic(&last, 10);
    assert_eq!((c.value, c.clamped), (10, false));
    let c = clamp_monotonic(&last, 9);
    assert_eq!((c.value, c.clamped), (10, true));
}

/// A `LastValue` whose first compare-exchange loses against another CPU.
struct Racy {
    inner: Last,
    raced: std::cell::Cell<bool>,
    other: u64,
}

impl LastValue for Racy {
    fn load(&self) -> u64 {
        self.inner.load()
    }
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        if !self.raced.replace(true) {
            self.inner.0.store(self.other, Ordering::Relaxed);
        }
        self.inner.compare_exchange(current, new)
    }
}

/// A last value of 100 to which another CPU publishes `other` during the first
/// compare-exchange.
fn racy(other: u64) -> Racy {
    let l = Racy {
        inner: Last::default(),
        raced: false.into(),
        other,
    };
    l.inner.0.store(100, Ordering::Relaxed);
    l
}

#[test]
fn clamp_retries_after_losing_a_race() {
    // Another CPU publishes 150 between our load and our compare-exchange of 120.
    let c = clamp_monotonic(&racy(150), 120);
    assert_eq!((c.value, c.clamped), (150, true));
    // ... or a smaller value: then ours wins on the retry.
    let l = racy(110);
    let c = clamp_monotonic(&l, 120);
    assert_eq!((c.value, c.clamped, l.load()), (120, false, 120));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Sequentially, the clamp returns the running maximum and flags exactly the decreases.
    #[test]
    fn sequential_clamp_is_running_max(values in prop::collection::vec(any::<u64>(), 1..100)) {
        let last = Last::default();
        let mut max = 0u64;
        for v in values {
            let c = clamp_monotonic(&last, v);
            prop_assert_eq!(c.clamped, v < max);
            max = max.max(v);
            prop_assert_eq!(c.value, max);
        }
    }
}

/// Threads that read skewed clocks (each its own offset) through one clamp never see time go
/// backwards, and the clamp corrects the laggards.
#[test]
fn concurrent_clamp_is_monotonic_per_thread_and_globally_bounded() {
    let last = Arc::new(Last(AtomicU64::new(0)));
    let clock = Arc::new(AtomicU64::new(0));
    let clamps = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (last, clock, clamps) = (last.clone(), clock.clone(), clamps.clone());
            thread::spawn(move || {
                let mut prev = 0u64;
                let mut maxin = 0u64;
                for _ in 0..200_000 {
                    // A shared "TSC" plus a per-thread skew of up to 3 µs.
                    let raw = clock.fetch_add(1, Ordering::Relaxed) * 10 + t * 1000;
                    maxin = maxin.max(raw);
                    let c = clamp_monotonic(&*last, raw);
                    assert!(c.value >= prev, "thread {t}: {} after {}", c.value, prev);
                    assert!(c.value >= raw);
                    if c.clamped {
                        clamps.fetch_add(1, Ordering::Relaxed);
                    }
                    prev = c.value;
                }
                maxin
            })
        })
        .collect();
    let maxin = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        last.load(),
        maxin,
        "last_value ends at the largest value offered"
    );
    assert!(
        clamps.load(Ordering::Relaxed) > 0,
        "skewed readers must have been clamped"
    );
}

#[test]
fn fallback_is_only_computed_when_needed() {
    let last = Last::default();
    let rec = Scripted::new(&[2], stable_body());
    let r = read(
        &rec,
        || panic!("fallback computed for a usable record"),
        || 7,
        &last,
        true,
    );
    assert_eq!((r.ns, r.source), (7, Source::Stable));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// `read_known()` returns a value only for a consistent record with the known version, and
    /// then the value `read()` returned for that version; a version `read()` hands out is only
    /// one it would return as is (trusted, stable, valid, not stopped).
    #[test]
    fn read_known_trusts_only_what_read_checked(
        v1 in prop_oneof![Just(0u32), Just(1u32), Just(2u32), any::<u32>()],
        v2_same in any::<bool>(),
        v2_other in any::<u32>(),
        tsc_timestamp in any::<u64>(),
        system_time in any::<u64>(),
        mul in prop_oneof![Just(0u32), Just(1u32), Just(u32::MAX), any::<u32>()],
        shift in any::<i8>(),
        flags in any::<u8>(),
        trust_stable in any::<bool>(),
        tsc in any::<u64>(),
        tsc2 in any::<u64>(),
    ) {
        let body = Body { tsc_timestamp, system_time, mul, shift, flags };
        // A full read of a steady record, then a fast read with what it learnt.
        let last = Last::default();
        let full = read(&Scripted::new(&[v1, v1], body), || body, || tsc, &last, trust_stable);
        let known = full.known_version();
        let clean = trust_stable
            && v1 % 2 == 0
            && v1 != 0
            && flags & (TSC_STABLE_BIT | GUEST_STOPPED) == TSC_STABLE_BIT
            && body.invalid().is_none();
        prop_assert_eq!(known != NO_KNOWN_VERSION, clean);
        if clean {
            prop_assert_eq!(known, u64::from(v1));
            prop_assert_eq!(full.ns, body.ns_at(tsc));
        }
        let v2 = if v2_same { v1 } else { v2_other };
        let rec = Scripted::new(&[v1, v2], body);
        let fast = read_known(&rec, || known, || tsc2);
        prop_assert_eq!(rec.version_loads.get(), 2);
        let expect = if v1 != v2 || v1 % 2 == 1 {
            Known::Torn
        } else if clean {
            Known::Ns(body.ns_at(tsc2))
        } else {
            Known::Unknown
        };
        prop_assert_eq!(fast, expect);
    }
}

#[test]
fn read_known_needs_the_known_version() {
    let body = stable_body();
    assert_eq!(
        read_known(&Scripted::new(&[4, 4], body), || 4, || 7),
        Known::Ns(7)
    );
    assert_eq!(
        read_known(&Scripted::new(&[6, 6], body), || 4, || 7),
        Known::Unknown
    );
    assert_eq!(
        read_known(&Scripted::new(&[3, 3], body), || 4, || 7),
        Known::Torn
    );
    assert_eq!(
        read_known(&Scripted::new(&[4, 6], body), || 4, || 7),
        Known::Torn
    );
    assert_eq!(
        read_known(&Scripted::new(&[0, 0], body), || NO_KNOWN_VERSION, || 7),
        Known::Unknown
    );
    // A stopped guest, an unstable record and an untrusted stable bit are never known.
    let last = Last::default();
    let stopped = body_for(1_000_000_000, 0, 0, TSC_STABLE_BIT | GUEST_STOPPED);
    let unstable = body_for(1_000_000_000, 0, 0, 0);
    for (b, trust_stable) in [(stopped, true), (unstable, true), (body, false)] {
        let r = read(
            &Scripted::new(&[4], b),
            stable_body,
            || 7,
            &last,
            trust_stable,
        );
        assert_eq!(r.known_version(), NO_KNOWN_VERSION);
    }
    let r = read(&Scripted::new(&[4], body), stable_body, || 7, &last, true);
    assert_eq!(r.known_version(), 4);
}
