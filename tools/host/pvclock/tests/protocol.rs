// SPDX-License-Identifier: GPL-2.0

//! The version protocol of `snapshot()` and `wall_clock()`: scripted version sequences
//! (odd, changing, stuck, never written), bad bodies, and a concurrent writer.

mod common;

use common::{body_for, LiveRecord, Scripted};
use proptest::prelude::*;
use pvclock::abi::{
    snapshot, wall_clock, Body, Epoch, Invalid, SnapshotError, WallClockError, MAX_RETRIES,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

fn good() -> Body {
    body_for(1_000_000_000, 100, 1_000, 1)
}

#[test]
fn stable_record_reads_first_time() {
    let r = Scripted::new(&[4, 4], good());
    let s = snapshot(&r, || 150, MAX_RETRIES).unwrap();
    assert_eq!((s.version, s.retries, s.tsc), (4, 0, 150));
    assert_eq!(s.ns(), 1_050);
    assert_eq!(r.version_loads.get(), 2);
}

#[test]
fn odd_version_retries_until_even() {
    // First round: update in progress (5 -> masked 4, re-read 5). Second: done (6, 6).
    let r = Scripted::new(&[5, 5, 6, 6], good());
    let s = snapshot(&r, || 100, MAX_RETRIES).unwrap();
    assert_eq!((s.version, s.retries), (6, 1));
}

#[test]
fn version_change_during_read_retries() {
    let r = Scripted::new(&[2, 4, 4, 4], good());
    let s = snapshot(&r, || 100, MAX_RETRIES).unwrap();
    assert_eq!((s.version, s.retries), (4, 1));
}

#[test]
fn stuck_odd_version_gives_up_without_hanging() {
    let r = Scripted::new(&[7], good());
    let e = snapshot(&r, || 100, 10).unwrap_err();
    assert_eq!(e, (SnapshotError::Busy { version: 7 }, 10));
    // 11 rounds of two loads each: bounded.
    assert_eq!(r.version_loads.get(), 22);
    let e = snapshot(&Scripted::new(&[7], good()), || 100, MAX_RETRIES).unwrap_err();
    assert_eq!(e.1, MAX_RETRIES);
}

#[test]
fn never_written_record_is_refused() {
    let r = Scripted::new(&[0], Body::default());
    assert_eq!(
        snapshot(&r, || 1, MAX_RETRIES).unwrap_err(),
        (SnapshotError::Unwritten, 0)
    );
}

#[test]
fn first_write_in_progress_is_not_unwritten() {
    // Version 1 is odd (the first write in progress), not 0: retry, then the finished record (2).
    let r = Scripted::new(&[1, 1, 2, 2], good());
    assert_eq!(snapshot(&r, || 100, MAX_RETRIES).unwrap().version, 2);
}

#[test]
fn bodies_that_cannot_describe_a_clock_are_refused() {
    let g = good();
    for (mul, shift, why) in [
        (0, g.shift, Invalid::MulZero),
        (g.mul, 40, Invalid::Shift(40)),
        (g.mul, -33, Invalid::Shift(-33)),
    ] {
        let b = Body { mul, shift, ..g };
        assert_eq!(
            snapshot(&Scripted::new(&[2], b), || 1, MAX_RETRIES).unwrap_err(),
            (SnapshotError::Invalid(why), 0)
        );
    }
}

#[test]
fn tsc_is_read_once_per_round() {
    let r = Scripted::new(&[3, 3, 3, 3, 4, 4], good());
    let mut n = 0;
    let s = snapshot(
        &r,
        || {
            n += 1;
            n * 10
        },
        MAX_RETRIES,
    )
    .unwrap();
    assert_eq!((s.retries, s.tsc), (2, 30));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// For any sequence of version loads, the result is that of the first round whose two loads
    /// are equal and even, and the loop never exceeds its retry bound. (C masks the first load
    /// with `& ~1`, so it also accepts an odd first load followed by that value minus 1, which
    /// only a host whose version goes backwards can produce, with a body it was writing.)
    #[test]
    fn snapshot_follows_the_protocol(versions in prop::collection::vec(0u32..8, 0..40), max in 0u32..20) {
        let r = Scripted::new(&versions, good());
        let got = snapshot(&r, || 100, max);
        let seq = versions.clone();
        let last = seq.last().copied().unwrap_or(0);
        let load = |i: usize| -> u32 { if i < seq.len() { seq[i] } else { last } };
        let mut want = None;
        for round in 0..=max {
            let i = 2 * round as usize;
            let (a, b) = (load(i), load(i + 1));
            if a & 1 == 0 && a == b {
                want = Some(if a == 0 { Err((SnapshotError::Unwritten, round)) } else { Ok((a, round)) });
                break;
            }
        }
        let want = want.unwrap_or_else(|| Err((SnapshotError::Busy { version: load(2 * max as usize + 1) }, max)));
        match (got, want) {
            (Ok(s), Ok((v, retries))) => prop_assert_eq!((s.version, s.retries), (v, retries)),
            (Err(e), Err(w)) => prop_assert_eq!(e, w),
            (g, w) => prop_assert!(false, "got {:?}, want {:?}", g, w),
        }
        prop_assert!(r.version_loads.get() <= 2 * (max + 1));
    }
}

/// A writer thread rewrites the record with the host protocol; every successful snapshot must be
/// a body the writer wrote as a whole (its fields are derived from one counter), never a mix.
#[test]
fn concurrent_writer_never_yields_torn_body() {
    let rec = Arc::new(LiveRecord::default());
    let body = |n: u64| Body {
        tsc_timestamp: n,
        system_time: n.wrapping_mul(3),
        mul: u32::try_from(n % 0xffff_fff0).unwrap() + 1,
        shift: i8::try_from(n % 33).unwrap() - 16,
        flags: u8::try_from(n % 2).unwrap(),
    };
    rec.host_write(&body(1));
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (rec, stop) = (rec.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 1u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                rec.host_write(&body(n));
            }
            n
        })
    };
    let mut ok = 0u64;
    let mut busy = 0u64;
    for _ in 0..200_000 {
        match snapshot(&*rec, || 0, MAX_RETRIES) {
            Ok(s) => {
                let n = s.body.tsc_timestamp;
                assert_eq!(s.body, body(n), "torn body at version {}", s.version);
                assert_eq!(s.version % 2, 0);
                ok += 1;
            }
            Err((SnapshotError::Busy { .. }, _)) => busy += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = w.join().unwrap();
    assert!(ok > 0 && writes > 1, "ok {ok} busy {busy} writes {writes}");
}

#[test]
fn wall_clock_reads_consistent_epoch() {
    let w = Scripted::new(&[3, 3, 4, 4], (1_577_836_800, 123));
    assert_eq!(
        wall_clock(&w, 10),
        Ok(Epoch {
            sec: 1_577_836_800,
            nsec: 123
        })
    );
}

#[test]
fn wall_clock_refuses_unwritten_invalid_and_stuck() {
    assert_eq!(
        wall_clock(&Scripted::new(&[0], (5, 0)), 10),
        Err(WallClockError::Unwritten)
    );
    assert_eq!(
        wall_clock(&Scripted::new(&[2], (5, 1_000_000_000)), 10),
        Err(WallClockError::Invalid)
    );
    assert_eq!(
        wall_clock(&Scripted::new(&[9], (5, 0)), 10),
        Err(WallClockError::Busy)
    );
}

#[test]
fn wall_time_adds_kvmclock_to_epoch() {
    let e = Epoch {
        sec: 1_577_836_800,
        nsec: 999_999_999,
    };
    assert_eq!(e.wall_ns(1), 1_577_836_801_000_000_000);
    // 2106 is the limit of the 32-bit seconds; the sum still fits.
    let e = Epoch {
        sec: u32::MAX,
        nsec: 999_999_999,
    };
    assert_eq!(
        e.wall_ns(0),
        u64::from(u32::MAX) * 1_000_000_000 + 999_999_999
    );
}
