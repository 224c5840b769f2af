// SPDX-License-Identifier: GPL-2.0

//! The lifecycle of a paravirtual feature: check, start, drop.
//!
//! ```text
//!             check()                   start()                          drop()
//!   (none) ────────────▶ Plan ───────────────────────────▶ running ─────────────────▶ (none)
//!           host offers it,      per-CPU records, CPU hotplug,      fields in declaration
//!           nobody else owns     registrations, files               order
//!           it; else Skip
//! ```
//!
//! A feature runs when its module parameter asks for it and the host offers it ([`Switch`]);
//! [`start`] then runs [`GuestFeature::check`] and [`GuestFeature::start`]. kvmclock is the first
//! implementation; steal time, PV EOI and async page faults follow the same steps.

use kernel::{
    debugfs,
    kvm_para::{
        msr::PerCpuMsr,
        shared::{
            HostRecord,
            PerCpu, //
        },
        Features, //
    },
    msr::Msr,
    preempt::ThisCpu,
    prelude::*,
    sysfs, //
};

/// Whether a feature was asked for by its parameter and is offered by the host.
#[derive(Clone, Copy)]
pub(crate) struct Switch {
    /// Parameter name.
    pub(crate) name: &'static str,
    /// Value of the module parameter.
    pub(crate) wanted: bool,
    /// Whether the host offers what the feature needs.
    pub(crate) offered: bool,
    /// Whether this module implements the feature yet.
    pub(crate) implemented: bool,
}

impl Switch {
    /// Returns the word that describes the switch in the load message.
    pub(crate) fn state(self) -> &'static str {
        match (self.implemented, self.wanted, self.offered) {
            (false, _, _) => "not implemented yet",
            (true, true, true) => "on",
            (true, true, false) => "unsupported by host",
            (true, false, _) => "off by parameter",
        }
    }

    /// Returns `true` if the feature is to be started.
    fn is_on(self) -> bool {
        self.implemented && self.wanted && self.offered
    }
}

/// What [`GuestFeature::start`] returns when the host refused the feature's MSR (a write raised
/// `#GP`) and the feature is to be skipped rather than fail the load: `EREMOTEIO`, which no
/// kernel interface a feature uses returns. A feature whose refused MSR must fail the load
/// (kvmclock, whose faults the tests inject) returns `EIO` instead.
pub(crate) const REFUSED: Error = EREMOTEIO;

/// Maps the `EIO` of a CPU hotplug callback that found its MSR refused (logged per CPU by
/// [`enable_record`]) to [`REFUSED`], so the feature is skipped rather than failing the load.
pub(crate) fn refused_if_eio(e: Error) -> Error {
    if e == EIO {
        REFUSED
    } else {
        e
    }
}

/// Why [`GuestFeature::check`] does not let a feature start.
pub(crate) enum Skip {
    /// The host lacks what the feature needs after all. Nothing is logged.
    Unsupported,
    /// The host refused the feature's MSR (`#GP`) although its CPUID bit is set. Logged as for
    /// [`REFUSED`].
    Refused,
    /// Someone else (typically the in-tree C guest) owns what the feature needs. The text says
    /// who and how to free it; [`start`] logs it as `feature NAME: TEXT`.
    OtherOwner(&'static str),
}

/// What a feature starts with: the host's features and the module's directories.
pub(crate) struct Env<'a> {
    /// The features the host offers.
    pub(crate) host: Features,
    /// `/sys/kernel/kvm_guest_rs/`.
    pub(crate) sysfs: &'a sysfs::Dir,
    /// `/sys/kernel/debug/kvm_guest_rs/`.
    pub(crate) debugfs: &'a debugfs::Dir,
}

/// A paravirtual feature, owned by the module while it runs.
///
/// The implementing type owns everything [`GuestFeature::start`] set up, and dropping it tears
/// the feature down. Fields drop in declaration order, so declare them in teardown order: files
/// first (no more readers), then what the kernel calls into (clocksource, hooks), then the CPU
/// hotplug state (the feature's MSR is 0 on every CPU afterwards), and the per-CPU records the
/// host writes last. A `Drop` impl runs before the fields drop, so it may still read them (for a
/// summary line).
pub(crate) trait GuestFeature: Sized {
    /// Name of the feature and of its module parameter, as in the `feature NAME: ...` lines.
    const NAME: &'static str;

    /// Settings from module parameters, validated at load before any feature starts.
    type Params;

    /// What [`GuestFeature::check`] found, for [`GuestFeature::start`].
    type Plan;

