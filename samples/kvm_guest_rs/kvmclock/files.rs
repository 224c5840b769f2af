// SPDX-License-Identifier: GPL-2.0

//! The files of kvm-clock-rs: counters in sysfs, tests in debugfs.
//!
//! `/sys/kernel/kvm_guest_rs/kvmclock/` shows each counter summed over all CPUs and the clock's
//! settings; `cpuN/` below it shows one possible CPU's counters and record. The counters are
//! listed once, in the [`counter_attrs!`] invocation, which builds both tables.
//! `/sys/kernel/debug/kvm_guest_rs/kvmclock/` has `read`, `warp` and `read_bench`.

use core::fmt;
use kernel::{
    cpu::CpuId,
    debugfs,
    kvm_para::shared::PerCpu,
    prelude::*,
    pvclock::{
        abi,
        VcpuTimeInfo, //
    },
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    sysfs::{
        self,
        Attribute, //
    },
};

use crate::{
    bench::{
        ktime_ns,
        time_calls,
        WARP_READS, //
    },
    counters::{
        self,
        counter_attrs,
        CpuView, //
    },
    kvmclock::{
        clock::Clock,
        policy::MsrPair, //
    },
};

counter_attrs! {
    for Clock, stats: stats;
    counters: {
        reads: |s| s.reads.get(),
        retries: |s| s.retries.get(),
        clamps: |s| s.clamps.get(),
        fallbacks: |s| s.fallbacks.get(),
        guest_stopped: |s| s.guest_stopped.get(),
        registrations: |s| s.registrations.load(Relaxed),
        invalid_records: |s| s.invalid.load(Relaxed),
    }
    /// Files of `/sys/kernel/kvm_guest_rs/kvmclock/`: the counters summed over all CPUs, then
    /// these.
    static ATTRS = [
        Attribute::new(c"stable_trusted", |c, f| {
            writeln!(f, "{}", u8::from(c.trust_stable))
        }),
        Attribute::new(c"rating", |c, f| writeln!(f, "{}", c.rating)),
        Attribute::new(c"vdso", |c, f| {
            writeln!(
                f,
                "{}",
                if !c.vdso.load(Relaxed) {
                    "none"
                } else if c.vdso_withdrawn.load(Relaxed) {
                    "withdrawn"
                } else {
                    "pvclock"
                }
            )
        }),
        Attribute::with_mode(c"vdso_page", 0o400, |c, f| match c.vdso_page {
            Some(p) => writeln!(f, "{:#x}", p),
            None => writeln!(f, "none"),
        }),
        Attribute::new(c"msr", counters::show_msr::<Clock>),
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
    /// Files of `/sys/kernel/kvm_guest_rs/kvmclock/cpuN/`: the CPU's counters, then these.
    static CPU_ATTRS = [
        Attribute::new(c"enabled", counters::show_enabled::<Clock>),
        Attribute::with_mode(c"msr_value", 0o400, counters::show_msr_value::<Clock>),
        Attribute::new(c"record", |v: &CpuView<Clock>, f| {
            // The words as they are, unchecked: for comparing with what user space maps.
            let r = v.feature.records.slot(v.cpu);
            writeln!(
                f,
                "version {} tsc_timestamp {} system_time {}",
                r.load_u32(0),
                r.load_u64(8),
                r.load_u64(16)
            )
        }),
        Attribute::new(c"stable", |v: &CpuView<Clock>, f| match v.feature.snapshot(v.cpu) {
            Ok(s) => writeln!(f, "{}", u8::from(s.body.flags & abi::TSC_STABLE_BIT != 0)),
            Err(_) => writeln!(f, "-"),
        }),
    ];
}

impl counters::Records for Clock {
    type Record = VcpuTimeInfo;

    fn records(&self) -> &PerCpu<VcpuTimeInfo> {
        &self.records
    }
}

impl Clock {
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

/// The sysfs and debugfs files of kvm-clock-rs. Dropping it removes them, waiting for reads in
/// progress.
pub(super) struct Files {
    /// `/sys/kernel/kvm_guest_rs/kvmclock/cpuN/`, one per possible CPU.
    _cpu_groups: KVec<sysfs::Group<CpuView<Clock>>>,
    /// `/sys/kernel/kvm_guest_rs/kvmclock/`.
    _group: sysfs::Group<Clock>,
    /// `/sys/kernel/debug/kvm_guest_rs/kvmclock/`.
    _debugfs: KVec<Pin<KBox<debugfs::File<Arc<Clock>>>>>,
}

impl Files {
    /// Creates the directory `kvmclock` and its files in `sysfs_parent` and in `debugfs_parent`.
    pub(super) fn new(
        clock: &Arc<Clock>,
        sysfs_parent: &sysfs::Dir,
        debugfs_parent: &debugfs::Dir,
    ) -> Result<Self> {
        let dir = sysfs_parent.subdir(c"kvmclock")?;
        let group = sysfs::Group::new(&dir, clock.clone(), ATTRS)?;
        let cpu_groups = counters::cpu_groups(&dir, clock, &clock.stats, CPU_ATTRS)?;

        let ddir = debugfs_parent.subdir(c"kvmclock");
        let mut files = KVec::with_capacity(3, GFP_KERNEL)?;
        files.push(
            clock_file(&ddir, c"read", clock, &|c, f| {
                // One read of each clock, back to back: kvm-clock-rs, then `ktime_get()`.
                let kvm = c.read();
                let mono = ktime_ns(c.base);
                writeln!(f, "{} {}", kvm, mono)
            })?,
            GFP_KERNEL,
        )?;
        files.push(
            clock_file(&ddir, c"warp", clock, &|c, f| c.warp_test(f))?,
            GFP_KERNEL,
        )?;
        files.push(
            clock_file(&ddir, c"read_bench", clock, &|c, f| {
                time_calls(f, || c.read())
            })?,
            GFP_KERNEL,
        )?;
        Ok(Self {
            _cpu_groups: cpu_groups,
            _group: group,
            _debugfs: files,
        })
    }
}
