// SPDX-License-Identifier: GPL-2.0

//! The `kvm-clock-rs` clocksource: KVM's paravirtual clock, per CPU.
//!
//! Each possible CPU gets a `struct pvclock_vcpu_time_info` in memory shared with the host,
//! registered on the CPU itself through `MSR_KVM_SYSTEM_TIME_NEW` (or the legacy
//! `MSR_KVM_SYSTEM_TIME` when the host only has `KVM_FEATURE_CLOCKSOURCE`) when the CPU comes
//! online, and unregistered when it goes offline or the module unloads. Reading the clock scales
//! the TSC with the current CPU's record ([`kernel::pvclock`]); the record's `TSC_STABLE` flag is
//! trusted only when CPUID has `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`, otherwise every value goes
//! through a global monotonic clamp. A record the host never wrote or wrote with garbage
//! (version 0, multiplier 0) is refused at registration and, if it turns bad later, replaced by
//! the reference record captured at load, so the clock keeps running.
//!
//! Teardown order (the field order of [`KvmClock`]): sysfs and debugfs files, then the
//! clocksource (no more reads through timekeeping), then the `hv_clock_per_cpu` hook, then the
//! hotplug state (the MSR is 0 on every CPU), and only then the records.

use core::{
    fmt,
    hint::black_box, //
};
use kernel::{
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    cpuhp, debugfs,
    kvm_para::{
        msr::{
            self as kvm_msr,
            OneShotMsr,
            PerCpuMsr, //
        },
        shared::{
            with_record,
            PerCpu, //
        },
        Feature,
        Features, //
    },
    local::Local64,
    new_spinlock,
    percpu::PerCpuBox,
    preempt::{
        self,
        ThisCpu, //
    },
    prelude::*,
    pvclock::{
        self,
        abi::{
            self,
            Epoch,
            MsrPair, //
        },
        Body,
        Known,
        LastValue,
        PausedHook,
        Source,
        VcpuTimeInfo,
        WallClock, //
    },
    str::CString,
    sync::{
        atomic::{
            Atomic,
            AtomicFlag,
            Relaxed, //
        },
        Arc,
        SetOnce,
        SpinLock, //
    },
    sysfs::{
        self,
        Attribute, //
    },
    time::{
        clocksource,
        Instant,
        Monotonic, //
    },
    tsc,
};

/// Name of the clocksource.
const NAME: &CStr = c"kvm-clock-rs";

/// Clock reads per phase of one run of the warp test.
const WARP_READS: u32 = 1_000_000;

/// Calls per run of a benchmark.
const BENCH_CALLS: u32 = 100_000;

/// Interval between two log lines about the same CPU's unusable record.
const FALLBACK_LOG_NS: u64 = 10 * abi::NSEC_PER_SEC;

/// Statistics and read state of one CPU, in its per-CPU area.
///
/// Only this CPU updates them (with preemption disabled, or in its hotplug callbacks); the
/// counters of the read path are [`Local64`], which need no `LOCK`ed instruction for that.
struct CpuStats {
    /// Clock reads on this CPU.
    reads: Local64,
    /// Version-loop retries (the host was updating the record).
    retries: Local64,
    /// Reads the monotonic clamp moved forward.
    clamps: Local64,
    /// Reads served from the reference record because this CPU's record was unusable.
    fallbacks: Local64,
    /// Clock value (ns, at least 1) when an unusable record was last logged, 0 for never.
    fallback_logged: Atomic<u64>,
    /// `PVCLOCK_GUEST_STOPPED` events seen in this CPU's record.
    guest_stopped: Local64,
    /// The record version the last full read found usable and trusted stable
    /// ([`abi::Reading::known_version`]), [`abi::NO_KNOWN_VERSION`] if none.
    known_version: Local64,
    /// Version of the record in which the last `GUEST_STOPPED` was counted.
    stopped_version: Atomic<u32>,
    /// Successful registrations of this CPU's record with the host.
    registrations: Atomic<u64>,
    /// Registrations refused because the host wrote an unusable record.
    invalid: Atomic<u64>,
}

/// What [`Clock::stats`] shows for a CPU that is not possible: nothing ever updates it.
static NO_STATS: CpuStats = CpuStats::new();

