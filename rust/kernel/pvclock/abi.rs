// SPDX-License-Identifier: GPL-2.0

//! pvclock ABI and the pure logic of a pvclock reader.
//!
//! Everything a kvmclock reader decides without touching hardware lives here: the record layouts,
//! the scaling of a TSC delta to nanoseconds, the version protocol against a record the host may
//! rewrite at any time (one loop, [`read_consistent`], for any versioned record), the global
//! monotonic clamp and the wall-clock arithmetic.
//!
//! This file is pure logic with no kernel dependency. It is compiled into the kernel crate as
//! `kernel::pvclock::abi` and, unchanged, into the host-side test crate (`tools/host/pvclock`),
//! where `cargo test` checks it against a `u128` reference, simulated records and concurrent
//! threads, including property tests. The kernel supplies the hardware through four small traits
//! ([`Versioned`], [`SharedRecord`], [`SharedWallClock`], [`LastValue`]) and a TSC reading
//! function.
//!
//! C headers: [`arch/x86/include/asm/pvclock-abi.h`](srctree/arch/x86/include/asm/pvclock-abi.h),
//! [`arch/x86/include/asm/pvclock.h`](srctree/arch/x86/include/asm/pvclock.h)
//!
//! Reference: <https://docs.kernel.org/virt/kvm/x86/msr.html>

use core::mem::{
    offset_of,
    size_of, //
};

/// `PVCLOCK_TSC_STABLE_BIT`: the host guarantees that the records of all vCPUs describe one
/// monotonic clock. Only meaningful when CPUID has `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`.
pub const TSC_STABLE_BIT: u8 = 1 << 0;

/// `PVCLOCK_GUEST_STOPPED`: the host stopped the guest (e.g. `KVM_KVMCLOCK_CTRL`); the guest
/// clears it after telling its watchdogs.
pub const GUEST_STOPPED: u8 = 1 << 1;

/// Smallest `tsc_shift` a reader accepts.
///
/// KVM's `kvm_get_time_scale()` produces shifts well inside `-32..=32` for any TSC frequency
/// between 1 Hz and 2^64 Hz; anything outside is garbage.
pub const MIN_SHIFT: i8 = -32;

/// Largest `tsc_shift` a reader accepts (see [`MIN_SHIFT`]).
pub const MAX_SHIFT: i8 = 32;

/// Alignment (and size) of the slot that holds one [`VcpuTimeInfo`].
///
/// Like `struct pvclock_vsyscall_time_info`, each record sits alone in a 64-byte slot, so a
/// record never shares a cache line with another vCPU's and never crosses a page: the host
/// silently ignores a record that crosses a page.
pub const SLOT_ALIGN: usize = 64;

/// Retries of the version loop after which a reader gives up on a record.
///
/// The host holds a record odd only for the few instructions of an update, so a record that is
/// odd or changing for this many consecutive reads is broken (e.g. an update that never ends).
pub const MAX_RETRIES: u32 = 1000;

/// Retries of the version loop on the reader's own record.
///
/// The host rewrites a vCPU's record only while that vCPU is outside the guest, and finishes
/// before it re-enters, so a reader on the owning CPU sees the version change only if a VM exit
/// with an update fell between its two version loads; it never sees an odd version. A few
/// consecutive failures therefore already mean a broken record.
pub const MAX_OWN_RETRIES: u32 = 16;

/// `struct pvclock_vcpu_time_info`: the per-vCPU time record the host writes.
///
/// The C struct is packed; its fields are naturally aligned, so this `repr(C)` struct has the
/// same layout (asserted below) with an alignment of 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Odd while the host updates the record.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// Guest TSC at the time of the update.
    pub tsc_timestamp: u64,
    /// Nanoseconds of the clock at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-nanoseconds multiplier, a 32.32 fixed-point fraction.
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before the multiplication (negative: right shift).
    pub tsc_shift: i8,
    /// [`TSC_STABLE_BIT`], [`GUEST_STOPPED`].
    pub flags: u8,
    /// Padding.
    pub pad: [u8; 2],
}

