// SPDX-License-Identifier: GPL-2.0

//! Steal time: the kernel's steal clock from KVM's per-CPU steal-time records.
//!
//! Each possible CPU gets a `struct kvm_steal_time` in memory shared with the host, registered
//! on the CPU itself through `MSR_KVM_STEAL_TIME` when it comes online and unregistered when it
//! goes offline or the module unloads. The host adds to `steal` the time the vCPU was runnable
//! but not running. [`Steal`] is installed as the kernel's steal clock
//! ([`kernel::steal_clock`]), which the scheduler reads for the current CPU at every tick
//! (`/proc/stat` "steal") and for any CPU when it updates that CPU's runqueue clock.
//!
//! The value returned for a CPU never goes backwards and starts, for every registration of its
//! record, where the previous one stopped: the host's first write after an enable carries what
//! the vCPU thread waited since KVM last charged it (its whole history after the vCPU's first
//! enable), and a host that writes a smaller `steal` is clamped (and counted). A record whose
//! version stays odd returns the last value (counted, logged once). A record registered again
//! behind the hotplug callbacks' back (suspend and resume) gets a new baseline from its CPU.
//!
//! Teardown order (the field order of [`StealTime`]): the sysfs files, the steal clock (no more
//! reads), the hotplug state (the MSR is 0 on every CPU), and only then the records.

use kernel::{
    cpu::CpuId,
    cpuhp,
    interrupt::local_interrupt_disable,
    kvm_para::{
        abi::{
            KvmStealTime,
            StealBaseline, //
        },
        msr::STEAL_TIME,
        shared::{
            PerCpu,
            Slot, //
        },
        Feature,
        Features, //
    },
    local::Local64,
    percpu::PerCpuBox,
    preempt::ThisCpu,
    prelude::*,
    pvclock::{
        abi::{
            clamp_monotonic_from,
            read_consistent,
            LastValue as _, //
        },
        LastValue,
    },
    steal_clock,
    sync::{
        atomic::{
            Atomic,
            AtomicFlag,
            Relaxed, //
        },
        barrier::{
            smp_mb,
            Full,
            Write, //
        },
        rcu::synchronize_rcu,
        Arc,
    },
    sysfs::{
        self,
        Attribute, //
    },
};

use crate::{
    counters::{
        self,
        counter_attrs,
        CpuView, //
    },
    feature::{
        self,
        Env,
        GuestFeature,
        Skip, //
    },
};

/// Version-loop retries on a record before a read returns the last value.
///
/// A remote CPU's record may be in an update for the few instructions the host needs; a record
/// odd for this many consecutive loads is stuck.
const MAX_RETRIES: u32 = 16;

/// Statistics and state of one CPU.
///
/// The counters are those of the reads this CPU made ([`Local64`]: only this CPU updates them);
/// the rest belongs to this CPU's record and is read by every CPU. `seq`, `base`, `start` and
/// `base_version` are written only on this CPU (its hotplug callbacks, or a read of its own
/// record with interrupts off), hence [`Local64`] too, and only while `seq` is odd, which makes
/// readers of another CPU return the last value instead of mixing two registrations. `last` is
/// raised by any reader.
pub(crate) struct CpuSteal {
    /// Steal-clock reads made on this CPU, for any CPU.
    reads: Local64,
    /// Version-loop retries of those reads.
    retries: Local64,
    /// Reads that found a record stuck at an odd version and returned the last value.
    stuck_odd: Local64,
    /// Reads in which the host's `steal` was below the last value returned (clamped).
    backwards: Local64,
    /// Reads of another CPU's record that found it preempted (`KVM_VCPU_PREEMPTED`).
    preempted_seen: Local64,
    /// Odd while this CPU's record is not registered or is being registered.
    seq: Local64,
    /// The host's `steal` when the current registration began.
    base: Local64,
    /// The value returned for this CPU when the current registration began.
    start: Local64,
    /// The record's version when `base` was read; 0 if the host had not written the record.
    base_version: Local64,
    /// The largest value returned for this CPU: its steal time in nanoseconds.
    last: LastValue,
    /// The record's version when this CPU last read its own record and `last` became at least
    /// that reading's value; odd (no version the host leaves a record at) when there is none.
    /// Read and written only on this CPU with interrupts off, set odd while `seq` is odd.
    known: Local64,
    /// Registrations of this CPU's record with the host.
    registrations: Atomic<u64>,
}

