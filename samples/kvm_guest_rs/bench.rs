// SPDX-License-Identifier: GPL-2.0

//! The module's own debugfs files, which work with any current clocksource.
//!
//! In `/sys/kernel/debug/kvm_guest_rs/`:
//!
//! - `ktime_bench` times [`BENCH_CALLS`] calls of `ktime_get()`: `calls N ns T`.
//! - `ktime_warp` runs the cross-CPU warp test on `ktime_get()`.
//! - `steal_clock_bench` times [`BENCH_CALLS`] reads of the kernel's steal clock of the current
//!   CPU, whichever provider is installed (the in-tree one or this module's).
//! - `publish_stress` runs [`crate::stress`].
//!
//! [`time_calls`], [`ktime_ns`] and [`WARP_READS`] are shared with the kvmclock files.

use core::{
    fmt,
    hint::black_box, //
};
use kernel::{
    cpu::CpuId,
    debugfs, new_spinlock,
    prelude::*,
    steal_clock,
    sync::SpinLock,
    time::{
        Instant,
        Monotonic, //
    },
};

/// Clock reads per phase of one run of a warp test.
pub(crate) const WARP_READS: u32 = 1_000_000;

/// Calls per run of a benchmark.
const BENCH_CALLS: u32 = 100_000;

/// Runs [`BENCH_CALLS`] calls of `op` and prints the elapsed `ktime_get()` time.
pub(crate) fn time_calls(f: &mut fmt::Formatter<'_>, mut op: impl FnMut() -> u64) -> fmt::Result {
    let start = Instant::<Monotonic>::now();
    let mut acc = 0u64;
    for _ in 0..BENCH_CALLS {
        acc = acc.wrapping_add(black_box(op()));
    }
    let ns = start.elapsed().as_nanos();
    black_box(acc);
    writeln!(f, "calls {} ns {}", BENCH_CALLS, ns)
}

/// `ktime_get()` in nanoseconds since `base`.
#[inline]
pub(crate) fn ktime_ns(base: Instant<Monotonic>) -> u64 {
    u64::try_from((Instant::<Monotonic>::now() - base).as_nanos()).unwrap_or(0)
}

/// The warp test of the kvmclock files on `ktime_get()` instead of the raw clock, for any
/// current clocksource.
#[pin_data]
struct KtimeWarp {
    /// Origin of the values compared.
    base: Instant<Monotonic>,
    /// The last value read by any CPU under the lock.
    #[pin]
    last: SpinLock<u64>,
}

impl KtimeWarp {
    /// Creates the test state, with `ktime_get()` now as the origin.
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            base: Instant::<Monotonic>::now(),
            last <- new_spinlock!(0),
        })
    }

    /// Runs the test on the current CPU and prints its result line.
    fn run(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpu = CpuId::current();
        let (mut warps, mut max_warp) = (0u64, 0u64);
        for _ in 0..WARP_READS {
            let mut last = self.last.lock();
            let t = ktime_ns(self.base);
            if t < *last {
                warps += 1;
                max_warp = max_warp.max(*last - t);
            }
            *last = t;
        }
        writeln!(
            f,
            "cpu {} reads {} warps {} max_warp_ns {}",
            cpu.as_u32(),
            WARP_READS,
            warps,
            max_warp
        )
    }
}

/// `debugfs` files of the module that do not depend on kvmclock.
pub(crate) struct Bench {
    /// `ktime_bench`.
    _ktime_bench: Pin<KBox<debugfs::File<()>>>,
    /// `ktime_warp`.
    _ktime_warp: Pin<KBox<debugfs::File<KtimeWarp>>>,
    /// `publish_stress`.
    _publish_stress: Pin<KBox<debugfs::File<()>>>,
    /// `steal_clock_bench`.
    _steal_clock_bench: Pin<KBox<debugfs::File<()>>>,
}

impl Bench {
    /// Creates `ktime_bench`, `ktime_warp`, `publish_stress` and `steal_clock_bench` in `dir`.
    pub(crate) fn new(dir: &debugfs::Dir) -> Result<Self> {
        Ok(Self {
            _ktime_bench: KBox::pin_init(
                dir.read_callback_file(c"ktime_bench", (), &|(), f| {
                    // One `ktime_get()` per call.
                    let base = Instant::<Monotonic>::now();
                    time_calls(f, || ktime_ns(base))
                }),
                GFP_KERNEL,
            )?,
            _ktime_warp: KBox::pin_init(
                dir.read_callback_file(c"ktime_warp", KtimeWarp::new(), &|w, f| w.run(f)),
                GFP_KERNEL,
            )?,
            _publish_stress: KBox::pin_init(
                dir.read_callback_file(c"publish_stress", (), &|(), f| crate::stress::run(f)),
                GFP_KERNEL,
            )?,
            _steal_clock_bench: KBox::pin_init(
                dir.read_callback_file(c"steal_clock_bench", (), &|(), f| {
                    // The scheduler's read of the current CPU's steal time (`make compare` A and
                    // B), with the preemption guard the tick does not need.
                    time_calls(f, steal_clock::read)
                }),
                GFP_KERNEL,
            )?,
        })
    }
}