const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(offset_of!(VcpuTimeInfo, version) == 0);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_timestamp) == 8);
const _: () = assert!(offset_of!(VcpuTimeInfo, system_time) == 16);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_to_system_mul) == 24);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_shift) == 28);
const _: () = assert!(offset_of!(VcpuTimeInfo, flags) == 29);
const _: () = assert!(size_of::<VcpuTimeInfo>() <= SLOT_ALIGN);

/// `struct pvclock_wall_clock`: the wall-clock time at which the kvmclock read 0.
///
/// The host writes it once, while it handles the write of the wall-clock MSR.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// Odd while the host updates the record.
    pub version: u32,
    /// Seconds since the Unix epoch (32 bits: it overflows in 2106).
    pub sec: u32,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

const _: () = assert!(size_of::<WallClock>() == 12);
const _: () = assert!(offset_of!(WallClock, sec) == 4);
const _: () = assert!(offset_of!(WallClock, nsec) == 8);

/// The fields of a [`VcpuTimeInfo`] that a reader uses, read between two version checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// See [`VcpuTimeInfo::tsc_timestamp`].
    pub tsc_timestamp: u64,
    /// See [`VcpuTimeInfo::system_time`].
    pub system_time: u64,
    /// See [`VcpuTimeInfo::tsc_to_system_mul`].
    pub mul: u32,
    /// See [`VcpuTimeInfo::tsc_shift`].
    pub shift: i8,
    /// See [`VcpuTimeInfo::flags`].
    pub flags: u8,
}

impl Body {
    /// Extracts the body of a complete record.
    pub const fn of(r: &VcpuTimeInfo) -> Self {
        Self {
            tsc_timestamp: r.tsc_timestamp,
            system_time: r.system_time,
            mul: r.tsc_to_system_mul,
            shift: r.tsc_shift,
            flags: r.flags,
        }
    }

    /// Decodes the 64-bit word at offset 24 of a record (multiplier, shift, flags, padding).
    ///
    /// Readers load it as one word so that the three fields come from one load.
    #[inline]
    pub const fn from_words(tsc_timestamp: u64, system_time: u64, word24: u64) -> Self {
        let b = word24.to_le_bytes();
        Self {
            tsc_timestamp,
            system_time,
            mul: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            shift: i8::from_le_bytes([b[4]]),
            flags: b[5],
        }
    }

    /// Returns why the body cannot describe a clock, or `None` if it can.
    #[inline]
    pub fn invalid(&self) -> Option<Invalid> {
        if self.mul == 0 {
            Some(Invalid::MulZero)
        } else if self.shift < MIN_SHIFT || self.shift > MAX_SHIFT {
            Some(Invalid::Shift(self.shift))
        } else {
            None
        }
    }

    /// Converts a TSC value to nanoseconds with this body's parameters (see [`cycles_to_ns`]).
    #[inline]
    pub fn ns_at(&self, tsc: u64) -> u64 {
        cycles_to_ns(
            self.tsc_timestamp,
            self.system_time,
            self.mul,
            self.shift,
            tsc,
        )
    }
}

/// Scales a TSC delta to nanoseconds exactly like `pvclock_scale_delta()`.
///
/// The delta is shifted first (left for a positive `shift`, right for a negative one, bits
/// shifted out are lost as in C), then multiplied by the 32.32 fraction `mul` with a 96-bit
/// intermediate, keeping bits 95..32. The result always fits in 64 bits, so nothing is lost in
/// the multiplication.
///
/// Records pass [`Body::invalid`] before they are scaled, so `shift` is in
/// [`MIN_SHIFT`]`..=`[`MAX_SHIFT`]; for other shifts the amount is taken modulo 64, where C's
/// shift is undefined.
#[inline]
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    // CAST: `shift.wrapping_neg()` of a negative shift is its positive amount (-128 wraps to
    // itself and is masked like any amount of 64 or more).
    let d = if shift < 0 {
        delta.wrapping_shr(shift.wrapping_neg() as u32)
    } else {
        delta.wrapping_shl(shift as u32)
    };
    // CAST: `d * mul < 2^96`, so the product shifted right by 32 is below 2^64.
    ((u128::from(d) * u128::from(mul)) >> 32) as u64
}