    /// Checks that the host offers what the feature needs and nobody else owns it.
    ///
    /// Called in process context from the module's `init`, before the feature allocates
    /// anything. Returns `Ok(Err(_))` to skip the feature and an error to fail the load.
    fn check(host: Features) -> Result<core::result::Result<Self::Plan, Skip>>;

    /// Starts the feature: per-CPU records, CPU hotplug, registrations, files.
    ///
    /// Called in process context from the module's `init`, after [`GuestFeature::check`]. On
    /// error, whatever was set up is torn down before it returns. `EBUSY` means that a kernel
    /// interface the feature registers with has another user (e.g. the in-tree guest's steal
    /// clock), [`REFUSED`] that the host refused the feature's MSR: the feature is skipped and
    /// the load goes on.
    fn start(plan: Self::Plan, params: Self::Params, env: &Env<'_>) -> Result<Self>;
}

/// Checks and starts `T` if `switch` is on.
///
/// Returns `Ok(None)` if the feature is off, not offered, not implemented, skipped by
/// [`GuestFeature::check`] (logging why if someone else owns it), busy at
/// [`GuestFeature::start`] (`EBUSY`, logged) or refused by the host there ([`REFUSED`],
/// logged). Any other error of either step fails the load.
pub(crate) fn start<T: GuestFeature>(
    switch: Switch,
    params: T::Params,
    env: &Env<'_>,
) -> Result<Option<T>> {
    if !switch.is_on() {
        return Ok(None);
    }
    match T::check(env.host)? {
        Ok(plan) => match T::start(plan, params, env) {
            Err(e) if e == EBUSY => {
                pr_info!(
                    "feature {}: another user holds what it needs (EBUSY); off\n",
                    T::NAME
                );
                Ok(None)
            }
            Err(e) if e == REFUSED => {
                pr_info!("feature {}: the host refused its MSR (#GP); off\n", T::NAME);
                Ok(None)
            }
            r => r.map(Some),
        },
        Err(Skip::Unsupported) => Ok(None),
        Err(Skip::Refused) => {
            pr_info!("feature {}: the host refused its MSR (#GP); off\n", T::NAME);
            Ok(None)
        }
        Err(Skip::OtherOwner(why)) => {
            pr_info!("feature {}: {}\n", T::NAME, why);
            Ok(None)
        }
    }
}

/// Allocates the records of `desc` for a feature, logging `TAG: NAME has another owner` if the
/// descriptor has one (`EBUSY`).
pub(crate) fn new_records<R: HostRecord>(
    tag: &str,
    desc: &'static PerCpuMsr<R>,
) -> Result<PerCpu<R>> {
    PerCpu::new(desc).inspect_err(|e| {
        if *e == EBUSY {
            pr_err!("{}: {} has another owner\n", tag, desc.name());
        }
    })
}

/// For [`GuestFeature::check`] of a feature whose MSR the in-tree guest also uses: skips the
/// feature if the host refuses reading `msr` ([`Skip::Refused`]) or if the MSR is set on this CPU
/// already ([`Skip::OtherOwner`] with `owner`, which says who set it and how to free it).
pub(crate) fn unowned_msr(msr: Msr, owner: &'static str) -> core::result::Result<(), Skip> {
    match msr.read_safe() {
        Err(_) => Err(Skip::Refused),
        Ok(0) => Ok(()),
        Ok(_) => Err(Skip::OtherOwner(owner)),
    }
}

/// Registers the current CPU's record of `records` with the host, logging a refusal as
/// `TAG: CPUn: MSR 0x...: registration failed (errno)`; for a feature's CPU hotplug `online`
/// callback.
pub(crate) fn enable_record<R: HostRecord>(
    tag: &str,
    records: &PerCpu<R>,
    cpu: ThisCpu<'_>,
) -> Result {
    records
        .enable(cpu)
        .inspect_err(|e| msr_failed(tag, records, cpu, "registration", *e))
}

/// Unregisters the current CPU's record of `records`, logging a failure; for a feature's CPU
/// hotplug `offline` callback.
pub(crate) fn disable_record<R: HostRecord>(tag: &str, records: &PerCpu<R>, cpu: ThisCpu<'_>) {
    if let Err(e) = records.disable(cpu) {
        msr_failed(tag, records, cpu, "reset", e);
    }
}

/// Logs that `what` of the current CPU's record failed with `e`.
pub(crate) fn msr_failed<R: HostRecord>(
    tag: &str,
    records: &PerCpu<R>,
    cpu: ThisCpu<'_>,
    what: &str,
    e: Error,
) {
    pr_warn!(
        "{}: CPU{}: MSR {:#x}: {} failed ({})\n",
        tag,
        cpu.id().as_u32(),
        records.msr().number(),
        what,
        e.to_errno()
    );
}
