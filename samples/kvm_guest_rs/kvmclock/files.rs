// SPDX-License-Identifier: GPL-2.0

//! The files of kvm-clock-rs: counters in sysfs, tests in debugfs.
//!
//! `/sys/kernel/kvm_guest_rs/kvmclock/` shows each counter summed over all CPUs and the clock's
//! settings; `cpuN/` below it shows one possible CPU's counters and record. The counters are
//! listed once, in the `counter_attrs!` invocation, which builds both tables.
//! `/sys/kernel/debug/kvm_guest_rs/kvmclock/` has `read`, `warp` and `read_bench`.

use core::fmt;
use kernel::{
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    debugfs,
    prelude::*,
    pvclock::abi,
    str::CString,
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
    kvmclock::{
        clock::{
            Clock,
            CpuStats, //
        },
        policy::MsrPair,
    },
};

/// One CPU's view of the clock, for its sysfs directory.
struct CpuView {
    /// The clock.
    clock: Arc<Clock>,
    /// The CPU of the directory.
    cpu: CpuId,
}

impl CpuView {
    /// Returns the statistics of the directory's CPU.
    fn stats(&self) -> &CpuStats {
        self.clock.stats(self.cpu)
    }
}

/// Builds the sysfs tables of the totals (`Attribute<Clock>`) and of one CPU
/// (`Attribute<CpuView>`) from one list of per-CPU counters.
///
/// Each counter is `name: |stats| value`: the file `name` shows `value`, a `u64` computed from one
/// CPU's [`CpuStats`] `stats`. In the totals table it is summed over all CPUs ([`Clock::total`]),
/// in a CPU's table it is that CPU's ([`CpuView::stats`]). Each table then has its own further
/// attributes, after the counters.
macro_rules! counter_attrs {
    (
        counters: {
            $($name:ident: |$stats:ident| $value:expr),* $(,)?
        }
        $(#[$total_meta:meta])*
        static $total:ident = [$($total_extra:expr),* $(,)?];
        $(#[$cpu_meta:meta])*
        static $per_cpu:ident = [$($cpu_extra:expr),* $(,)?];
    ) => {
        $(#[$total_meta])*
        static $total: &[Attribute<Clock>] = &[
            $(
                Attribute::new(kernel::c_str!(stringify!($name)), |c, f| {
                    writeln!(f, "{}", c.total(|$stats| $value))
                }),
            )*
            $($total_extra,)*
        ];
        $(#[$cpu_meta])*
        static $per_cpu: &[Attribute<CpuView>] = &[
            $(
                Attribute::new(kernel::c_str!(stringify!($name)), |v, f| {
                    let $stats = v.stats();
                    writeln!(f, "{}", $value)
                }),
            )*
            $($cpu_extra,)*
        ];
    };
}

counter_attrs! {
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
    /// Files of `/sys/kernel/kvm_guest_rs/kvmclock/cpuN/`: the CPU's counters, then these.
    static CPU_ATTRS = [
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
    _cpu_groups: KVec<sysfs::Group<CpuView>>,
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
            cpu_groups.push(sysfs::Group::new(&cpu_dir, view, CPU_ATTRS)?, GFP_KERNEL)?;
        }

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
