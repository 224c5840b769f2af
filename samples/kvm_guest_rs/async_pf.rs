// SPDX-License-Identifier: GPL-2.0

//! Async page faults: a task sleeps while the host fetches its page, and another task runs.
//!
//! Each possible CPU gets an async page fault record in memory shared with the host, enabled on
//! the CPU through [`kernel::async_pf::Registration`] when it comes online (page-ready vector in
//! `MSR_KVM_ASYNC_PF_INT`, then `MSR_KVM_ASYNC_PF_EN` with delivery as interrupt, user-mode
//! faults only) and disabled when it goes offline or the module unloads. "Page not present"
//! puts the faulting task to sleep in the fault path ([`Apf::wait`]) until the page-ready
//! interrupt with its token wakes it ([`Apf::ready`]); the token `~0` wakes every task waiting
//! on the receiving CPU.
//!
//! # No allocation in the fault path or the interrupt
//!
//! Who waits for which token is kept in a table ([`table`]) whose nodes are allocated once, at
//! load: KVM's limit of outstanding faults per vCPU (64, [`async_pf::HOST_MAX_PER_CPU`]) for
//! every possible CPU. A page-ready that comes before its wait is kept as an early wake in the
//! same pool (the in-tree guest allocates it with `GFP_ATOMIC` in the interrupt). A full pool
//! gives up the oldest early wake first; full of sleepers, it makes the fault retry at once
//! (the host then waits for the page synchronously) and drops an early wake, which a waiter's
//! timeout ([`WAIT_TIMEOUT_MS`]) covers: no task sleeps forever, whatever the host sends.
//!
//! # Teardown
//!
//! The sysfs files go, then the hotplug state: on each CPU the record is disabled (the host drops
//! what is outstanding there) and the CPU's sleepers are woken to retry. The registration goes
//! last: it disables any record still enabled, the kernel stops calling in, wakes the sleepers
//! left through [`Apf::wake_all`] until none is inside the module, and only then are the records
//! and the table freed.

mod table;

use core::ops::Deref;
use kernel::{
    async_pf::{
        self,
        Acked,
        Handler,
        PageReady,
        Registration,
        Wait,
        WAKE_ALL, //
    },
    cpu::nr_cpu_ids,
    cpuhp,
    kvm_para::{
        abi::PvApfData,
        msr::ASYNC_PF_EN,
        shared::PerCpu,
        Features, //
    },
    local::Local64,
    percpu::PerCpuBox,
    preempt::ThisCpu,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            AtomicFlag,
            Relaxed, //
        },
        new_raw_spinlock_irq,
        Arc,
        RawSpinLockIrq, //
    },
    sysfs::{
        self,
        Attribute, //
    },
    task::Task,
    time::msecs_to_jiffies,
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
use table::{
    Node,
    Table,
    Wake, //
};

/// How long a task waits for its page before it retries the access, in milliseconds: only a
/// host that drops or loses a page-ready makes a task wait that long.
pub(crate) const WAIT_TIMEOUT_MS: u32 = 2000;

/// Statistics of one CPU, updated on it with interrupts off ([`Local64`]).
pub(crate) struct CpuApf {
    /// "Page not present" faults handled on this CPU.
    not_present: Local64,
    /// Page-ready interrupts taken on this CPU (every token, `~0` and 0 included).
    ready: Local64,
    /// Tasks woken by a page-ready for their token or a broadcast.
    woken: Local64,
    /// Page-ready before the wait: kept as an early wake.
    early: Local64,
    /// Waits that found their early wake and did not sleep.
    early_claimed: Local64,
    /// Broadcasts (`~0`).
    broadcasts: Local64,
    /// Acknowledgments written (`MSR_KVM_ASYNC_PF_ACK`).
    acks: Local64,
    /// Tokens that came twice, as a page-ready or as a wait.
    duplicates: Local64,
    /// Page-ready interrupts without a token (0).
    spurious: Local64,
    /// Pool full of sleepers: a fault retried without sleeping, or an early wake was dropped.
    exhausted: Local64,
    /// Waits that gave up after [`WAIT_TIMEOUT_MS`].
    timeouts: Local64,
    /// Registrations of this CPU's record with the host.
    registrations: Atomic<u64>,
}

/// The waker of a sleeping task.
type Waker = ARef<Task>;

