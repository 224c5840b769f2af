// SPDX-License-Identifier: GPL-2.0

//! Counter files in sysfs, shared by the features.
//!
//! A feature keeps its statistics per CPU in a [`PerCpuBox`]. One list of counters in a
//! [`counter_attrs!`] invocation builds both tables: the feature's directory shows each counter
//! summed over all CPUs, and `cpuN/` below it shows one possible CPU's value ([`cpu_groups`]).
//! A feature whose records the host writes also shows its MSR ([`Records`]).

use core::fmt;
use kernel::{
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    kvm_para::shared::{
        HostRecord,
        PerCpu, //
    },
    percpu::PerCpuBox,
    prelude::*,
    str::CString,
    sync::Arc,
    sysfs::{
        self,
        Attribute, //
    },
};

/// A feature whose per-CPU records are shared with the host through an MSR, for the files every
/// such feature has: `msr` ([`show_msr`]), `cpuN/enabled` ([`show_enabled`]) and
/// `cpuN/msr_value` ([`show_msr_value`]).
pub(crate) trait Records {
    /// The record type.
    type Record: HostRecord;

    /// Returns the records.
    fn records(&self) -> &PerCpu<Self::Record>;
}

/// Shows the MSR number the records are registered with, in hex.
pub(crate) fn show_msr<T: Records>(feature: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{:#x}", feature.records().msr().number())
}

/// Shows 1 if the CPU's record is registered with the host, else 0.
pub(crate) fn show_enabled<T: Records>(v: &CpuView<T>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", u8::from(v.feature.records().is_enabled(v.cpu)))
}

/// Shows the value last written to the CPU's MSR, in hex: a physical address, so give the file
/// mode 0400, as `kptr_restrict` would have it.
pub(crate) fn show_msr_value<T: Records>(
    v: &CpuView<T>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    writeln!(f, "{:#x}", v.feature.records().msr_value(v.cpu))
}

/// Returns the bytes a feature allocated per possible CPU at load: its per-CPU statistics and
/// state (`stats`), its record's slot in memory shared with the host (the slot's stride), and the
/// per-CPU pointer to that slot [`PerCpu::this_slot`] loads.
pub(crate) fn percpu_bytes<S, T: Records>(stats: &PerCpuBox<S>, feature: &T) -> usize {
    let _ = stats;
    core::mem::size_of::<S>() + feature.records().stride() + core::mem::size_of::<usize>()
}

/// Sums a statistic over all possible CPUs.
pub(crate) fn total<S: Sync>(stats: &PerCpuBox<S>, f: impl Fn(&S) -> u64) -> u64 {
    stats.iter().map(|(_, s)| f(s)).fold(0, u64::wrapping_add)
}

/// One CPU's view of a feature, for its `cpuN/` directory.
pub(crate) struct CpuView<T> {
    /// The feature.
    pub(crate) feature: Arc<T>,
    /// The CPU of the directory.
    pub(crate) cpu: CpuId,
}

/// Builds the sysfs tables of the totals (`Attribute<T>`) and of one CPU
/// (`Attribute<CpuView<T>>`) of the feature `T`, whose per-CPU statistics are its field
/// `stats: PerCpuBox<_>`, from one list of counters.
///
/// Each counter is `name: |stats| value`: the file `name` shows `value`, a `u64` computed from one
/// CPU's statistics `stats`. In the totals table it is summed over all CPUs ([`total`]), in a
/// CPU's table it is that CPU's. The totals table also gets `percpu_bytes` ([`percpu_bytes`]; `T`
/// implements [`Records`]). Each table then has its own further attributes, after the
/// counters.
macro_rules! counter_attrs {
    (
        for $feature:ty, stats: $field:ident;
        counters: {
            $($name:ident: |$stats:ident| $value:expr),* $(,)?
        }
        $(#[$total_meta:meta])*
        static $total:ident = [$($total_extra:expr),* $(,)?];
        $(#[$cpu_meta:meta])*
        static $per_cpu:ident = [$($cpu_extra:expr),* $(,)?];
    ) => {
        $(#[$total_meta])*
        static $total: &[kernel::sysfs::Attribute<$feature>] = &[
            $(
                kernel::sysfs::Attribute::new(kernel::c_str!(stringify!($name)), |c, f| {
                    writeln!(f, "{}", $crate::counters::total(&c.$field, |$stats| $value))
                }),
            )*
            kernel::sysfs::Attribute::new(c"percpu_bytes", |c, f| {
                writeln!(f, "{}", $crate::counters::percpu_bytes(&c.$field, c))
            }),
            $($total_extra,)*
        ];
        $(#[$cpu_meta])*
        static $per_cpu: &[kernel::sysfs::Attribute<$crate::counters::CpuView<$feature>>] = &[
            $(
                kernel::sysfs::Attribute::new(kernel::c_str!(stringify!($name)), |v, f| {
                    writeln!(f, "{}", v.feature.$field.get(v.cpu).map_or(0, |$stats| $value))
                }),
            )*
            $($cpu_extra,)*
        ];
    };
}
pub(crate) use counter_attrs;

/// Creates `cpuN/` in `dir` for every possible CPU of `stats`, showing `feature` through the
/// files `attrs`.
pub(crate) fn cpu_groups<T: Send + Sync, S: Sync>(
    dir: &sysfs::Dir,
    feature: &Arc<T>,
    stats: &PerCpuBox<S>,
    attrs: &'static [Attribute<CpuView<T>>],
) -> Result<KVec<sysfs::Group<CpuView<T>>>> {
    // CAST: `nr_cpu_ids()` fits in `usize`.
    let mut groups = KVec::with_capacity(nr_cpu_ids() as usize, GFP_KERNEL)?;
    for (cpu, _) in stats.iter() {
        let name = CString::try_from_fmt(fmt!("cpu{}", cpu.as_u32()))?;
        let cpu_dir = dir.subdir(&name)?;
        let view = Arc::new(
            CpuView {
                feature: feature.clone(),
                cpu,
            },
            GFP_KERNEL,
        )?;
        groups.push(sysfs::Group::new(&cpu_dir, view, attrs)?, GFP_KERNEL)?;
    }
    Ok(groups)
}
