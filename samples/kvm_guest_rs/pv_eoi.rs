// SPDX-License-Identifier: GPL-2.0

//! PV EOI: end interrupts without the APIC's EOI register when the host allows it.
//!
//! Each possible CPU gets a PV EOI word in memory shared with the host, registered on the CPU
//! itself through `MSR_KVM_PV_EOI_EN` when it comes online and unregistered when it goes offline
//! or the module unloads. When the host delivers an interrupt it may complete by itself (an
//! edge-triggered vector, nothing else pending), it sets bit 0 of the word. [`Eoi`] is
//! installed as `apic_eoi()` ([`kernel::apic_eoi`]): it clears the bit in one instruction and
//! returns if it was set (the host ends the interrupt at its next exit), and otherwise has the
//! APIC's EOI register written, as the in-tree guest's `kvm_guest_apic_eoi_write()` does.
//!
//! # Why no EOI is lost
//!
//! The host looks at the word only between two instructions of its own vCPU, and settles an
//! armed word at every exit: bit cleared by the guest, the host ends the interrupt; bit still
//! set, the host clears it and the guest must write the EOI register. The word is zero from
//! allocation and zeroed again before every registration, so a CPU that runs `apic_eoi()` before
//! its record is registered (a CPU coming online clears its APIC's in-service interrupts before
//! any hotplug callback) writes the register. Teardown is: the hotplug state goes first (on each
//! CPU, with interrupts off, `MSR = 0`, at whose exit the host settles an armed word, then the
//! word is zeroed), then the override (every later EOI writes the register; removal waits for
//! every CPU that still runs it), then the words are freed. In any order of these steps a set bit
//! means "armed and not yet settled" and a clear bit "write the register", so each interrupt is
//! ended exactly once.
//!
//! Teardown order (the field order of `Running`, then [`PvEoi`]): the sysfs files, the hotplug
//! state (the MSR is 0 on every CPU), the override, and only then the words.

use kernel::{
    apic_eoi::{
        self,
        Ended,
        EoiContext, //
    },
    cpuhp,
    kvm_para::{
        abi::PvEoiWord,
        msr::PV_EOI_EN,
        shared::PerCpu,
        Feature,
        Features, //
    },
    local::Local64,
    percpu::PerCpuBox,
    preempt::ThisCpu,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            AtomicFlag,
            Relaxed, //
        },
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

/// Statistics of one CPU. The counters are updated only on their CPU, in its EOI path
/// ([`Local64`]).
pub(crate) struct CpuEoi {
    /// EOIs that skipped the APIC write: the host had armed the word.
    skipped: Local64,
    /// EOIs that wrote the APIC's EOI register.
    native: Local64,
    /// Registrations of this CPU's word with the host.
    registrations: Atomic<u64>,
}

/// The words and statistics, shared by the override, the hotplug callbacks and sysfs.
pub(crate) struct Eoi {
    /// The per-CPU words, shared with the host.
    words: PerCpu<PvEoiWord>,
    /// Per-CPU statistics.
    cpus: PerCpuBox<CpuEoi>,
    /// Set once every online CPU registered its word at load: a CPU that comes online later and
    /// whose word the host refuses still comes online, writing the EOI register.
    started: AtomicFlag,
}

/// The EOI override.
#[vtable]
impl apic_eoi::EoiOverride for Eoi {
    #[inline]
    fn eoi<'a>(&self, ctx: EoiContext<'a>) -> Ended<'a> {
        // Before the `BTR`, so that both per-CPU addresses share one load of the CPU's offset.
        let s = self.cpus.this_cpu(ctx.this_cpu());
        // One `BTR`: the host never sees the bit read but not cleared.
        match self.words.pv_eoi(ctx) {
            Ok(ended) => {
                s.skipped.inc();
                ended
            }
            Err(ctx) => {
                s.native.inc();
                ctx.native()
            }
        }
    }
}

/// The CPU hotplug callbacks: register and unregister each CPU's word.
struct Hotplug(Arc<Eoi>);

#[vtable]
impl cpuhp::Operations for Hotplug {
    const NAME: &'static CStr = c"kvm_guest_rs/pv_eoi:online";

    fn online(&self, cpu: ThisCpu<'_>) -> Result {
        let e = &self.0;
        // Zeroes the word, then publishes it, with interrupts off.
        match feature::enable_record("PV EOI", &e.words, cpu) {
            Ok(()) => {}
            // Logged; the word stays zero, so this CPU's EOIs write the register.
            Err(err) if err == EIO && e.started.load(Relaxed) => return Ok(()),
            Err(err) => return Err(err),
        }
        e.cpus.this_cpu(cpu).registrations.add(1, Relaxed);
        Ok(())
    }

    fn offline(&self, cpu: ThisCpu<'_>) {
        // `MSR = 0` (the host settles an armed word at this exit), then the word is zeroed, with
        // interrupts off: every later EOI of this CPU writes the register.
        feature::disable_record("PV EOI", &self.0.words, cpu);
    }
}