impl CpuStats {
    const fn new() -> Self {
        Self {
            reads: Local64::new(0),
            retries: Local64::new(0),
            clamps: Local64::new(0),
            fallbacks: Local64::new(0),
            fallback_logged: Atomic::new(0),
            guest_stopped: Local64::new(0),
            known_version: Local64::new(abi::NO_KNOWN_VERSION),
            stopped_version: Atomic::new(0),
            registrations: Atomic::new(0),
            invalid: Atomic::new(0),
        }
    }
}

/// State of the cross-CPU warp test.
struct Warp {
    /// The last value read by any CPU under the lock.
    last: u64,
}

/// The clock: records, policy and statistics shared by the clocksource, the hotplug callbacks,
/// sysfs and debugfs.
#[pin_data]
pub(crate) struct Clock {
    records: Arc<PerCpu<VcpuTimeInfo>>,
    pair: MsrPair,
    /// CPUID has `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`: a record's `TSC_STABLE` can be trusted.
    trust_stable: bool,
    /// A record that was valid at registration, for CPUs whose own record is unusable.
    reference: SetOnce<Body>,
    last: LastValue,
    /// Set while the module loads: an unusable record then fails the load.
    loading: AtomicFlag,
    stats: PerCpuBox<CpuStats>,
    rating: i32,
    epoch: Option<Epoch>,
    /// Origin of the `ktime_get()` values the debugfs files print.
    base: Instant<Monotonic>,
    #[pin]
    warp: SpinLock<Warp>,
}

impl Clock {
    /// Returns the statistics of `cpu`.
    #[inline]
    fn stats(&self, cpu: CpuId) -> &CpuStats {
        self.stats.get(cpu).unwrap_or(&NO_STATS)
    }

    /// Returns the statistics of the current CPU, for updates.
    #[inline(always)]
    fn this_stats<'a>(&'a self, cpu: ThisCpu<'a>) -> &'a CpuStats {
        self.stats.this_cpu(cpu)
    }

    /// Reads the clock in nanoseconds on the current CPU.
    ///
    /// The common case is a record whose version an earlier read on this CPU checked
    /// ([`pvclock::read_known`]); everything else (a new version, retries, the clamp, the
    /// fallback, `GUEST_STOPPED`) is in [`Clock::read_full`].
    #[inline]
    pub(crate) fn read(&self) -> u64 {
        let guard = preempt::disable();
        let cpu = guard.this_cpu();
        let s = self.this_stats(cpu);
        let record = self.records.this_slot(cpu);
        s.reads.inc();
        let torn = match pvclock::read_known(&record, || s.known_version.get()) {
            Known::Ns(ns) => return ns,
            Known::Torn => true,
            Known::Unknown => false,
        };
        self.read_full(&guard, torn)
    }

    /// The full read: a new version, version retries, the monotonic clamp, the fallback and
    /// `GUEST_STOPPED`. `torn` tells that the first attempt in [`Clock::read`] saw an update.
    ///
    /// Takes the preemption guard rather than the CPU, so that the common case never needs the
    /// CPU number.
    #[inline(never)]
    fn read_full(&self, guard: &preempt::Guard, torn: bool) -> u64 {
        let cpu = guard.this_cpu();
        let s = self.this_stats(cpu);
        let r = pvclock::read(
            &self.records.this_slot(cpu),
            || self.reference.as_ref().copied().unwrap_or_default(),
            &self.last,
            self.trust_stable,
        );
        s.known_version.set(r.known_version());
        let retries = u64::from(r.retries) + u64::from(torn);
        if retries != 0 {
            s.retries.add(retries);
        }
        if r.clamped {
            s.clamps.inc();
        }
        if let Source::Fallback(why) = r.source {
            s.fallbacks.inc();
            self.log_fallback(cpu, s, why, r.ns);
        }
        if r.flags & abi::GUEST_STOPPED != 0 {
            // Count each stop once (the host rewrites the record, with a new version, to set
            // the flag). The flag itself is left for `kvm_check_and_clear_guest_paused()`, which
            // touches every watchdog; tell the one watchdog a module can reach.
            if s.stopped_version.xchg(r.version, Relaxed) != r.version {
                s.guest_stopped.inc();
                pvclock::touch_hung_task_detector();
            }
        }
        r.ns
    }