/// Returns the clock value in nanoseconds at `tsc` for a record, like `__pvclock_read_cycles()`.
///
/// `tsc - tsc_timestamp` and the final addition wrap like the C `u64` arithmetic, so a TSC that
/// wrapped past 2^64 since the update still gives the right delta.
#[inline]
pub fn cycles_to_ns(tsc_timestamp: u64, system_time: u64, mul: u32, shift: i8, tsc: u64) -> u64 {
    system_time.wrapping_add(scale_delta(tsc.wrapping_sub(tsc_timestamp), mul, shift))
}

/// Returns the TSC frequency in kHz that `mul` and `shift` describe, like `pvclock_tsc_khz()`.
///
/// Returns `None` for a zero multiplier.
pub fn tsc_khz(mul: u32, shift: i8) -> Option<u64> {
    if mul == 0 {
        return None;
    }
    let khz = (1_000_000u64 << 32) / u64::from(mul);
    let amount = u32::from(shift.unsigned_abs());
    Some(if shift < 0 {
        khz.checked_shl(amount).unwrap_or(0)
    } else {
        khz.checked_shr(amount).unwrap_or(0)
    })
}

/// Why a record cannot describe a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// `tsc_to_system_mul` is 0: the clock would stand still.
    MulZero,
    /// `tsc_shift` is outside [`MIN_SHIFT`]`..=`[`MAX_SHIFT`].
    Shift(i8),
}

/// Why [`snapshot`] returned no consistent, usable record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The version is 0: the host never wrote the record (or it was cleared after disabling).
    Unwritten,
    /// The record is consistent but unusable.
    Invalid(Invalid),
    /// The version stayed odd or kept changing for more than the allowed retries.
    Busy {
        /// The last version seen.
        version: u32,
    },
}

/// A record the host guards with a version word: odd while the host updates the record,
/// changed by every update (the pvclock protocol, which the steal-time record follows too).
///
/// The kernel implements it on shared memory with single-copy-atomic loads; the host tests
/// implement it with scripted records.
pub trait Versioned {
    /// Loads the version with one untorn load.
    fn load_version(&self) -> u32;
    /// Keeps loads on either side from being reordered (`virt_rmb()`: a compiler barrier on
    /// x86, whose loads are not reordered with each other).
    fn read_barrier(&self);
}

/// One pass of the version protocol: what [`read_round`] loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round<T> {
    /// The version loaded before the fields.
    pub version: u32,
    /// What the reader loaded between the two version loads.
    pub value: T,
    /// The version loaded after the fields.
    pub again: u32,
}

impl<T> Round<T> {
    /// Returns `true` if `value` belongs to `version`: it was even (no update in progress) and
    /// unchanged across the read.
    #[inline(always)]
    pub fn is_consistent(&self) -> bool {
        self.version & 1 == 0 && self.again == self.version
    }
}

/// Loads the version, then (after a barrier) whatever `read` loads, then (after a barrier) the
/// version again: one pass of `pvclock_read_begin()`/`pvclock_read_retry()`.
#[inline(always)]
pub fn read_round<R: Versioned + ?Sized, T>(rec: &R, read: impl FnOnce(&R) -> T) -> Round<T> {
    let version = rec.load_version();
    rec.read_barrier();
    let value = read(rec);
    rec.read_barrier();
    let again = rec.load_version();
    Round {
        version,
        value,
        again,
    }
}

/// A consistent reading from [`read_consistent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consistent<T> {
    /// The even version `value` belongs to.
    pub version: u32,
    /// What the reader loaded.
    pub value: T,
    /// How many rounds were repeated because the version was odd or changed.
    pub retries: u32,
}

