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
//! another CPU's live record (stable bit trusted) or the reference record captured at load, so
//! the clock keeps running; CPU 0's is then taken back from the vDSO.
//!
//! [`clock`] has the records, the read path and the callbacks; [`files`] the sysfs counters and
//! the debugfs tests.
//!
//! Teardown order (the field order of [`KvmClock`]): sysfs and debugfs files, then the
//! clocksource (no more reads through timekeeping), then the `hv_clock_per_cpu` hook, then the
//! hotplug state (the MSR is 0 on every CPU), and only then the records.

mod clock;
mod files;
mod policy;

use kernel::{
    cpu::CpuId,
    cpuhp,
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
    prelude::*,
    pvclock::{
        abi,
        PausedHook,
        VcpuTimeInfo,
        WallClock, //
    },
    pvclock_vdso::VdsoPage,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    time::{
        clocksource,
        clocksource::VdsoClockMode, //
    },
    tsc, //
};

use crate::{
    feature::{
        self,
        Env,
        GuestFeature,
        Skip, //
    },
    kvmclock::{
        clock::{
            Clock,
            ClockOps,
            Hotplug, //
        },
        files::Files, //
        policy::MsrPair,
    },
};

/// The kvmclock feature, registered; dropping it tears everything down in field order.
pub(crate) struct KvmClock {
    /// The sysfs and debugfs files: removed first, so no reader is left.
    _files: Files,
    /// The clocksource: unregistered next, so timekeeping reads the clock no more.
    _clocksource: clocksource::Registration<ClockOps>,
    /// The `hv_clock_per_cpu` hook for `GUEST_STOPPED`, if it could be installed.
    _paused: Option<PausedHook>,
    /// The hotplug state: its removal unregisters every CPU's record with the host.
    _hotplug: Pin<KBox<cpuhp::Registration<Hotplug>>>,
    /// The clock, with the records: freed last.
    clock: Arc<Clock>,
}

impl GuestFeature for KvmClock {
    const NAME: &'static str = "kvmclock";

    /// The rating of the clocksource, from [`rating`].
    type Params = i32;

    /// The MSR pair to use.
    type Plan = MsrPair;