    /// Logs, at most every [`FALLBACK_LOG_NS`] per CPU, that a registered record became unusable.
    ///
    /// Runs in the read path, in any context: it prints with `printk_deferred()`. Reads on a CPU
    /// whose record is not registered (a CPU coming online, before its hotplug callback) are the
    /// expected bring-up window and are only counted.
    #[cold]
    fn log_fallback(&self, cpu: ThisCpu<'_>, s: &CpuStats, why: abi::SnapshotError, ns: u64) {
        if !self.records.is_enabled(cpu.id()) {
            return;
        }
        let last = s.fallback_logged.load(Relaxed);
        if last != 0 && ns.wrapping_sub(last) < FALLBACK_LOG_NS {
            return;
        }
        s.fallback_logged.store(ns.max(1), Relaxed);
        kernel::pr_warn_deferred!(
            "kvm-clock-rs: CPU{}: the host's pvclock record became unusable ({:?}); reading the reference record ({} reads so far)\n",
            cpu.id().as_u32(),
            why,
            s.fallbacks.get()
        );
    }

    /// Sums a statistic over all CPUs.
    fn total(&self, f: impl Fn(&CpuStats) -> u64) -> u64 {
        self.stats
            .iter()
            .map(|(_, s)| f(s))
            .fold(0, u64::wrapping_add)
    }

    /// Returns the record of `cpu` as it is now, or why it cannot be used.
    fn snapshot(&self, cpu: CpuId) -> Result<abi::Snapshot, abi::SnapshotError> {
        abi::snapshot(&self.records.slot(cpu), || 0, abi::MAX_RETRIES).map_err(|(e, _)| e)
    }

    /// Runs the warp test on the current CPU (see `Documentation/virt/kvm_guest_rs/`).
    fn warp_test(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpu = CpuId::current();
        let clamps0 = self.stats(cpu).clamps.get();
        let fallbacks0 = self.stats(cpu).fallbacks.get();
        let (mut warps, mut max_warp) = (0u64, 0u64);
        for _ in 0..WARP_READS {
            let mut w = self.warp.lock();
            let t = self.read();
            if t < w.last {
                warps += 1;
                max_warp = max_warp.max(w.last - t);
            }
            w.last = t;
        }
        let mut local_warps = 0u64;
        let mut prev = 0u64;
        for _ in 0..WARP_READS {
            let t = self.read();
            if t < prev {
                local_warps += 1;
            }
            prev = t;
        }
        let s = self.stats(cpu);
        writeln!(
            f,
            "cpu {} reads {} warps {} max_warp_ns {} local_warps {} clamps {} fallbacks {}",
            cpu.as_u32(),
            2 * u64::from(WARP_READS),
            warps,
            max_warp,
            local_warps,
            s.clamps.get().wrapping_sub(clamps0),
            s.fallbacks.get().wrapping_sub(fallbacks0)
        )
    }
}

/// The clocksource callbacks.
struct ClockOps(Arc<Clock>);

#[vtable]
impl clocksource::Operations for ClockOps {
    const NAME: &'static CStr = NAME;

    #[inline]
    fn read(&self) -> u64 {
        self.0.read()
    }
}

/// The CPU hotplug callbacks: register and unregister each CPU's record.
struct Hotplug(Arc<Clock>);

#[vtable]
impl cpuhp::Operations for Hotplug {
    const NAME: &'static CStr = c"kvm_guest_rs/kvmclock:online";