impl CpuSteal {
    /// Returns a CPU with no registered record and nothing counted.
    const fn new() -> Self {
        Self {
            reads: Local64::new(0),
            retries: Local64::new(0),
            stuck_odd: Local64::new(0),
            backwards: Local64::new(0),
            preempted_seen: Local64::new(0),
            seq: Local64::new(1),
            base: Local64::new(0),
            start: Local64::new(0),
            base_version: Local64::new(0),
            last: LastValue::new(),
            known: Local64::new(1),
            registrations: Atomic::new(0),
        }
    }

    /// Makes `seq` odd: readers on other CPUs return the last value from now on. On this CPU
    /// only, with `seq` even.
    fn begin_update(&self) {
        self.seq.inc();
        // The own reads' shortcut ends with the registration it belongs to.
        self.known.set(1);
        smp_mb(Full);
    }

    /// Begins a registration period at the host's `steal` and `version`, continuing from the
    /// last value. On this CPU only, with `seq` odd.
    fn set_baseline(&self, steal: u64, version: u64) {
        let start = self.last.get();
        self.base.set(steal);
        self.start.set(start);
        self.base_version.set(version);
    }

    /// Makes `seq` even again, after the stores of the update. On this CPU only.
    fn end_update(&self) {
        smp_mb(Write);
        self.seq.inc();
    }
}