/// The sleepers and early wakes, with the statistics: the handler the kernel calls.
#[pin_data]
pub(crate) struct Apf {
    /// Who waits for which token; taken in the fault path and the interrupt.
    #[pin]
    table: RawSpinLockIrq<Table<Waker, VVec<Node<Waker>>>>,
    /// Per-CPU statistics.
    cpus: PerCpuBox<CpuApf>,
    /// Tasks sleeping in the fault path now.
    sleepers: Atomic<u64>,
    /// Most tasks sleeping at once.
    sleepers_max: Atomic<u64>,
}

impl Apf {
    /// A task begins to sleep: counts it, and the most at once.
    fn sleepers_begin(&self) {
        let now = self.sleepers.fetch_add(1, Relaxed) + 1;
        let mut max = self.sleepers_max.load(Relaxed);
        while now > max {
            match self.sleepers_max.cmpxchg(max, now, Relaxed) {
                Ok(_) => break,
                Err(m) => max = m,
            }
        }
    }
}

impl Handler for Apf {
    fn wait(&self, ctx: &mut Wait<'_>, token: u32) {
        let cpu = ctx.this_cpu();
        self.cpus.this_cpu(cpu).not_present.inc();
        let cpu = cpu.id().as_u32();
        let mut waker = Some(ctx.task());
        // The first call registers the wait, with the task already marked sleeping (so a wake
        // from another CPU right after is not lost); the next ones leave once woken. One lock
        // each, as the in-tree guest's bucket lock.
        let mut begin = None;
        // A waker the table did not keep is dropped after the lock, not under it.
        let mut _unused = None;
        let woken = ctx.sleep_until(msecs_to_jiffies(WAIT_TIMEOUT_MS), || {
            let mut table = self.table.lock();
            match begin {
                None => {
                    let Some(w) = waker.take() else {
                        return true;
                    };
                    let (b, back) = table.wait(token, cpu, w);
                    _unused = back;
                    let sleeps = matches!(b, table::Wait::Sleep(_));
                    begin = Some(b);
                    if sleeps {
                        self.sleepers_begin();
                    }
                    !sleeps
                }
                Some(table::Wait::Sleep(node)) => match table.take_if_woken(node) {
                    Some(w) => {
                        // The waker comes back to the sleeper, which drops it after the lock
                        // (the interrupt never drops a task reference).
                        _unused = Some(w);
                        true
                    }
                    None => false,
                },
                Some(_) => true,
            }
        });
        let s = self.cpus.this_cpu(ctx.this_cpu());
        match begin {
            Some(table::Wait::Sleep(node)) => {
                if !woken {
                    // Timed out (or could not sleep): the node goes, with the waker.
                    let _waker = self.table.lock().done(node);
                    s.timeouts.inc();
                }
                self.sleepers.fetch_sub(1, Relaxed);
            }
            Some(table::Wait::Ready) => s.early_claimed.inc(),
            Some(table::Wait::Duplicate) => s.duplicates.inc(),
            Some(table::Wait::Full) => s.exhausted.inc(),
            None => {}
        }
    }

    fn ready<'a>(&self, ctx: PageReady<'a>) -> Acked<'a> {
        let cpu = ctx.this_cpu();
        let s = self.cpus.this_cpu(cpu);
        s.ready.inc();
        match ctx.token() {
            0 => s.spurious.inc(),
            WAKE_ALL => {
                s.broadcasts.inc();
                let n = self
                    .table
                    .lock_with(ctx.irqs_disabled())
                    .wake_cpu(Some(cpu.id().as_u32()), |w| w.wake_up());
                s.woken.add(u64::from(n));
            }
            token => match self.table.lock_with(ctx.irqs_disabled()).wake(
                token,
                cpu.id().as_u32(),
                |w| w.wake_up(),
            ) {
                Wake::Woken => s.woken.inc(),
                Wake::Early => s.early.inc(),
                Wake::Duplicate => s.duplicates.inc(),
                Wake::Dropped => s.exhausted.inc(),
            },
        }
        s.acks.inc();
        ctx.ack()
    }

    fn wake_all(&self) {
        self.table.lock().wake_cpu(None, |w| w.wake_up());
    }
}