/// [`read_consistent`] gave up: the version stayed odd or kept changing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    /// The last version seen.
    pub version: u32,
    /// The rounds repeated (`max_retries`).
    pub retries: u32,
}

/// The version loop: repeats [`read_round`] until a round is consistent, at most
/// `max_retries` times more, instead of spinning forever on a host that never finishes an
/// update.
///
/// Every reader of a versioned record uses this loop (or, for a version it already knows, one
/// [`read_round`]).
#[inline]
pub fn read_consistent<R: Versioned + ?Sized, T>(
    rec: &R,
    max_retries: u32,
    mut read: impl FnMut(&R) -> T,
) -> Result<Consistent<T>, Busy> {
    let mut retries = 0;
    loop {
        let round = read_round(rec, &mut read);
        if round.is_consistent() {
            return Ok(Consistent {
                version: round.version,
                value: round.value,
                retries,
            });
        }
        if retries >= max_retries {
            return Err(Busy {
                version: round.again,
                retries,
            });
        }
        retries += 1;
    }
}

/// Access to a [`VcpuTimeInfo`] that the host may rewrite at any moment.
pub trait SharedRecord: Versioned {
    /// Loads the fields of the body, each with one untorn load.
    fn load_body(&self) -> Body;
}

/// A consistent reading of a record together with the TSC value read inside the version loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The even, non-zero version the body belongs to.
    pub version: u32,
    /// The body.
    pub body: Body,
    /// The TSC value, read after the first version load and before the body.
    pub tsc: u64,
    /// How many times the loop went round because the version was odd or changed.
    pub retries: u32,
}

impl Snapshot {
    /// Returns the clock value of this snapshot in nanoseconds.
    #[inline]
    pub fn ns(&self) -> u64 {
        self.body.ns_at(self.tsc)
    }
}

/// Reads a record with the pvclock version protocol, like `__pvclock_clocksource_read()`.
///
/// [`read_consistent`] with the TSC read through `read_tsc` before the body, so the TSC value
/// belongs to the body's version. After `max_retries` failed rounds it gives up with
/// [`SnapshotError::Busy`]. A consistent record with version 0 was never written
/// ([`SnapshotError::Unwritten`]); one with a zero multiplier or an impossible shift is rejected
/// with [`SnapshotError::Invalid`].
///
/// On error, the second value is the number of retries spent.
#[inline]
pub fn snapshot<R: SharedRecord + ?Sized>(
    rec: &R,
    mut read_tsc: impl FnMut() -> u64,
    max_retries: u32,
) -> Result<Snapshot, (SnapshotError, u32)> {
    let c = read_consistent(rec, max_retries, |r| (read_tsc(), r.load_body()))
        .map_err(|b| (SnapshotError::Busy { version: b.version }, b.retries))?;
    let (tsc, body) = c.value;
    if c.version == 0 {
        return Err((SnapshotError::Unwritten, c.retries));
    }
    if let Some(why) = body.invalid() {
        return Err((SnapshotError::Invalid(why), c.retries));
    }
    Ok(Snapshot {
        version: c.version,
        body,
        tsc,
        retries: c.retries,
    })
}

/// The global "last value returned" of a clock whose records are not trusted to be monotonic
/// across vCPUs (`last_value` in `arch/x86/kernel/pvclock.c`).
pub trait LastValue {
    /// Loads the current value.
    fn load(&self) -> u64;
    /// Stores `new` if the value is `current`; returns the previous value, as `Ok` if the store
    /// happened and as `Err` if it did not.
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64>;
}

/// The result of [`clamp_monotonic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clamped {
    /// The value to return: never below any value returned before.
    pub value: u64,
    /// `true` if the computed value was below the last value returned, i.e. the clamp moved it.
    pub clamped: bool,
}

/// Makes `ret` monotonic against all values returned before, like the `last_value` loop of
/// `__pvclock_clocksource_read()`.
///
/// If `ret` is not above the last value, the last value is returned; otherwise `ret` is
/// published with compare-and-exchange, retrying against a value another CPU published
/// meanwhile. Every returned value is therefore at least the largest value published before the
/// call.
#[inline]
pub fn clamp_monotonic<L: LastValue + ?Sized>(last: &L, ret: u64) -> Clamped {
    clamp_monotonic_from(last, last.load(), ret)
}

