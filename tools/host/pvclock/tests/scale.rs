// SPDX-License-Identifier: GPL-2.0

//! Scaling of TSC deltas: `scale_delta()` and `cycles_to_ns()` against a `u128` reference and
//! the i386 limb algorithm, for every shift in -32..=32, extreme multipliers and TSC wrap.

mod common;

use common::{kvm_time_scale, limb_scale, ref_scale};
use proptest::prelude::*;
use pvclock::abi::{cycles_to_ns, scale_delta, tsc_khz, Body, MAX_SHIFT, MIN_SHIFT};

const DELTAS: [u64; 10] = [
    0,
    1,
    2,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
    0x0123_4567_89ab_cdef,
];
const MULS: [u32; 7] = [0, 1, 2, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX];

#[test]
fn every_shift_and_extreme_mul_matches_reference() {
    for shift in MIN_SHIFT..=MAX_SHIFT {
        for &mul in &MULS {
            for &delta in &DELTAS {
                let got = scale_delta(delta, mul, shift);
                assert_eq!(
                    got,
                    ref_scale(delta, mul, shift),
                    "delta {delta:#x} mul {mul:#x} shift {shift}"
                );
                assert_eq!(
                    got,
                    limb_scale(delta, mul, shift),
                    "limb: delta {delta:#x} mul {mul:#x} shift {shift}"
                );
            }
        }
    }
}

/// Records with such shifts are rejected before scaling (`Body::invalid()`); the scaler still
/// computes something for them, without overflow or panic, and agrees with C where C is
/// defined (amounts below 64).
#[test]
fn shifts_outside_the_valid_range_never_panic() {
    for shift in i8::MIN..=i8::MAX {
        for &delta in &DELTAS {
            let got = scale_delta(delta, u32::MAX, shift);
            if shift.unsigned_abs() < 64 {
                assert_eq!(got, ref_scale(delta, u32::MAX, shift), "shift {shift}");
            }
        }
    }
}

#[test]
fn largest_product_keeps_all_64_bits() {
    // (2^64 - 1) * (2^32 - 1) >> 32 = 2^64 - 2^32 - 1 + carry: the top of the 96-bit product.
    assert_eq!(scale_delta(u64::MAX, u32::MAX, 0), 0xffff_fffe_ffff_ffff);
}

#[test]
fn one_ghz_is_exact() {
    // KVM's scale for a 1 GHz TSC is mul 2^31, shift 1: ns == cycles.
    let (mul, shift) = kvm_time_scale(1_000_000_000, 1_000_000_000);
    assert_eq!((mul, shift), (0x8000_0000, 1));
    for &d in &[0u64, 1, 999, 1 << 40, (1 << 63) - 1] {
        assert_eq!(scale_delta(d, mul, shift), d);
    }
}

#[test]
fn three_ghz_matches_kvm_example() {
    assert_eq!(
        kvm_time_scale(1_000_000_000, 3_000_000_000),
        (0xaaaa_aaaa, -1)
    );
}

#[test]
fn tsc_wrap_gives_the_delta_across_2_pow_64() {
    let body = Body {
        tsc_timestamp: u64::MAX - 9,
        system_time: 5_000,
        mul: 0x8000_0000,
        shift: 1,
        flags: 0,
    };
    // 10 cycles to wrap + 6 after it = 16 ns.
    assert_eq!(body.ns_at(6), 5_016);
    assert_eq!(cycles_to_ns(u64::MAX, 0, 0x8000_0000, 1, 0), 1);
}

#[test]
fn system_time_wraps_like_c() {
    assert_eq!(cycles_to_ns(0, u64::MAX, 0x8000_0000, 1, 2), 1);
}

#[test]
fn tsc_khz_inverts_the_scale() {
    for hz in [
        1_000_000u64,
        999_999_999,
        1_000_000_000,
        2_100_000_000,
        3_000_000_000,
        5_000_000_000,
    ] {
        let (mul, shift) = kvm_time_scale(1_000_000_000, hz);
        let khz = tsc_khz(mul, shift).unwrap();
        let want = hz / 1000;
        assert!(
            khz.abs_diff(want) <= want / 1_000_000 + 1,
            "{hz} Hz: got {khz} kHz"
        );
    }
    assert_eq!(tsc_khz(0, 1), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn scale_matches_u128_reference(delta: u64, mul: u32, shift in MIN_SHIFT..=MAX_SHIFT) {
        prop_assert_eq!(scale_delta(delta, mul, shift), ref_scale(delta, mul, shift));
        prop_assert_eq!(scale_delta(delta, mul, shift), limb_scale(delta, mul, shift));
    }

    #[test]
    fn cycles_to_ns_matches_reference_across_wrap(ts: u64, st: u64, tsc: u64, mul: u32, shift in MIN_SHIFT..=MAX_SHIFT) {
        let want = st.wrapping_add(ref_scale(tsc.wrapping_sub(ts), mul, shift));
        prop_assert_eq!(cycles_to_ns(ts, st, mul, shift, tsc), want);
    }

    #[test]
    fn realistic_scales_are_accurate(hz in 1_000_000u64..=10_000_000_000, cycles in 0u64..(1u64 << 50)) {
        // For real TSC frequencies the scaled value is within 1 ppm (+1 ns) of cycles * 10^9 / hz.
        let (mul, shift) = kvm_time_scale(1_000_000_000, hz);
        prop_assert!((MIN_SHIFT..=MAX_SHIFT).contains(&shift));
        let got = scale_delta(cycles, mul, shift);
        let exact = u64::try_from(u128::from(cycles) * 1_000_000_000 / u128::from(hz)).unwrap();
        prop_assert!(got.abs_diff(exact) <= exact / 1_000_000 + 1, "{} Hz: {} vs {}", hz, got, exact);
    }

    #[test]
    fn scale_is_monotonic_in_delta(a: u64, b: u64, mul: u32, shift in -32i8..=0) {
        // Without a left shift nothing wraps, so a larger delta never scales to less.
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(scale_delta(lo, mul, shift) <= scale_delta(hi, mul, shift));
    }

    #[test]
    fn word24_decoding_roundtrips(mul: u32, shift: i8, flags: u8, pad: u16) {
        let mut w = [0u8; 8];
        w[0..4].copy_from_slice(&mul.to_le_bytes());
        w[4] = shift.to_le_bytes()[0];
        w[5] = flags;
        w[6..8].copy_from_slice(&pad.to_le_bytes());
        let b = Body::from_words(1, 2, u64::from_le_bytes(w));
        prop_assert_eq!((b.mul, b.shift, b.flags, b.tsc_timestamp, b.system_time), (mul, shift, flags, 1, 2));
    }
}
