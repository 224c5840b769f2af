// SPDX-License-Identifier: GPL-2.0

//! Shared helpers of the pvclock host tests.

#![allow(dead_code)]

use pvclock::abi::{Body, LastValue, SharedRecord, SharedWallClock, Versioned};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Exact reference of `pvclock_scale_delta()` in `u128`: shift (bits shifted out of 64 are
/// lost, as in C), multiply, keep bits 95..32.
pub fn ref_scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let d: u128 = if shift >= 0 {
        let s = u32::try_from(shift).unwrap();
        if s >= 64 {
            0
        } else {
            (u128::from(delta) << s) & u128::from(u64::MAX)
        }
    } else {
        let s = u32::from(shift.unsigned_abs());
        if s >= 64 {
            0
        } else {
            u128::from(delta) >> s
        }
    };
    let r = (d * u128::from(mul)) >> 32;
    assert!(
        r <= u128::from(u64::MAX),
        "scaled value does not fit in 64 bits"
    );
    u64::try_from(r).unwrap()
}

/// The 32-bit limb algorithm of the i386 `pvclock_scale_delta()` (two 32x32 multiplications and
/// an add with carry), an independent way to the same result.
pub fn limb_scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta
            .checked_shl(u32::from(shift.unsigned_abs()))
            .unwrap_or(0)
    } else {
        delta
            .checked_shr(u32::from(shift.unsigned_abs()))
            .unwrap_or(0)
    };
    let lo = d & 0xffff_ffff;
    let hi = d >> 32;
    ((lo * u64::from(mul)) >> 32) + hi * u64::from(mul)
}

/// Port of KVM's `kvm_get_time_scale()` (arch/x86/kvm/x86.c): mul and shift such that
/// `ns = scale_delta(tsc_delta, mul, shift)` for a TSC of `base_hz`.
pub fn kvm_time_scale(scaled_hz: u64, base_hz: u64) -> (u32, i8) {
    let mut tps64 = base_hz;
    let mut scaled64 = scaled_hz;
    let mut shift: i32 = 0;
    while tps64 > scaled64 * 2 || tps64 & 0xffff_ffff_0000_0000 != 0 {
        tps64 >>= 1;
        shift -= 1;
    }
    let mut tps32 = u32::try_from(tps64).unwrap();
    while u64::from(tps32) <= scaled64 || scaled64 & 0xffff_ffff_0000_0000 != 0 {
        if scaled64 & 0xffff_ffff_0000_0000 != 0 || tps32 & 0x8000_0000 != 0 {
            scaled64 >>= 1;
        } else {
            tps32 <<= 1;
        }
        shift += 1;
    }
    let mul = u32::try_from((scaled64 << 32) / u64::from(tps32)).unwrap();
    (mul, i8::try_from(shift).unwrap())
}

/// A record whose version loads follow a script (the last value repeats), with fixed contents
/// `data`: a [`Body`] for a time record, `(sec, nsec)` for a wall clock.
pub struct Scripted<T = Body> {
    versions: RefCell<VecDeque<u32>>,
    last: Cell<u32>,
    pub data: T,
    pub version_loads: Cell<u32>,
}

impl<T> Scripted<T> {
    pub fn new(versions: &[u32], data: T) -> Self {
        Self {
            versions: RefCell::new(versions.iter().copied().collect()),
            last: Cell::new(versions.last().copied().unwrap_or(0)),
            data,
            version_loads: Cell::new(0),
        }
    }
}

impl<T> Versioned for Scripted<T> {
    fn load_version(&self) -> u32 {
        self.version_loads.set(self.version_loads.get() + 1);
        self.versions
            .borrow_mut()
            .pop_front()
            .unwrap_or(self.last.get())
    }
    fn read_barrier(&self) {}
}

impl SharedRecord for Scripted<Body> {
    fn load_body(&self) -> Body {
        self.data
    }
}

impl SharedWallClock for Scripted<(u32, u32)> {
    fn load_time(&self) -> (u32, u32) {
        self.data
    }
}

/// A record in memory written concurrently with the host's protocol (version odd, body,
/// version even), with the fields as atomics.
#[derive(Default)]
pub struct LiveRecord {
    pub version: AtomicU32,
    pub tsc_timestamp: AtomicU64,
    pub system_time: AtomicU64,
    pub word24: AtomicU64,
}

impl LiveRecord {
    /// Writes `body` like `kvm_setup_guest_pvclock()`: version = (version + 1) | 1, body,
    /// version + 1.
    pub fn host_write(&self, body: &Body) {
        let v = (self.version.load(Ordering::Relaxed).wrapping_add(1)) | 1;
        self.version.store(v, Ordering::Relaxed);
        fence(Ordering::Release);
        self.tsc_timestamp
            .store(body.tsc_timestamp, Ordering::Relaxed);
        self.system_time.store(body.system_time, Ordering::Relaxed);
        let mut w = [0u8; 8];
        w[0..4].copy_from_slice(&body.mul.to_le_bytes());
        w[4] = body.shift.to_le_bytes()[0];
        w[5] = body.flags;
        self.word24.store(u64::from_le_bytes(w), Ordering::Relaxed);
        fence(Ordering::Release);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
    }
}

impl Versioned for LiveRecord {
    fn load_version(&self) -> u32 {
        self.version.load(Ordering::Acquire)
    }
    fn read_barrier(&self) {
        fence(Ordering::Acquire);
    }
}

impl SharedRecord for LiveRecord {
    fn load_body(&self) -> Body {
        Body::from_words(
            self.tsc_timestamp.load(Ordering::Relaxed),
            self.system_time.load(Ordering::Relaxed),
            self.word24.load(Ordering::Relaxed),
        )
    }
}

/// `last_value` on a host atomic.
#[derive(Default)]
pub struct Last(pub AtomicU64);

impl LastValue for Last {
    fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Relaxed)
    }
}

/// A valid body for a TSC of `hz` with `system_time` at `tsc_timestamp`.
pub fn body_for(hz: u64, tsc_timestamp: u64, system_time: u64, flags: u8) -> Body {
    let (mul, shift) = kvm_time_scale(1_000_000_000, hz);
    Body {
        tsc_timestamp,
        system_time,
        mul,
        shift,
        flags,
    }
}