/// `smp_rmb()` between the loads of `seq` and of what it guards: on x86, where this driver runs
/// (KVM's paravirtual interface is x86 only), loads are not reordered with other loads, so
/// `smp_rmb()` is `barrier()`, a compiler barrier, as here (without a C helper call).
#[inline(always)]
fn read_barrier() {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// A consistent reading of a record.
#[derive(Clone, Copy)]
struct Reading {
    /// Nanoseconds the host counted.
    steal: u64,
    /// `KVM_VCPU_PREEMPTED` and `KVM_VCPU_FLUSH_TLB`.
    preempted: u8,
    /// The even version the reading belongs to (0: never written).
    version: u32,
}

/// What a host did wrong, counted and logged once by [`Steal::host_fault`].
#[derive(Clone, Copy)]
enum HostFault {
    /// A record's version stayed odd.
    StuckOdd,
    /// A record's `steal` went below the value returned before.
    Backwards,
}

/// The records and the per-CPU state, shared by the steal clock, the hotplug callbacks and
/// sysfs.
pub(crate) struct Steal {
    /// The per-CPU records, shared with the host.
    records: PerCpu<KvmStealTime>,
    /// Per-CPU statistics and state.
    cpus: PerCpuBox<CpuSteal>,
    /// Set once a record stuck at an odd version was logged.
    stuck_logged: AtomicFlag,
    /// Set once a host `steal` going backwards was logged.
    backwards_logged: AtomicFlag,
}

impl Steal {
    /// Reads `record` with the version protocol: the host's `steal`, `preempted` and the
    /// version; the number of retries, with the reading or (`Err`) without one.
    #[inline(always)]
    fn read_record(record: &Slot<'_, KvmStealTime>) -> core::result::Result<(Reading, u32), u32> {
        read_consistent(record, MAX_RETRIES, |r| {
            (
                r.load_u64(KvmStealTime::STEAL),
                r.load_u8(KvmStealTime::PREEMPTED),
            )
        })
        .map(|c| {
            (
                Reading {
                    steal: c.value.0,
                    preempted: c.value.1,
                    version: c.version,
                },
                c.retries,
            )
        })
        .map_err(|b| b.retries)
    }

    /// The steal clock: the steal time of `cpu` in nanoseconds, read on `this`.
    ///
    /// A CPU reading its own record (the tick's and its runqueue clock's case) whose version is
    /// the one it last read returns `last`: every read since found the same `steal`, so
    /// `last`, which only grows, is that reading's value (or a larger one a host that reuses a
    /// version made it publish: still monotonic). One load of the record, no clamp.
    #[inline(always)]
    fn read(&self, this: ThisCpu<'_>, cpu: CpuId) -> u64 {
        let s = self.cpus.this_cpu(this);
        s.reads.inc();
        if cpu != this.id() {
            return Self::read_remote(cpu, self, s);
        }
        // The own CPU's record through its per-CPU pointer.
        let record = self.records.this_slot(this);
        let version = record.load_u32(KvmStealTime::VERSION);
        if u64::from(version) == s.known.get() {
            return s.last.get();
        }
        Self::read_own(this, self, s, record, version)
    }

    /// [`Self::read`] of the own record at a new `version` (loaded first), out of line so that
    /// the shortcut needs few registers: one pass of the version protocol and the clamp's common
    /// case, else the general path; remembers the version if `last` now covers its reading.
    ///
    /// This CPU's state changes only on this CPU while `seq` is odd: its hotplug callbacks, or
    /// a read's `rebase()`. The scheduler reads with interrupts off, so nothing interrupts it
    /// here; `steal_clock::read()` (the bench) only disables preemption, so a tick's read may
    /// interrupt this one and rebase: `seq` is checked again after the baseline is loaded, and a
    /// change takes the general path. A rebase between that check and the store of `known`
    /// leaves a `known` of the old registration: the shortcut then returns `last` until the
    /// version moves, which never goes back nor forward by more than was returned.
    ///
    /// Written so that few values are live at once (each is used as soon as it is loaded): the
    /// common case then runs in the caller-saved registers, with no stack frame.
    ///
    /// The CPU comes first, here and in [`Self::read_remote`]: it stays in the register it
    /// arrives in.
    #[inline(never)]
    fn read_own(
        this: ThisCpu<'_>,
        st: &Self,
        s: &CpuSteal,
        record: Slot<'_, KvmStealTime>,
        version: u32,
    ) -> u64 {
        let seq = s.seq.get();
        read_barrier();
        let steal = record.load_u64(KvmStealTime::STEAL);
        read_barrier();
        if (seq | u64::from(version)) & 1 != 0 || record.load_u32(KvmStealTime::VERSION) != version
        {
            // Being registered (the general path returns `last`), or the host is updating the
            // record: that pass was the first try, and the general path retries.
            if seq & 1 == 0 {
                s.retries.inc();
            }
            return st.read_own_general(s, this);
        }
        let baseline = StealBaseline {
            steal: s.base.get(),
            version: s.base_version.get(),
            start: s.start.get(),
        };
        // No baseline or a new registration: the general path.
        let Some(v) = baseline.value(steal, version) else {
            return st.read_own_general(s, this);
        };
        let last = s.last.get();
        read_barrier();
        // The same registration, and not below `last`: anything else (a rebase meanwhile, the
        // clamp) takes the general path.
        if s.seq.get() != seq || v < last || (v > last && s.last.compare_exchange(last, v).is_err())
        {
            return st.read_own_general(s, this);
        }
        s.known.set(u64::from(version));
        v
    }

    /// The rest of [`Self::read_own`]: the general path, out of line so that the common case
    /// needs few registers.
    #[cold]
    #[inline(never)]
    fn read_own_general(&self, s: &CpuSteal, this: ThisCpu<'_>) -> u64 {
        let (v, known) = self.read_cpu::<true>(s, s, &self.records.this_slot(this), this.id());
        if let Some(version) = known {
            s.known.set(u64::from(version));
        }
        v
    }

    /// [`Self::read`] of another CPU's record (runqueue clock updates), out of line.
    #[inline(never)]
    fn read_remote(cpu: CpuId, st: &Self, s: &CpuSteal) -> u64 {
        match st.cpus.get(cpu) {
            Some(c) => st.read_cpu::<false>(s, c, &st.records.slot(cpu), cpu).0,
            None => 0,
        }
    }

    /// Reads `cpu`'s `record` with its state `c`, counting on the reading CPU's `s`; `OWN` if
    /// `cpu` is the reading CPU. Returns the value and, if `last` is now at least the value of
    /// a consistent reading of this registration that the clamp did not move, its version.
    #[inline(always)]
    fn read_cpu<const OWN: bool>(
        &self,
        s: &CpuSteal,
        c: &CpuSteal,
        record: &Slot<'_, KvmStealTime>,
        cpu: CpuId,
    ) -> (u64, Option<u32>) {
        // Published before the record is read: a value below it is the host's step back, not a
        // newer reading another reader published meanwhile.
        let before = c.last.get();
        let seq = c.seq.get();
        read_barrier();
        if seq & 1 != 0 {
            // Not registered, or being registered.
            return (c.last.get(), None);
        }
        let (r, retries) = match Self::read_record(record) {
            Ok(r) => r,
            Err(retries) => {
                s.retries.add(u64::from(retries));
                self.host_fault(s, HostFault::StuckOdd, cpu);
                return (c.last.get(), None);
            }
        };
        if retries != 0 {
            s.retries.add(u64::from(retries));
        }
        if r.version == 0 {
            // Not written yet, or zeroed by a disable (reboot, suspend).
            return (c.last.get(), None);
        }
        if !OWN && r.preempted & 1 != 0 {
            s.preempted_seen.inc();
        }
        let baseline = StealBaseline {
            steal: c.base.get(),
            version: c.base_version.get(),
            start: c.start.get(),
        };
        read_barrier();
        if c.seq.get() != seq {
            // Re-registered meanwhile: `steal` and `base` may belong to different records.
            return (c.last.get(), None);
        }
        let Some(v) = baseline.value(r.steal, r.version) else {
            // No baseline yet (the host had not written the record at registration), or the
            // record was registered again behind the hotplug callbacks' back (`PerCpu` turns it
            // off and on around suspend): its `steal` starts afresh. The CPU itself takes the
            // new baseline; until then the value stands still.
            if OWN {
                self.rebase(c, r);
            }
            return (c.last.get(), None);
        };
        // Below the registration's first value, or below what was returned before the record
        // was read: the host's `steal` went backwards (clamped). Not the host's fault if the
        // registration ended meanwhile (a stale reading).
        let clamped = clamp_monotonic_from(&c.last, before, v);
        let same = c.seq.get() == seq;
        if clamped.clamped {
            if same {
                self.host_fault(s, HostFault::Backwards, cpu);
            }
            return (clamped.value, None);
        }
        (clamped.value, same.then_some(r.version))
    }

    /// Counts `fault` of `cpu`'s record on the reading CPU (`s`), and logs the first of its kind
    /// (deferred: the steal clock runs under the scheduler's locks).
    #[cold]
    fn host_fault(&self, s: &CpuSteal, fault: HostFault, cpu: CpuId) {
        let (counter, logged, what) = match fault {
            HostFault::StuckOdd => (
                &s.stuck_odd,
                &self.stuck_logged,
                "record is stuck at an odd version; its steal time stands still while it is",
            ),
            HostFault::Backwards => (
                &s.backwards,
                &self.backwards_logged,
                "steal went backwards; clamped",
            ),
        };
        counter.inc();
        if !logged.xchg(true, Relaxed) {
            kernel::pr_warn_deferred!("steal time: CPU{}: the host's {}\n", cpu.as_u32(), what);
        }
    }

    /// Starts a new registration period of the current CPU's record at `r`, continuing from the
    /// last value returned.
    ///
    /// Runs on the record's own CPU with interrupts disabled, so neither its hotplug callbacks
    /// (which change the state only while `seq` is odd, and then nothing else runs here) nor
    /// another reader on this CPU interleave; readers on other CPUs see `seq` change.
    #[cold]
    #[inline(never)]
    fn rebase(&self, c: &CpuSteal, r: Reading) {
        let _irq = local_interrupt_disable();
        c.begin_update();
        c.set_baseline(r.steal, u64::from(r.version));
        c.end_update();
    }
}

/// The steal clock callback, on the shared state itself: the kernel passes its address.
#[vtable]
impl steal_clock::StealClock for Steal {
    #[inline(always)]
    fn steal_clock(&self, this: ThisCpu<'_>, cpu: CpuId) -> u64 {
        self.read(this, cpu)
    }
}

/// The CPU hotplug callbacks: register and unregister each CPU's record.
struct Hotplug(Arc<Steal>);

#[vtable]
impl cpuhp::Operations for Hotplug {
    const NAME: &'static CStr = c"kvm_guest_rs/steal_time:online";

    fn online(&self, cpu: ThisCpu<'_>) -> Result {
        let st = &self.0;
        let c = st.cpus.this_cpu(cpu);
        // Odd (not registered) since the last offline or since allocation.
        feature::enable_record("steal time", &st.records, cpu)?;
        c.registrations.add(1, Relaxed);
        // The host writes the record while it handles the MSR write, with everything its vCPU
        // thread waited since KVM last charged it (all of it after the vCPU's first enable):
        // continue from the last value instead.
        let (steal, version) = match Steal::read_record(&st.records.this_slot(cpu)) {
            Ok((r, _)) => {
                if r.version == 0 {
                    pr_warn!(
                        "steal time: CPU{}: the host did not write the record; its steal time stands still until it does\n",
                        cpu.id().as_u32()
                    );
                }
                (r.steal, r.version)
            }
            Err(_) => {
                // No baseline: leave the record unused (odd) rather than risk charging the
                // host's whole history when it finishes the update.
                pr_warn!(
                    "steal time: CPU{}: the record is stuck at an odd version; this CPU's steal time stands still\n",
                    cpu.id().as_u32()
                );
                return Ok(());
            }
        };
        // 0: the first reading the host writes becomes the baseline (see `Steal::read()`).
        c.set_baseline(steal, u64::from(version));
        // Even again: readers may use the record, with this registration's `base` and `start`.
        c.end_update();
        Ok(())
    }

    fn offline(&self, cpu: ThisCpu<'_>) {
        let st = &self.0;
        let c = st.cpus.this_cpu(cpu);
        if c.seq.get() & 1 == 0 {
            // Odd before the record goes: readers return the last value from now on. Only this
            // CPU changes `seq`. Then wait for readers that passed their check before (they run
            // with interrupts or preemption disabled), so none publishes a value of this
            // registration after the next one began.
            c.begin_update();
            synchronize_rcu();
        }
        feature::disable_record("steal time", &st.records, cpu);
    }
}

counter_attrs! {
    for Steal, stats: cpus;
    counters: {
        reads: |s| s.reads.get(),
        retries: |s| s.retries.get(),
        stuck_odd: |s| s.stuck_odd.get(),
        backwards: |s| s.backwards.get(),
        preempted_seen: |s| s.preempted_seen.get(),
        registrations: |s| s.registrations.load(Relaxed),
        steal_ns: |s| s.last.get(),
    }
    /// Files of `/sys/kernel/kvm_guest_rs/steal_time/`: the counters summed over all CPUs, then
    /// these.
    static ATTRS = [Attribute::new(c"msr", counters::show_msr::<Steal>)];
    /// Files of `/sys/kernel/kvm_guest_rs/steal_time/cpuN/`: the CPU's counters, then these.
    static CPU_ATTRS = [
        Attribute::new(c"enabled", counters::show_enabled::<Steal>),
        Attribute::with_mode(c"msr_value", 0o400, counters::show_msr_value::<Steal>),
    ];
}

impl counters::Records for Steal {
    type Record = KvmStealTime;

    fn records(&self) -> &PerCpu<KvmStealTime> {
        &self.records
    }
}

/// The steal-time feature, registered; dropping it tears everything down in field order.
pub(crate) struct StealTime {
    /// `/sys/kernel/kvm_guest_rs/steal_time/cpuN/`.
    _cpu_files: KVec<sysfs::Group<CpuView<Steal>>>,
    /// `/sys/kernel/kvm_guest_rs/steal_time/`.
    _files: sysfs::Group<Steal>,
    /// The steal clock: removed next, so the scheduler reads the records no more.
    _clock: steal_clock::Registration<Steal>,
    /// The hotplug state: its removal unregisters every CPU's record with the host.
    _hotplug: Pin<KBox<cpuhp::Registration<Hotplug>>>,
    /// The records: freed last.
    steal: Arc<Steal>,
}

/// The settings of the steal-time feature, from module parameters.
pub(crate) struct Params {
    /// Take steal time out of the runqueue clock too (`steal_acc`).
    pub(crate) rq_accounting: bool,
}

impl GuestFeature for StealTime {
    const NAME: &'static str = "steal_time";

    type Params = Params;

    type Plan = ();

    fn check(host: Features) -> Result<core::result::Result<(), Skip>> {
        if !host.has(Feature::STEAL_TIME) {
            return Ok(Err(Skip::Unsupported));
        }
        Ok(feature::unowned_msr(
            STEAL_TIME.msr(),
            "the in-tree steal clock runs; boot with kvm-pv-ext to use this module's",
        ))
    }

    fn start(_plan: (), params: Params, env: &Env<'_>) -> Result<Self> {
        let rq_accounting = params.rq_accounting;
        let records = feature::new_records("steal time", &STEAL_TIME)?;
        let steal = Arc::new(
            Steal {
                records,
                cpus: PerCpuBox::new(|_| CpuSteal::new(), GFP_KERNEL)?,
                stuck_logged: AtomicFlag::new(false),
                backwards_logged: AtomicFlag::new(false),
            },
            GFP_KERNEL,
        )?;
        let hotplug = KBox::pin_init(cpuhp::Registration::new(Hotplug(steal.clone())), GFP_KERNEL)?;
        let clock = steal_clock::Registration::new(steal.clone(), rq_accounting)
            .inspect_err(|e| {
                if *e == EBUSY {
                    pr_info!("steal time: another steal clock is installed; boot with kvm-pv-ext to use this module's\n");
                }
            })?;
        let dir = env.sysfs.subdir(c"steal_time")?;
        let files = sysfs::Group::new(&dir, steal.clone(), ATTRS)?;
        let cpu_files = counters::cpu_groups(&dir, &steal, &steal.cpus, CPU_ATTRS)?;
        pr_info!(
            "steal time: {} on every CPU, runqueue accounting {}\n",
            STEAL_TIME.name(),
            if rq_accounting { "on" } else { "off" }
        );
        Ok(Self {
            _cpu_files: cpu_files,
            _files: files,
            _clock: clock,
            _hotplug: hotplug,
            steal,
        })
    }
}

impl StealTime {
    /// Leaks the steal clock, the hotplug state, the sysfs files and the records instead of
    /// removing them (`leak_steal_time`, fault injection): the kernel must remove the
    /// registrations as the module goes. (The feature has no debugfs file: a leaked
    /// `debugfs::File` keeps its directory, and so its callbacks, alive.)
    pub(crate) fn leak(self) {
        core::mem::forget(self);
    }
}

impl Drop for StealTime {
    fn drop(&mut self) {
        let cpus = &self.steal.cpus;
        pr_info!(
            "steal time: unregistering after {} ns of steal in {} reads\n",
            counters::total(cpus, |c| c.last.get()),
            counters::total(cpus, |c| c.reads.get())
        );
    }
}