/// The registration, shared by the hotplug callbacks and sysfs; reads as the handler.
pub(crate) struct Shared {
    reg: Registration<Apf>,
    /// Set once every online CPU enabled its record at load: a CPU that comes online later and
    /// whose record the host refuses still comes online, without async page faults.
    started: AtomicFlag,
}

impl Deref for Shared {
    type Target = Apf;

    fn deref(&self) -> &Apf {
        self.reg.handler()
    }
}

impl counters::Records for Shared {
    type Record = PvApfData;

    fn records(&self) -> &PerCpu<PvApfData> {
        self.reg.records()
    }
}

/// The CPU hotplug callbacks: enable and disable each CPU's record.
struct Hotplug(Arc<Shared>);

#[vtable]
impl cpuhp::Operations for Hotplug {
    const NAME: &'static CStr = c"kvm_guest_rs/async_pf:online";

    fn online(&self, cpu: ThisCpu<'_>) -> Result {
        let sh = &self.0;
        match sh.reg.enable(cpu) {
            Ok(()) => {}
            Err(e) => {
                feature::msr_failed("async PF", sh.reg.records(), cpu, "registration", e);
                // This CPU's faults are ordinary ones.
                if e == EIO && sh.started.load(Relaxed) {
                    return Ok(());
                }
                return Err(e);
            }
        }
        sh.cpus.this_cpu(cpu).registrations.add(1, Relaxed);
        Ok(())
    }

    fn offline(&self, cpu: ThisCpu<'_>) {
        let sh = &self.0;
        if let Err(e) = sh.reg.disable(cpu) {
            feature::msr_failed("async PF", sh.reg.records(), cpu, "reset", e);
        }
        // The host dropped what was outstanding here: the CPU's sleepers retry their access.
        sh.table
            .lock()
            .wake_cpu(Some(cpu.id().as_u32()), |w| w.wake_up());
    }
}

counter_attrs! {
    for Shared, stats: cpus;
    counters: {
        not_present: |s| s.not_present.get(),
        ready: |s| s.ready.get(),
        woken: |s| s.woken.get(),
        early: |s| s.early.get(),
        early_claimed: |s| s.early_claimed.get(),
        broadcasts: |s| s.broadcasts.get(),
        acks: |s| s.acks.get(),
        duplicates: |s| s.duplicates.get(),
        spurious: |s| s.spurious.get(),
        exhausted: |s| s.exhausted.get(),
        timeouts: |s| s.timeouts.get(),
        registrations: |s| s.registrations.load(Relaxed),
    }
    /// Files of `/sys/kernel/kvm_guest_rs/async_pf/`: the counters summed over all CPUs, then
    /// these.
    static ATTRS = [
        Attribute::new(c"msr", counters::show_msr::<Shared>),
        Attribute::new(c"sleepers", |a, f| writeln!(f, "{}", a.sleepers.load(Relaxed))),
        Attribute::new(c"sleepers_max", |a, f| writeln!(f, "{}", a.sleepers_max.load(Relaxed))),
        Attribute::new(c"capacity", |a, f| writeln!(f, "{}", a.table.lock().capacity())),
        Attribute::new(c"in_use", |a, f| writeln!(f, "{}", a.table.lock().used())),
    ];
    /// Files of `/sys/kernel/kvm_guest_rs/async_pf/cpuN/`: the CPU's counters, then these.
    static CPU_ATTRS = [
        Attribute::new(c"enabled", counters::show_enabled::<Shared>),
        Attribute::with_mode(c"msr_value", 0o400, counters::show_msr_value::<Shared>),
    ];
}

/// What the kernel and user space reach besides the registration; dropping it tears it down in
/// field order.
struct Running {
    /// `/sys/kernel/kvm_guest_rs/async_pf/cpuN/`.
    _cpu_files: KVec<sysfs::Group<CpuView<Shared>>>,
    /// `/sys/kernel/kvm_guest_rs/async_pf/`.
    _files: sysfs::Group<Shared>,
    /// The hotplug state: its removal disables every CPU's record and wakes its sleepers.
    _hotplug: Pin<KBox<cpuhp::Registration<Hotplug>>>,
}

/// The async page fault feature; dropping it tears everything down, then logs the totals.
pub(crate) struct AsyncPf {
    /// Files and hotplug state; `None` only in `drop()`.
    running: Option<Running>,
    /// The registration; `None` only in `drop()`.
    shared: Option<Arc<Shared>>,
}