    fn online(&self, cpu: ThisCpu<'_>) -> Result {
        let c = &self.0;
        let s = c.this_stats(cpu);
        // Whatever the host writes now is checked again by a full read.
        s.known_version.set(abi::NO_KNOWN_VERSION);
        c.records.enable(cpu).inspect_err(|e| {
            pr_warn!(
                "kvm-clock-rs: CPU{}: MSR {:#x} refused ({})\n",
                cpu.id().as_u32(),
                c.records.msr().number(),
                e.to_errno()
            );
        })?;
        s.registrations.add(1, Relaxed);
        // The host fills the record while it handles the MSR write.
        match c.snapshot(cpu.id()) {
            Ok(snap) => {
                c.reference.populate(snap.body);
                Ok(())
            }
            Err(why) => {
                s.invalid.add(1, Relaxed);
                // Stop the host writing garbage; reads on this CPU use the reference record.
                let _ = c.records.disable(cpu);
                let loading = c.loading.load(Relaxed);
                pr_warn!(
                    "kvm-clock-rs: CPU{}: the host wrote an unusable pvclock record ({:?}); {}\n",
                    cpu.id().as_u32(),
                    why,
                    if loading {
                        "refusing to load"
                    } else {
                        "this CPU reads the reference record"
                    }
                );
                if loading {
                    Err(EIO)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn offline(&self, cpu: ThisCpu<'_>) {
        self.0
            .this_stats(cpu)
            .known_version
            .set(abi::NO_KNOWN_VERSION);
        if let Err(e) = self.0.records.disable(cpu) {
            pr_warn!(
                "kvm-clock-rs: CPU{}: cannot reset MSR {:#x} ({})\n",
                cpu.id().as_u32(),
                self.0.records.msr().number(),
                e.to_errno()
            );
        }
    }
}

/// One CPU's view of the clock, for its sysfs directory.
struct CpuView {
    clock: Arc<Clock>,
    cpu: CpuId,
}

impl CpuView {
    fn stats(&self) -> &CpuStats {
        self.clock.stats(self.cpu)
    }
}

/// Files of `/sys/kernel/kvm_guest_rs/kvmclock/`.
static ATTRS: [Attribute<Clock>; 13] = [
    Attribute::new(c"reads", |c, f| {
        writeln!(f, "{}", c.total(|s| s.reads.get()))
    }),
    Attribute::new(c"retries", |c, f| {
        writeln!(f, "{}", c.total(|s| s.retries.get()))
    }),
    Attribute::new(c"clamps", |c, f| {
        writeln!(f, "{}", c.total(|s| s.clamps.get()))
    }),
    Attribute::new(c"fallbacks", |c, f| {
        writeln!(f, "{}", c.total(|s| s.fallbacks.get()))
    }),
    Attribute::new(c"guest_stopped", |c, f| {
        writeln!(f, "{}", c.total(|s| s.guest_stopped.get()))
    }),
    Attribute::new(c"registrations", |c, f| {
        writeln!(f, "{}", c.total(|s| s.registrations.load(Relaxed)))
    }),
    Attribute::new(c"invalid_records", |c, f| {
        writeln!(f, "{}", c.total(|s| s.invalid.load(Relaxed)))
    }),
    Attribute::new(c"stable_trusted", |c, f| {
        writeln!(f, "{}", u8::from(c.trust_stable))
    }),
    Attribute::new(c"rating", |c, f| writeln!(f, "{}", c.rating)),
    Attribute::new(c"msr", |c, f| {
        writeln!(f, "{:#x}", c.records.msr().number())
    }),
    Attribute::new(c"legacy_msrs", |c, f| {
        writeln!(f, "{}", u8::from(c.pair == MsrPair::Legacy))
    }),
    Attribute::new(c"wall_clock_epoch", |c, f| match c.epoch {
        Some(e) => writeln!(f, "{}.{:09}", e.sec, e.nsec),
        None => writeln!(f, "unavailable"),
    }),
    Attribute::new(c"wall_clock", |c, f| match c.epoch {
        Some(e) => {
            let ns = e.wall_ns(c.read());
            writeln!(
                f,
                "{}.{:09}",
                ns / abi::NSEC_PER_SEC,
                ns % abi::NSEC_PER_SEC
            )
        }
        None => writeln!(f, "unavailable"),
    }),
];

/// Files of `/sys/kernel/kvm_guest_rs/kvmclock/cpuN/`.
static CPU_ATTRS: [Attribute<CpuView>; 10] = [
    Attribute::new(c"reads", |v, f| writeln!(f, "{}", v.stats().reads.get())),
    Attribute::new(c"retries", |v, f| {
        writeln!(f, "{}", v.stats().retries.get())
    }),
    Attribute::new(c"clamps", |v, f| writeln!(f, "{}", v.stats().clamps.get())),
    Attribute::new(c"fallbacks", |v, f| {
        writeln!(f, "{}", v.stats().fallbacks.get())
    }),
    Attribute::new(c"guest_stopped", |v, f| {
        writeln!(f, "{}", v.stats().guest_stopped.get())
    }),
    Attribute::new(c"registrations", |v, f| {
        writeln!(f, "{}", v.stats().registrations.load(Relaxed))
    }),
    Attribute::new(c"invalid_records", |v, f| {
        writeln!(f, "{}", v.stats().invalid.load(Relaxed))
    }),
    Attribute::new(c"enabled", |v, f| {
        writeln!(f, "{}", u8::from(v.clock.records.is_enabled(v.cpu)))
    }),
    // A physical address: root only, as `kptr_restrict` would have it.
    Attribute::with_mode(c"msr_value", 0o400, |v, f| {
        writeln!(f, "{:#x}", v.clock.records.msr_value(v.cpu))
    }),
    Attribute::new(c"stable", |v, f| match v.clock.snapshot(v.cpu) {
        Ok(s) => writeln!(f, "{}", u8::from(s.body.flags & abi::TSC_STABLE_BIT != 0)),
        Err(_) => writeln!(f, "-"),
    }),
];

/// Runs `calls` calls of `f` and prints the elapsed `ktime_get()` time.
fn bench(f: &mut fmt::Formatter<'_>, mut op: impl FnMut() -> u64) -> fmt::Result {
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
fn ktime_ns(base: Instant<Monotonic>) -> u64 {
    u64::try_from((Instant::<Monotonic>::now() - base).as_nanos()).unwrap_or(0)
}

/// The warp test of [`Clock::warp_test`] on `ktime_get()` instead of the raw clock, for any
/// current clocksource.
#[pin_data]
pub(crate) struct KtimeWarp {
    base: Instant<Monotonic>,
    #[pin]
    last: SpinLock<u64>,
}

impl KtimeWarp {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            base: Instant::<Monotonic>::now(),
            last <- new_spinlock!(0),
        })
    }

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
    _ktime_bench: Pin<KBox<debugfs::File<()>>>,
    _ktime_warp: Pin<KBox<debugfs::File<KtimeWarp>>>,
    _publish_stress: Pin<KBox<debugfs::File<()>>>,
}

impl Bench {
    /// Creates `ktime_bench` (time `BENCH_CALLS` calls of `ktime_get()`), `ktime_warp` and
    /// `publish_stress` (see [`crate::stress`]).
    pub(crate) fn new(dir: &debugfs::Dir) -> Result<Self> {
        Ok(Self {
            _ktime_bench: KBox::pin_init(
                dir.read_callback_file(c"ktime_bench", (), &|(), f| {
                    // One `ktime_get()` per call.
                    let base = Instant::<Monotonic>::now();
                    bench(f, || {
                        u64::try_from((Instant::<Monotonic>::now() - base).as_nanos()).unwrap_or(0)
                    })
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
        })
    }
}

/// The kvmclock feature, registered; dropping it tears everything down in field order.
pub(crate) struct KvmClock {
    _cpu_groups: KVec<sysfs::Group<CpuView>>,
    _group: sysfs::Group<Clock>,
    _debugfs: KVec<Pin<KBox<debugfs::File<Arc<Clock>>>>>,
    _clocksource: clocksource::Registration<ClockOps>,
    _paused: Option<PausedHook>,
    _hotplug: Pin<KBox<cpuhp::Registration<Hotplug>>>,
    clock: Arc<Clock>,
}

/// Why the feature is not started.
pub(crate) enum Skip {
    /// The host offers neither MSR pair.
    Unsupported,
    /// The in-tree `kvm-clock` runs (the kernel was booted without `no-kvmclock`).
    InTree,
}

impl KvmClock {
    /// Checks whether kvmclock can be used with the host `features`.
    pub(crate) fn check(features: Features) -> Result<core::result::Result<MsrPair, Skip>> {
        let Some(pair) = abi::msr_pair(
            features.has(Feature::CLOCKSOURCE2),
            features.has(Feature::CLOCKSOURCE),
        ) else {
            return Ok(Err(Skip::Unsupported));
        };
        if PausedHook::in_use() {
            return Ok(Err(Skip::InTree));
        }
        let (system, _) = msrs(pair);
        let value = system.msr().read_safe().inspect_err(|_| {
            pr_err!(
                "kvm-clock-rs: the host advertises kvmclock but {} raises #GP\n",
                system.name()
            );
        })?;
        if value != 0 {
            // Firmware (SeaBIOS) registers a record and leaves it registered; the host would keep
            // writing memory the kernel now owns. Registering ours replaces it on this CPU.
            pr_info!(
                "kvm-clock-rs: {} was left enabled by the firmware; replacing it\n",
                system.name()
            );
        }
        Ok(Ok(pair))
    }

    /// Starts kvmclock with `pair`, `rating` and the sysfs directory `parent`.
    pub(crate) fn new(
        pair: MsrPair,
        features: Features,
        rating: i32,
        sysfs_parent: &sysfs::Dir,
        debugfs_parent: &debugfs::Dir,
    ) -> Result<Self> {
        let (system, wall) = msrs(pair);
        let trust_stable = features.has(Feature::CLOCKSOURCE_STABLE_BIT);

        let epoch = match with_record(wall, |w| abi::wall_clock(&w, abi::MAX_RETRIES))? {
            Ok(e) => Some(e),
            Err(e) => {
                pr_warn!(
                    "kvm-clock-rs: no wall clock from {} ({:?})\n",
                    wall.name(),
                    e
                );
                None
            }
        };

        let records = PerCpu::new(system).inspect_err(|e| {
            if *e == EBUSY {
                pr_err!("kvm-clock-rs: {} has another owner\n", system.name());
            }
        })?;
        let records = Arc::new(records, GFP_KERNEL)?;
        let stats = PerCpuBox::new(|_| CpuStats::new(), GFP_KERNEL)?;
        let clock_records = records.clone();
        let clock = Arc::pin_init(
            pin_init!(Clock {
                records: clock_records,
                pair,
                trust_stable,
                reference: SetOnce::new(),
                last: LastValue::new(),
                loading: AtomicFlag::new(true),
                stats,
                rating,
                epoch,
                base: Instant::<Monotonic>::now(),
                warp <- new_spinlock!(Warp { last: 0 }),
            }),
            GFP_KERNEL,
        )?;

        // Register every online CPU's record; an unusable record fails the load.
        let hotplug = KBox::pin_init(cpuhp::Registration::new(Hotplug(clock.clone())), GFP_KERNEL)
            .inspect_err(|e| {
                pr_err!(
                    "kvm-clock-rs: registering the CPUs failed ({})\n",
                    e.to_errno()
                )
            })?;
        clock.loading.store(false, Relaxed);

        let paused = match PausedHook::new(records.clone()) {
            Ok(h) => Some(h),
            Err(e) => {
                pr_warn!(
                    "kvm-clock-rs: GUEST_STOPPED stays unhandled: hv_clock_per_cpu unavailable ({})\n",
                    e.to_errno()
                );
                None
            }
        };

        let dir = sysfs_parent.subdir(c"kvmclock")?;
        let group = sysfs::Group::new(&dir, clock.clone(), &ATTRS)?;
        // CAST: `nr_cpu_ids()` fits in `usize`.
        let mut cpu_groups = KVec::with_capacity(nr_cpu_ids() as usize, GFP_KERNEL)?;
        for (cpu, _) in clock.stats.iter() {
            let name = CString::try_from_fmt(fmt!("cpu{}", cpu.as_u32()))?;
            let cpu_dir = dir.subdir(&name)?;
            let view = Arc::new(
                CpuView {
                    clock: clock.clone(),
                    cpu,
                },
                GFP_KERNEL,
            )?;
            cpu_groups.push(sysfs::Group::new(&cpu_dir, view, &CPU_ATTRS)?, GFP_KERNEL)?;
        }

        let ddir = debugfs_parent.subdir(c"kvmclock");
        let mut files = KVec::with_capacity(3, GFP_KERNEL)?;
        files.push(
            clock_file(&ddir, c"read", &clock, &|c, f| {
                // One read of each clock, back to back: kvm-clock-rs, then `ktime_get()`.
                let kvm = c.read();
                let mono = ktime_ns(c.base);
                writeln!(f, "{} {}", kvm, mono)
            })?,
            GFP_KERNEL,
        )?;
        files.push(
            clock_file(&ddir, c"warp", &clock, &|c, f| c.warp_test(f))?,
            GFP_KERNEL,
        )?;
        files.push(
            clock_file(&ddir, c"read_bench", &clock, &|c, f| bench(f, || c.read()))?,
            GFP_KERNEL,
        )?;

        let (mul, shift) = clock
            .reference
            .as_ref()
            .map(|b| (b.mul, b.shift))
            .unwrap_or_default();
        // Registered with timekeeping once the module is live (see `clocksource`), so a step of
        // the module's `init` that fails after this one frees nothing timekeeping uses.
        let cs = clocksource::Registration::new(
            ClockOps(clock.clone()),
            clocksource::Options {
                rating,
                hz: 1_000_000_000,
                bits: 64,
            },
        )?;
        pr_info!(
            "kvm-clock-rs: {}, TSC {} kHz (mul {:#x} shift {}), TSC_STABLE {}, rating {}\n",
            system.name(),
            abi::tsc_khz(mul, shift).unwrap_or(0),
            mul,
            shift,
            if trust_stable {
                "trusted"
            } else {
                "not trusted (monotonic clamp)"
            },
            rating
        );
        if let Some(e) = epoch {
            pr_info!(
                "kvm-clock-rs: wall clock at kvmclock 0: {}.{:09}\n",
                e.sec,
                e.nsec
            );
        }
        Ok(Self {
            _cpu_groups: cpu_groups,
            _group: group,
            _debugfs: files,
            _clocksource: cs,
            _paused: paused,
            _hotplug: hotplug,
            clock,
        })
    }
}

impl Drop for KvmClock {
    fn drop(&mut self) {
        let c = &self.clock;
        pr_info!(
            "kvm-clock-rs: unregistering after {} reads ({} clamped, {} from the reference record, {} retries, {} guest stops)\n",
            c.total(|s| s.reads.get()),
            c.total(|s| s.clamps.get()),
            c.total(|s| s.fallbacks.get()),
            c.total(|s| s.retries.get()),
            c.total(|s| s.guest_stopped.get())
        );
    }
}

/// Creates the debugfs file `name` in `dir`, showing `show` of the clock.
fn clock_file<F>(
    dir: &debugfs::Dir,
    name: &'static CStr,
    clock: &Arc<Clock>,
    show: &'static F,
) -> Result<Pin<KBox<debugfs::File<Arc<Clock>>>>>
where
    F: Fn(&Arc<Clock>, &mut fmt::Formatter<'_>) -> fmt::Result + Send + Sync,
{
    KBox::pin_init(
        dir.read_callback_file(name, clock.clone(), show),
        GFP_KERNEL,
    )
}

/// Returns the system-time and wall-clock MSRs of a pair.
fn msrs(
    pair: MsrPair,
) -> (
    &'static PerCpuMsr<VcpuTimeInfo>,
    &'static OneShotMsr<WallClock>,
) {
    match pair {
        MsrPair::New => (&kvm_msr::SYSTEM_TIME_NEW, &kvm_msr::WALL_CLOCK_NEW),
        MsrPair::Legacy => (&kvm_msr::SYSTEM_TIME, &kvm_msr::WALL_CLOCK),
    }
}

/// Chooses the rating: the `kvmclock_rating` parameter, or the in-tree driver's choice.
pub(crate) fn rating(param: i32) -> Result<i32> {
    let default = abi::default_rating(
        tsc::has_constant_rate(),
        tsc::has_nonstop(),
        tsc::is_unstable(),
    );
    abi::rating_from_param(param, default).ok_or_else(|| {
        pr_err!(
            "invalid kvmclock_rating={}: use 0 (automatic, {} here) or 1..={}\n",
            param,
            default,
            abi::RATING_MAX
        );
        EINVAL
    })
}
