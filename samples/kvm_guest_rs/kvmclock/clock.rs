// SPDX-License-Identifier: GPL-2.0

//! The clock itself: per-CPU records and statistics, the read path, the clocksource and the CPU
//! hotplug callbacks.

use super::policy::MsrPair;
use kernel::{
    cpu::CpuId,
    cpuhp,
    kvm_para::shared::PerCpu,
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
            Epoch, //
        },
        Body,
        Known,
        LastValue,
        Source,
        VcpuTimeInfo, //
    },
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
    time::{
        clocksource,
        Instant,
        Monotonic, //
    },
};

/// Name of the clocksource.
const NAME: &CStr = c"kvm-clock-rs";

/// Interval between two log lines about the same CPU's unusable record.
const FALLBACK_LOG_NS: u64 = 10 * abi::NSEC_PER_SEC;

/// Statistics and read state of one CPU, in its per-CPU area.
///
/// Only this CPU updates them (with preemption disabled, or in its hotplug callbacks); the
/// counters of the read path are [`Local64`], which need no `LOCK`ed instruction for that.
pub(super) struct CpuStats {
    /// Clock reads on this CPU.
    pub(super) reads: Local64,
    /// Version-loop retries (the host was updating the record).
    pub(super) retries: Local64,
    /// Reads the monotonic clamp moved forward.
    pub(super) clamps: Local64,
    /// Reads served from another CPU's or the reference record because this CPU's record was
    /// unusable ([`Clock::fallback_body`]).
    pub(super) fallbacks: Local64,
    /// Clock value (ns, at least 1) when an unusable record was last logged, 0 for never.
    fallback_logged: Atomic<u64>,
    /// `PVCLOCK_GUEST_STOPPED` events seen in this CPU's record.
    pub(super) guest_stopped: Local64,
    /// The record version the last full read found usable and trusted stable
    /// ([`abi::Reading::known_version`]), [`abi::NO_KNOWN_VERSION`] if none.
    known_version: Local64,
    /// Version of the record in which the last `GUEST_STOPPED` was counted.
    stopped_version: Atomic<u32>,
    /// Successful registrations of this CPU's record with the host.
    pub(super) registrations: Atomic<u64>,
    /// Registrations refused because the host wrote an unusable record.
    pub(super) invalid: Atomic<u64>,
}

/// What [`Clock::stats`] shows for a CPU that is not possible: nothing ever updates it.
static NO_STATS: CpuStats = CpuStats::new();

