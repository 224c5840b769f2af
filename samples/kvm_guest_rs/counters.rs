// SPDX-License-Identifier: GPL-2.0

//! Counter files in sysfs, shared by the features.
//!
//! A feature keeps its statistics per CPU ([`PerCpuCounters`]). One list of counters in a
//! [`counter_attrs!`] invocation builds both tables: the feature's directory shows each counter
//! summed over all CPUs, and `cpuN/` below it shows one possible CPU's value ([`cpu_groups`]).

use kernel::{
    cpu::{
        nr_cpu_ids,
        CpuId, //
    },
    prelude::*,
    str::CString,
    sync::Arc,
    sysfs::{
        self,
        Attribute, //
    },
};

/// A feature whose statistics are kept per possible CPU.
pub(crate) trait PerCpuCounters: Send + Sync + Sized + 'static {
    /// One CPU's statistics.
    type Stats;

    /// Returns the statistics of `cpu` (all zero for a CPU that is not possible).
    fn stats(&self, cpu: CpuId) -> &Self::Stats;

    /// Returns the possible CPUs, in order.
    fn cpus(&self) -> impl Iterator<Item = CpuId>;

    /// Sums a statistic over all CPUs.
    fn total(&self, f: impl Fn(&Self::Stats) -> u64) -> u64 {
        self.cpus()
            .map(|cpu| f(self.stats(cpu)))
            .fold(0, u64::wrapping_add)
    }
}

/// One CPU's view of a feature, for its `cpuN/` directory.
pub(crate) struct CpuView<T> {
    /// The feature.
    pub(crate) feature: Arc<T>,
    /// The CPU of the directory.
    pub(crate) cpu: CpuId,
}

impl<T: PerCpuCounters> CpuView<T> {
    /// Returns the statistics of the directory's CPU.
    pub(crate) fn stats(&self) -> &T::Stats {
        self.feature.stats(self.cpu)
    }
}

/// Builds the sysfs tables of the totals (`Attribute<T>`) and of one CPU
/// (`Attribute<CpuView<T>>`) of the [`PerCpuCounters`] feature `T` from one list of counters.
///
/// Each counter is `name: |stats| value`: the file `name` shows `value`, a `u64` computed from one
/// CPU's statistics `stats`. In the totals table it is summed over all CPUs
/// ([`PerCpuCounters::total`]), in a CPU's table it is that CPU's ([`CpuView::stats`]). Each
/// table then has its own further attributes, after the counters.
macro_rules! counter_attrs {
    (
        for $feature:ty;
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
                    writeln!(f, "{}", $crate::counters::PerCpuCounters::total(c, |$stats| $value))
                }),
            )*
            $($total_extra,)*
        ];
        $(#[$cpu_meta])*
        static $per_cpu: &[kernel::sysfs::Attribute<$crate::counters::CpuView<$feature>>] = &[
            $(
                kernel::sysfs::Attribute::new(kernel::c_str!(stringify!($name)), |v, f| {
                    let $stats = v.stats();
                    writeln!(f, "{}", $value)
                }),
            )*
            $($cpu_extra,)*
        ];
    };
}
pub(crate) use counter_attrs;

/// Creates `cpuN/` in `dir` for every possible CPU of `feature`, with the files `attrs`.
pub(crate) fn cpu_groups<T: PerCpuCounters>(
    dir: &sysfs::Dir,
    feature: &Arc<T>,
    attrs: &'static [Attribute<CpuView<T>>],
) -> Result<KVec<sysfs::Group<CpuView<T>>>> {
    // CAST: `nr_cpu_ids()` fits in `usize`.
    let mut groups = KVec::with_capacity(nr_cpu_ids() as usize, GFP_KERNEL)?;
    for cpu in feature.cpus() {
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