/// [`clamp_monotonic`] from a value of `last` loaded earlier, `seen`, e.g. before the reading
/// that produced `ret`, so that `clamped` means "below what was returned before the reading
/// began", not below a newer value another reader published meanwhile.
///
/// `seen` must be a value loaded from `last` (it is returned unpublished). If `ret` is not above
/// `seen`, `seen` is returned: it is at least every value returned before `seen` was loaded, so
/// a caller whose earlier reads happened before that load still never sees the clock go back.
#[inline]
pub fn clamp_monotonic_from<L: LastValue + ?Sized>(last: &L, seen: u64, ret: u64) -> Clamped {
    // `last` only grows, so a value loaded from it earlier is not above it.
    debug_assert!(seen <= last.load());
    let mut seen = seen;
    loop {
        if ret <= seen {
            return Clamped {
                value: seen,
                clamped: ret < seen,
            };
        }
        match last.compare_exchange(seen, ret) {
            Ok(_) => {
                return Clamped {
                    value: ret,
                    clamped: false,
                }
            }
            Err(now) => seen = now,
        }
    }
}

/// How a reading was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// From the reader's own record, trusted as stable (no clamp).
    Stable,
    /// From the reader's own record, through the monotonic clamp.
    Clamped,
    /// From the fallback body, because the own record could not be used.
    Fallback(SnapshotError),
}

/// One clock reading and how it was obtained, for the reader's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Nanoseconds.
    pub ns: u64,
    /// Version-loop retries spent on the own record.
    pub retries: u32,
    /// The flags of the own record (0 if it could not be read).
    pub flags: u8,
    /// The version of the own record the value comes from (0 if it could not be read).
    pub version: u32,
    /// `true` if the monotonic clamp moved the value.
    pub clamped: bool,
    /// Where the value came from.
    pub source: Source,
}

/// Reads the clock: the own record if usable, else `fallback`, made monotonic unless trusted.
///
/// - The own record is read with [`snapshot`], with at most [`MAX_OWN_RETRIES`] retries.
/// - Its value is returned as is only if `trust_stable` (CPUID has
///   `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`) and the record has [`TSC_STABLE_BIT`]; otherwise it goes
///   through [`clamp_monotonic`], like the C driver.
/// - If the own record is unwritten, invalid or busy, the value is computed from the body
///   `fallback` returns (one that was valid when it was captured; only called in this case)
///   with a fresh TSC, and always clamped: it may be older than what other CPUs see.
#[inline]
pub fn read<R: SharedRecord + ?Sized, L: LastValue + ?Sized>(
    own: &R,
    fallback: impl FnOnce() -> Body,
    mut read_tsc: impl FnMut() -> u64,
    last: &L,
    trust_stable: bool,
) -> Reading {
    match snapshot(own, &mut read_tsc, MAX_OWN_RETRIES) {
        Ok(s) => {
            let ns = s.ns();
            if trust_stable && s.body.flags & TSC_STABLE_BIT != 0 {
                return Reading {
                    ns,
                    retries: s.retries,
                    flags: s.body.flags,
                    version: s.version,
                    clamped: false,
                    source: Source::Stable,
                };
            }
            let c = clamp_monotonic(last, ns);
            Reading {
                ns: c.value,
                retries: s.retries,
                flags: s.body.flags,
                version: s.version,
                clamped: c.clamped,
                source: Source::Clamped,
            }
        }
        Err((why, retries)) => {
            let c = clamp_monotonic(last, fallback().ns_at(read_tsc()));
            Reading {
                ns: c.value,
                retries,
                flags: 0,
                version: 0,
                clamped: c.clamped,
                source: Source::Fallback(why),
            }
        }
    }
}

/// No known version: [`read_known`] never matches it (versions are `u32`).
pub const NO_KNOWN_VERSION: u64 = u64::MAX;