    fn check(host: Features) -> Result<core::result::Result<MsrPair, Skip>> {
        let Some(pair) = policy::msr_pair(
            host.has(Feature::CLOCKSOURCE2),
            host.has(Feature::CLOCKSOURCE),
        ) else {
            return Ok(Err(Skip::Unsupported));
        };
        if PausedHook::in_use() {
            // The kernel was booted without `no-kvmclock`.
            return Ok(Err(Skip::OtherOwner(
                "the in-tree kvm-clock runs; boot with no-kvmclock to use kvm-clock-rs",
            )));
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

    fn start(pair: MsrPair, rating: i32, env: &Env<'_>) -> Result<Self> {
        let (system, wall) = msrs(pair);
        let trust_stable = env.host.has(Feature::CLOCKSOURCE_STABLE_BIT);

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

        let (records, vdso) = new_records(system, trust_stable)?;
        let records = Arc::new(records, GFP_KERNEL)?;
        let vdso_page = vdso.map(|(phys, _)| phys);
        let clock = Clock::new(
            records.clone(),
            pair,
            trust_stable,
            rating,
            epoch,
            vdso_page,
        )?;

        // Register every online CPU's record; an unusable record fails the load.
        let hotplug = KBox::pin_init(cpuhp::Registration::new(Hotplug(clock.clone())), GFP_KERNEL)
            .inspect_err(|e| {
                pr_err!(
                    "kvm-clock-rs: registering the CPUs failed ({})\n",
                    e.to_errno()
                )
            })?;
        clock.loaded();

        let paused = match PausedHook::new(records) {
            Ok(h) => Some(h),
            Err(e) => {
                pr_warn!(
                    "kvm-clock-rs: GUEST_STOPPED stays unhandled: hv_clock_per_cpu unavailable ({})\n",
                    e.to_errno()
                );
                None
            }
        };

        let files = Files::new(&clock, env.sysfs, env.debugfs)?;

        let (mul, shift) = clock
            .reference
            .as_ref()
            .map(|b| (b.mul, b.shift))
            .unwrap_or_default();
        // User space reads the clock in the vDSO only if CPU 0's record, the one it reads, is in
        // the kernel's page and stable now, with the stable bit trusted, as the in-tree
        // `kvm_setup_vsyscall_timeinfo()` decides (the vDSO rechecks the bit on every read).
        let vdso = vdso.and_then(|(_, mode)| {
            let stable = clock
                .snapshot(CpuId::from_u32(0)?)
                .is_ok_and(|s| s.body.flags & abi::TSC_STABLE_BIT != 0);
            if !stable {
                pr_info!(
                    "kvm-clock-rs: CPU0's record is not TSC_STABLE: clock_gettime() stays a system call\n"
                );
            }
            stable.then_some(mode)
        });
        // Registered with timekeeping once the module is live (see `clocksource`), so a step of
        // the module's `init` that fails after this one frees nothing timekeeping uses.
        let cs = clocksource::Registration::new(
            ClockOps(clock.clone()),
            clocksource::Options {
                rating,
                hz: 1_000_000_000,
                bits: 64,
                vdso,
            },
        )?;
        clock.vdso.store(vdso.is_some(), Relaxed);
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
            _files: files,
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
            "kvm-clock-rs: unregistering after {} reads ({} clamped, {} fallbacks, {} retries, {} guest stops)\n",
            c.total(|s| s.reads.get()),
            c.total(|s| s.clamps.get()),
            c.total(|s| s.fallbacks.get()),
            c.total(|s| s.retries.get()),
            c.total(|s| s.guest_stopped.get())
        );
    }
}

/// The records are in the kernel's vDSO page: its physical address and the clock mode that reads
/// it.
type VdsoRecords = (u64, VdsoClockMode);

/// Allocates the per-CPU records of `system`: in the kernel's vDSO pvclock page if the host's
/// stable bit is trusted (the vDSO reads CPU 0's record there), with the page's physical address
/// and clock mode; in pages of their own otherwise, or if the page is unavailable.
fn new_records(
    system: &'static PerCpuMsr<VcpuTimeInfo>,
    trust_stable: bool,
) -> Result<(PerCpu<VcpuTimeInfo>, Option<VdsoRecords>)> {
    if !trust_stable {
        pr_info!(
            "kvm-clock-rs: the host does not promise TSC_STABLE: clock_gettime() stays a system call\n"
        );
    } else {
        match VdsoPage::get() {
            Ok(page) => {
                let phys = page.phys_addr();
                // Marks the mode used: processes map the page from now on, which is harmless if
                // the clocksource does not get the mode after all.
                let mode = page.clock_mode();
                match PerCpu::new_in(system, page) {
                    Ok(records) => return Ok((records, Some((phys, mode)))),
                    // More CPUs than the page holds (the page went back).
                    Err(e) if e == E2BIG => pr_info!(
                        "kvm-clock-rs: the vDSO page holds the records of 64 CPUs, not {}: clock_gettime() stays a system call\n",
                        kernel::cpu::nr_cpu_ids()
                    ),
                    Err(e) => {
                        if e == EBUSY {
                            pr_err!("kvm-clock-rs: {} has another owner\n", system.name());
                        }
                        return Err(e);
                    }
                }
            }
            Err(e) => pr_info!(
                "kvm-clock-rs: the kernel's vDSO pvclock page is unavailable ({}): clock_gettime() stays a system call\n",
                e.to_errno()
            ),
        }
    }
    Ok((feature::new_records("kvm-clock-rs", system)?, None))
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
    let default = policy::default_rating(
        tsc::has_constant_rate(),
        tsc::has_nonstop(),
        tsc::is_unstable(),
    );
    policy::rating_from_param(param, default).ok_or_else(|| {
        pr_err!(
            "invalid kvmclock_rating={}: use 0 (automatic, {} here) or 1..={}\n",
            param,
            default,
            policy::RATING_MAX
        );
        EINVAL
    })
}