impl GuestFeature for AsyncPf {
    const NAME: &'static str = "async_pf";

    type Params = ();

    type Plan = ();

    fn check(host: Features) -> Result<core::result::Result<(), Skip>> {
        if !host.has_async_pf_int() {
            return Ok(Err(Skip::Unsupported));
        }
        Ok(feature::unowned_msr(
            ASYNC_PF_EN.msr(),
            "the in-tree async PF runs; boot with kvm-pv-ext to use this module's",
        ))
    }

    fn start(_plan: (), _params: (), env: &Env<'_>) -> Result<Self> {
        // CAST: `nr_cpu_ids()` fits in `usize`.
        let capacity = async_pf::HOST_MAX_PER_CPU * nr_cpu_ids() as usize;
        // `vmalloc()`: 64 nodes of about 40 bytes per possible CPU need no contiguous pages.
        let mut nodes = VVec::with_capacity(capacity, GFP_KERNEL)?;
        for _ in 0..capacity {
            nodes.push(Node::new(), GFP_KERNEL)?;
        }
        let cpus = PerCpuBox::new(
            |_| CpuApf {
                not_present: Local64::new(0),
                ready: Local64::new(0),
                woken: Local64::new(0),
                early: Local64::new(0),
                early_claimed: Local64::new(0),
                broadcasts: Local64::new(0),
                acks: Local64::new(0),
                duplicates: Local64::new(0),
                spurious: Local64::new(0),
                exhausted: Local64::new(0),
                timeouts: Local64::new(0),
                registrations: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let apf = Arc::pin_init(
            pin_init!(Apf {
                table <- new_raw_spinlock_irq!(Table::new(nodes), "kvm_guest_rs_apf_table"),
                cpus,
                sleepers: Atomic::new(0),
                sleepers_max: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        let reg = Registration::new(apf).map_err(|e| {
            if e == ENODEV {
                pr_info!("async PF: the kernel has no page-ready vector for a driver; boot with kvm-pv-ext to use this module's\n");
                EBUSY
            } else {
                if e == EBUSY {
                    pr_info!("async PF: the in-tree async PF or another driver handles it\n");
                }
                e
            }
        })?;
        let shared = Arc::new(
            Shared {
                reg,
                started: AtomicFlag::new(false),
            },
            GFP_KERNEL,
        )?;
        let hotplug = KBox::pin_init(
            cpuhp::Registration::new(Hotplug(shared.clone())),
            GFP_KERNEL,
        )
        // Logged per CPU; the records enabled on other CPUs are disabled again.
        .map_err(feature::refused_if_eio)?;
        shared.started.store(true, Relaxed);
        let dir = env.sysfs.subdir(c"async_pf")?;
        let files = sysfs::Group::new(&dir, shared.clone(), ATTRS)?;
        let cpu_files = counters::cpu_groups(&dir, &shared, &shared.cpus, CPU_ATTRS)?;
        pr_info!(
            "async PF: {} on every CPU, {} tokens preallocated\n",
            ASYNC_PF_EN.name(),
            capacity
        );
        Ok(Self {
            running: Some(Running {
                _cpu_files: cpu_files,
                _files: files,
                _hotplug: hotplug,
            }),
            shared: Some(shared),
        })
    }
}

impl Drop for AsyncPf {
    fn drop(&mut self) {
        drop(self.running.take());
        let Some(shared) = self.shared.take() else {
            return;
        };
        let apf = shared.reg.handler().clone();
        // The last reference: unregisters, waking and waiting for every sleeper.
        drop(shared);
        let cpus = &apf.cpus;
        pr_info!(
            "async PF: unregistered after {} not present, {} ready ({} woken, {} early, {} broadcasts), {} acks, {} timeouts\n",
            counters::total(cpus, |c| c.not_present.get()),
            counters::total(cpus, |c| c.ready.get()),
            counters::total(cpus, |c| c.woken.get()),
            counters::total(cpus, |c| c.early.get()),
            counters::total(cpus, |c| c.broadcasts.get()),
            counters::total(cpus, |c| c.acks.get()),
            counters::total(cpus, |c| c.timeouts.get())
        );
    }
}