impl Reading {
    /// Returns the version a later [`read_known`] of the same record may trust, or
    /// [`NO_KNOWN_VERSION`].
    ///
    /// Only a value [`read`] returned as [`Source::Stable`] (trusted stable bit, valid record)
    /// from a record without [`GUEST_STOPPED`] qualifies: the host bumps the version with every
    /// write, so a record that still has this version still has this body.
    #[inline]
    pub fn known_version(&self) -> u64 {
        if self.source == Source::Stable && self.flags & GUEST_STOPPED == 0 {
            u64::from(self.version)
        } else {
            NO_KNOWN_VERSION
        }
    }
}

/// The outcome of [`read_known`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// The record still had the known version: its value in nanoseconds.
    Ns(u64),
    /// The host was updating the record, or updated it during the read (a version-loop retry).
    Torn,
    /// A consistent record with another version: [`read`] has to check it.
    Unknown,
}

/// Reads a record whose version [`read`] checked before, in one pass.
///
/// `known` must return [`Reading::known_version`] of an earlier [`read`] of the same record (or
/// [`NO_KNOWN_VERSION`]). If the record
/// still has that version, its body is the one that was checked (usable, `TSC_STABLE` trusted,
/// no `GUEST_STOPPED`), so the value needs no check: this is the whole read in the common case,
/// about as short as the C reader's. Any other outcome sends the caller to [`read`].
#[inline(always)]
pub fn read_known<R: SharedRecord + ?Sized>(
    rec: &R,
    known: impl FnOnce() -> u64,
    read_tsc: impl FnOnce() -> u64,
) -> Known {
    let r = read_round(rec, |r| (read_tsc(), r.load_body()));
    // `known` is never an odd `u32` (see `Reading::known_version()`), so a match also means
    // that no update was in progress.
    // `known` is loaded last: fewer registers live across the TSC read.
    if r.again == r.version && u64::from(r.version) == known() {
        let (tsc, body) = r.value;
        // The known version's body passed `Body::invalid()`.
        Known::Ns(body.ns_at(tsc))
    } else if !r.is_consistent() {
        Known::Torn
    } else {
        Known::Unknown
    }
}

/// Access to a [`WallClock`] record the host may be writing.
pub trait SharedWallClock: Versioned {
    /// Loads `sec` and `nsec`, each with one untorn load.
    fn load_time(&self) -> (u32, u32);
}

/// Why [`wall_clock`] returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallClockError {
    /// Version 0: the host did not write the record.
    Unwritten,
    /// `nsec` is not below 10^9.
    Invalid,
    /// The version stayed odd or kept changing.
    Busy,
}

/// The wall-clock time at which the kvmclock read 0 (the VM's epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// Seconds since the Unix epoch.
    pub sec: u32,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

impl Epoch {
    /// Returns the wall-clock time in nanoseconds since the Unix epoch when the kvmclock reads
    /// `kvmclock_ns`, like `pvclock_read_wallclock()` (which cannot overflow before 2554).
    pub fn wall_ns(&self, kvmclock_ns: u64) -> u64 {
        (u64::from(self.sec) * NSEC_PER_SEC)
            .wrapping_add(u64::from(self.nsec))
            .wrapping_add(kvmclock_ns)
    }
}

/// Nanoseconds per second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Reads a wall-clock record with the version protocol of `pvclock_read_wallclock()`
/// ([`read_consistent`]).
pub fn wall_clock<W: SharedWallClock + ?Sized>(
    w: &W,
    max_retries: u32,
) -> Result<Epoch, WallClockError> {
    let c = read_consistent(w, max_retries, |w| w.load_time()).map_err(|_| WallClockError::Busy)?;
    let (sec, nsec) = c.value;
    if c.version == 0 {
        return Err(WallClockError::Unwritten);
    }
    if u64::from(nsec) >= NSEC_PER_SEC {
        return Err(WallClockError::Invalid);
    }
    Ok(Epoch { sec, nsec })
}