impl CpuStats {
    /// Returns statistics with every counter at 0 and no known record version.
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
pub(super) struct Warp {
    /// The last value read by any CPU under the lock.
    pub(super) last: u64,
}

/// The clock: records, policy and statistics shared by the clocksource, the hotplug callbacks,
/// sysfs and debugfs.
#[pin_data]
pub(super) struct Clock {
    /// The per-CPU records, shared with the host.
    pub(super) records: Arc<PerCpu<VcpuTimeInfo>>,
    /// The MSR pair the records are registered with.
    pub(super) pair: MsrPair,
    /// CPUID has `KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`: a record's `TSC_STABLE` can be trusted.
    pub(super) trust_stable: bool,
    /// A record that was valid at registration, for CPUs whose own record is unusable.
    pub(super) reference: SetOnce<Body>,
    /// The global monotonic clamp.
    last: LastValue,
    /// Set while the module loads: an unusable record then fails the load.
    loading: AtomicFlag,
    /// Per-CPU statistics and read state.
    pub(super) stats: PerCpuBox<CpuStats>,
    /// Rating of the clocksource.
    pub(super) rating: i32,
    /// The wall-clock time at kvmclock 0, if the host gave one.
    pub(super) epoch: Option<Epoch>,
    /// Origin of the `ktime_get()` values the debugfs files print.
    pub(super) base: Instant<Monotonic>,
    /// State of the warp test of the debugfs file `warp`.
    #[pin]
    pub(super) warp: SpinLock<Warp>,
    /// The physical address of the kernel's vDSO pvclock page, if the records are in it.
    pub(super) vdso_page: Option<u64>,
    /// Set once the clocksource was given the vDSO clock mode.
    pub(super) vdso: AtomicFlag,
    /// Set by the read that takes CPU 0's record back from the vDSO ([`Clock::withdraw_vdso`]),
    /// so that one read does it.
    vdso_claimed: AtomicFlag,
    /// Set once CPU 0's record was taken back from the vDSO: unregistered for good.
    pub(super) vdso_withdrawn: AtomicFlag,
}

impl Clock {
    /// Allocates the clock for `records`, registered through the MSR pair `pair`.
    ///
    /// The clock starts in the loading state, in which an unusable record fails the hotplug
    /// callback (see [`Clock::loaded`]).
    pub(super) fn new(
        records: Arc<PerCpu<VcpuTimeInfo>>,
        pair: MsrPair,
        trust_stable: bool,
        rating: i32,
        epoch: Option<Epoch>,
        vdso_page: Option<u64>,
    ) -> Result<Arc<Self>> {
        let stats = PerCpuBox::new(|_| CpuStats::new(), GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                records,
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
                vdso_page,
                vdso: AtomicFlag::new(false),
                vdso_claimed: AtomicFlag::new(false),
                vdso_withdrawn: AtomicFlag::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// Ends the loading state: from now on a CPU whose record is unusable reads the reference
    /// record instead of failing.
    pub(super) fn loaded(&self) {
        self.loading.store(false, Relaxed);
    }

    /// Returns the statistics of `cpu`.
    #[inline]
    pub(super) fn stats(&self, cpu: CpuId) -> &CpuStats {
        self.stats.get(cpu).unwrap_or(&NO_STATS)
    }

    /// Sums a statistic over all CPUs.
    pub(super) fn total(&self, f: impl Fn(&CpuStats) -> u64) -> u64 {
        crate::counters::total(&self.stats, f)
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
    pub(super) fn read(&self) -> u64 {
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
            || self.fallback_body(cpu.id()),
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
            self.unusable(cpu, s, why, r.ns);
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

    /// Handles a registered record that became unusable: CPU 0's is taken back from the vDSO
    /// ([`Clock::withdraw_vdso`]), any other is logged at most every [`FALLBACK_LOG_NS`].
    ///
    /// Runs in the read path, in any context: it prints with `printk_deferred()`. Reads on a CPU
    /// whose record is not registered (a CPU coming online, before its hotplug callback, or CPU 0
    /// once withdrawn) are the expected bring-up window or the known state, and are only counted.
    #[cold]
    fn unusable(&self, cpu: ThisCpu<'_>, s: &CpuStats, why: abi::SnapshotError, ns: u64) {
        if !self.records.is_enabled(cpu.id()) {
            return;
        }
        if cpu.id().as_u32() == 0 && self.vdso.load(Relaxed) && !self.vdso_claimed.load(Relaxed) {
            self.withdraw_vdso(cpu, why);
            return;
        }
        let last = s.fallback_logged.load(Relaxed);
        if last != 0 && ns.wrapping_sub(last) < FALLBACK_LOG_NS {
            return;
        }
        s.fallback_logged.store(ns.max(1), Relaxed);
        kernel::pr_warn_deferred!(
            "kvm-clock-rs: CPU{}: the host's pvclock record became unusable ({:?}); reading another CPU's or the reference record ({} reads so far)\n",
            cpu.id().as_u32(),
            why,
            s.fallbacks.get()
        );
    }

    /// Takes CPU 0's record back from the host because it became unusable while user space reads
    /// it in the vDSO.
    ///
    /// The vDSO reads CPU 0's record (slot 0 of the kernel's page) on every CPU, and the kernel's
    /// `vread_pvclock()` loops for as long as its version stays odd with `PVCLOCK_TSC_STABLE_BIT`
    /// set: a host that never finishes an update would make every `clock_gettime()` in user space
    /// spin, and a zero multiplier would stop the user-space clock. Unregistering the record
    /// zeroes it (without tearing, for those readers too): with no stable bit, the vDSO makes the
    /// system call, and CPU 0's reads use [`Clock::fallback_body`]. CPU 0 stays unregistered
    /// until the module is loaded again, also across its hotplug callbacks.
    ///
    /// One read does it: it claims the withdrawal first, so that a read interrupting it (an
    /// interrupt, the MSR write's tracepoint reading the clock) does not start another. In NMI
    /// context the record cannot be unregistered: the claim is dropped and the next read does it.
    /// If the MSR write fails, the record stays registered and this is not tried again.
    #[cold]
    fn withdraw_vdso(&self, cpu: ThisCpu<'_>, why: abi::SnapshotError) {
        if self.vdso_claimed.cmpxchg(false, true, Relaxed).is_err() {
            return;
        }
        match self.records.disable(cpu) {
            // In NMI context: the next read does it.
            Err(e) if e == EPERM => self.vdso_claimed.store(false, Relaxed),
            Ok(()) => {
                self.vdso_withdrawn.store(true, Relaxed);
                kernel::pr_warn_deferred!(
                    "kvm-clock-rs: CPU0: the host's pvclock record became unusable ({:?}) while the vDSO reads it; unregistered it: clock_gettime() makes the system call\n",
                    why
                )
            }
            Err(e) => kernel::pr_warn_deferred!(
                "kvm-clock-rs: CPU0: the host's pvclock record became unusable ({:?}) while the vDSO reads it, and unregistering it failed ({})\n",
                why,
                e.to_errno()
            ),
        }
    }

    /// Returns the body a read on `me` computes its value from when its own record is unusable.
    ///
    /// With the host's stable bit trusted, that is the record of another CPU whose host keeps
    /// writing it with `PVCLOCK_TSC_STABLE_BIT`: with a stable TSC every CPU's record gives the
    /// same time (the vDSO relies on it, reading CPU 0's on every CPU), and a live record follows
    /// what the host changed since the load (a VM stop, a migration), which the reference record
    /// does not. Otherwise, or with no such CPU, the reference record captured at load. Remote
    /// records are only read (with the version protocol); they stay allocated while `self` lives.
    ///
    /// This runs in the read path for as long as the own record stays bad (for good on CPU 0
    /// once withdrawn), so each remote record gets [`abi::MAX_OWN_RETRIES`], not the
    /// [`abi::MAX_RETRIES`] of [`Clock::snapshot`]: a host that keeps every record odd costs a
    /// read at most that many loads per CPU.
    #[cold]
    fn fallback_body(&self, me: CpuId) -> Body {
        if self.trust_stable {
            let live = kernel::cpu::possible_cpus()
                .filter(|&cpu| cpu != me && self.records.is_enabled(cpu))
                .find_map(|cpu| {
                    abi::snapshot(&self.records.slot(cpu), || 0, abi::MAX_OWN_RETRIES)
                        .ok()
                        .filter(|s| s.body.flags & abi::TSC_STABLE_BIT != 0)
                });
            if let Some(s) = live {
                return s.body;
            }
        }
        self.reference.as_ref().copied().unwrap_or_default()
    }

    /// Returns the record of `cpu` as it is now, or why it cannot be used.
    pub(super) fn snapshot(&self, cpu: CpuId) -> Result<abi::Snapshot, abi::SnapshotError> {
        abi::snapshot(&self.records.slot(cpu), || 0, abi::MAX_RETRIES).map_err(|(e, _)| e)
    }
}

/// The clocksource callbacks.
pub(super) struct ClockOps(pub(super) Arc<Clock>);

#[vtable]
impl clocksource::Operations for ClockOps {
    const NAME: &'static CStr = NAME;

    #[inline]
    fn read(&self) -> u64 {
        self.0.read()
    }
}

/// The CPU hotplug callbacks: register and unregister each CPU's record.
pub(super) struct Hotplug(pub(super) Arc<Clock>);

#[vtable]
impl cpuhp::Operations for Hotplug {
    const NAME: &'static CStr = c"kvm_guest_rs/kvmclock:online";

    fn online(&self, cpu: ThisCpu<'_>) -> Result {
        let c = &self.0;
        let s = c.this_stats(cpu);
        if cpu.id().as_u32() == 0 && c.vdso_withdrawn.load(Relaxed) {
            // Taken back from the vDSO for good (`Clock::withdraw_vdso`).
            pr_info!(
                "kvm-clock-rs: CPU0 stays unregistered: its record was taken back from the vDSO\n"
            );
            return Ok(());
        }
        // Whatever the host writes now is checked again by a full read.
        s.known_version.set(abi::NO_KNOWN_VERSION);
        crate::feature::enable_record("kvm-clock-rs", &c.records, cpu)?;
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
        crate::feature::disable_record("kvm-clock-rs", &self.0.records, cpu);
    }
}