counter_attrs! {
    for Eoi, stats: cpus;
    counters: {
        skipped: |s| s.skipped.get(),
        native: |s| s.native.get(),
        registrations: |s| s.registrations.load(Relaxed),
    }
    /// Files of `/sys/kernel/kvm_guest_rs/pv_eoi/`: the counters summed over all CPUs, then
    /// these.
    static ATTRS = [Attribute::new(c"msr", counters::show_msr::<Eoi>)];
    /// Files of `/sys/kernel/kvm_guest_rs/pv_eoi/cpuN/`: the CPU's counters, then these.
    static CPU_ATTRS = [
        Attribute::new(c"enabled", counters::show_enabled::<Eoi>),
        Attribute::with_mode(c"msr_value", 0o400, counters::show_msr_value::<Eoi>),
    ];
}

impl counters::Records for Eoi {
    type Record = PvEoiWord;

    fn records(&self) -> &PerCpu<PvEoiWord> {
        &self.words
    }
}

/// What the kernel and user space reach; dropping it tears it down in field order.
struct Running {
    /// `/sys/kernel/kvm_guest_rs/pv_eoi/cpuN/`.
    _cpu_files: KVec<sysfs::Group<CpuView<Eoi>>>,
    /// `/sys/kernel/kvm_guest_rs/pv_eoi/`.
    _files: sysfs::Group<Eoi>,
    /// The hotplug state: its removal unregisters every CPU's word with the host.
    _hotplug: Pin<KBox<cpuhp::Registration<Hotplug>>>,
    /// The override: removed next, so no CPU reads the words any more.
    _override: apic_eoi::Registration<Eoi>,
}

/// The PV EOI feature, registered; dropping it tears everything down, then logs the totals.
pub(crate) struct PvEoi {
    /// Files, hotplug state and override; `None` only in `drop()`.
    running: Option<Running>,
    /// The words: freed last.
    eoi: Arc<Eoi>,
}

impl GuestFeature for PvEoi {
    const NAME: &'static str = "pv_eoi";

    type Params = ();

    type Plan = ();

    fn check(host: Features) -> Result<core::result::Result<(), Skip>> {
        if !host.has(Feature::PV_EOI) {
            return Ok(Err(Skip::Unsupported));
        }
        Ok(feature::unowned_msr(
            PV_EOI_EN.msr(),
            "the in-tree PV EOI runs; boot with kvm-pv-ext to use this module's",
        ))
    }

    fn start(_plan: (), _params: (), env: &Env<'_>) -> Result<Self> {
        let words = feature::new_records("PV EOI", &PV_EOI_EN)?;
        let eoi = Arc::new(
            Eoi {
                words,
                cpus: PerCpuBox::new(
                    |_| CpuEoi {
                        skipped: Local64::new(0),
                        native: Local64::new(0),
                        registrations: Atomic::new(0),
                    },
                    GFP_KERNEL,
                )?,
                started: AtomicFlag::new(false),
            },
            GFP_KERNEL,
        )?;
        // The override first: with no word registered yet it always writes the register, and
        // `EBUSY` (the in-tree or Hyper-V override) is found before any MSR is written.
        let eoi_override = apic_eoi::Registration::new(eoi.clone()).inspect_err(|e| {
            if *e == EBUSY {
                pr_info!("PV EOI: another EOI override is installed; boot with kvm-pv-ext to use this module's\n");
            }
        })?;
        let hotplug = KBox::pin_init(cpuhp::Registration::new(Hotplug(eoi.clone())), GFP_KERNEL)
            // Logged per CPU by `feature::enable_record()`; the words registered on other CPUs
            // are unregistered again, and the override goes.
            .map_err(feature::refused_if_eio)?;
        eoi.started.store(true, Relaxed);
        let dir = env.sysfs.subdir(c"pv_eoi")?;
        let files = sysfs::Group::new(&dir, eoi.clone(), ATTRS)?;
        let cpu_files = counters::cpu_groups(&dir, &eoi, &eoi.cpus, CPU_ATTRS)?;
        pr_info!("PV EOI: {} on every CPU\n", PV_EOI_EN.name());
        Ok(Self {
            running: Some(Running {
                _cpu_files: cpu_files,
                _files: files,
                _hotplug: hotplug,
                _override: eoi_override,
            }),
            eoi,
        })
    }
}

impl Drop for PvEoi {
    fn drop(&mut self) {
        // Every word is unregistered and the override removed: the totals are final, and match
        // what the host completed and took back.
        drop(self.running.take());
        let cpus = &self.eoi.cpus;
        pr_info!(
            "PV EOI: unregistered after {} skipped and {} native EOIs\n",
            counters::total(cpus, |c| c.skipped.get()),
            counters::total(cpus, |c| c.native.get())
        );
    }
}
