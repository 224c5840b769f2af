// SPDX-License-Identifier: GPL-2.0

//! KVM paravirtual guest features in Rust.
//!
//! A loadable counterpart of the in-tree C guest (`arch/x86/kernel/kvm.c`, `kvmclock.c`). On load
//! it finds the KVM CPUID leaves through [`kernel::kvm_para`] and reports the paravirtual
//! features the host offers; off KVM it refuses to load with `-ENODEV`.
//!
//! Each feature has a module parameter (`kvmclock`, `steal_time`, `pv_eoi`, `async_pf`) that
//! switches it on or off; the kernel rejects a value that is not a boolean with `-EINVAL`. A
//! feature that is on is checked and started as [`feature`] describes.
//!
//! Implemented: the `kvm-clock-rs` clocksource ([`kvmclock`]), the steal clock ([`steal`]), the
//! PV EOI fast path ([`pv_eoi`]) and async page faults ([`async_pf`]). Their counters are in
//! `/sys/kernel/kvm_guest_rs/kvmclock/`, `steal_time/`, `pv_eoi/` and `async_pf/`
//! ([`counters`]), kvmclock's test and benchmark files in `/sys/kernel/debug/kvm_guest_rs/`
//! (with the module's own, [`bench`]).

mod async_pf;
mod bench;
mod counters;
mod feature;
mod kvmclock;
mod pv_eoi;
mod steal;
mod stress;

use kernel::{
    debugfs,
    kvm_para::{
        DetectError,
        Feature,
        Features,
        KvmPara, //
    },
    prelude::*,
    sysfs, //
};

module! {
    type: KvmGuestRs,
    name: "kvm_guest_rs",
    authors: ["kvm-guest-rs developers"],
    description: "KVM paravirtual guest features in Rust",
    license: "GPL",
    params: {
        kvmclock: bool {
            default: true,
            description: "Use the kvmclock clocksource (MSR_KVM_SYSTEM_TIME_NEW)",
        },
        kvmclock_rating: i32 {
            default: 0,
            description: "Rating of kvm-clock-rs: 0 = like kvm-clock (400, 299 with an invariant TSC), or 1..499",
        },
        steal_time: bool {
            default: true,
            description: "Provide the scheduler's steal clock (MSR_KVM_STEAL_TIME); needs the kvm-pv-ext boot parameter",
        },
        steal_acc: bool {
            default: true,
            description: "Also take steal time out of the runqueue clock, as the in-tree guest does without no-steal-acc",
        },
        pv_eoi: bool {
            default: true,
            description: "Use the PV EOI fast path (MSR_KVM_PV_EOI_EN); needs the kvm-pv-ext boot parameter",
        },
        async_pf: bool {
            default: true,
            description: "Use async page faults with page-ready interrupts (MSR_KVM_ASYNC_PF_EN); needs the kvm-pv-ext boot parameter",
        },
        leak_steal_time: bool {
            default: false,
            description: "(fault injection, for tests) leak the steal-time feature at unload (its steal clock, hotplug state and sysfs files) instead of removing it",
        },
        inject_init_failure: bool {
            default: false,
            description: "(fault injection, for tests) fail the load after every feature is set up",
        },
    },
}

/// Returns the feature switches for the host features `f`, from the module parameters.
fn switches(f: Features) -> [feature::Switch; 4] {
    [
        feature::Switch {
            name: "kvmclock",
            wanted: module_parameters::kvmclock.value(),
            offered: f.has_kvmclock(),
            implemented: true,
        },
        feature::Switch {
            name: "steal_time",
            wanted: module_parameters::steal_time.value(),
            offered: f.has(Feature::STEAL_TIME),
            implemented: true,
        },
        feature::Switch {
            name: "pv_eoi",
            wanted: module_parameters::pv_eoi.value(),
            offered: f.has(Feature::PV_EOI),
            implemented: true,
        },
        feature::Switch {
            name: "async_pf",
            wanted: module_parameters::async_pf.value(),
            offered: f.has_async_pf_int(),
            implemented: true,
        },
    ]
}

/// The module state. Fields drop in declaration order: features first, the directories last.
struct KvmGuestRs {
    /// The async page fault feature, if it runs.
    _async_pf: Option<async_pf::AsyncPf>,
    /// The PV EOI feature, if it runs.
    _pv_eoi: Option<pv_eoi::PvEoi>,
    /// The steal-time feature, if it runs.
    steal: Option<steal::StealTime>,
    /// The kvmclock feature, if it runs.
    _kvmclock: Option<kvmclock::KvmClock>,
    /// `ktime_bench`, `ktime_warp`, `publish_stress` and `steal_clock_bench` in debugfs.
    _bench: bench::Bench,
    /// `/sys/kernel/debug/kvm_guest_rs/`.
    _debugfs: debugfs::Dir,
    /// `/sys/kernel/kvm_guest_rs/`.
    _sysfs: sysfs::Dir,
    /// The host interface found at load time.
    kvm: KvmPara,
}

impl kernel::Module for KvmGuestRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let kvm = match KvmPara::detect_raw() {
            Ok(kvm) => kvm,
            Err(DetectError::NoHypervisor) => {
                pr_info!("not running under a hypervisor (CPUID.1:ECX.HYPERVISOR clear), refusing to load\n");
                return Err(ENODEV);
            }
            Err(DetectError::NoSignature) => {
                pr_info!(
                    "hypervisor is not KVM (no KVMKVMKVM CPUID signature), refusing to load\n"
                );
                return Err(ENODEV);
            }
        };
        let f = kvm.features();
        pr_info!(
            "KVM detected: CPUID base {:#x}, max leaf {:#x}, features {:#010x}, hints {:#x}\n",
            kvm.base(),
            kvm.max_leaf(),
            f.raw(),
            kvm.hints()
        );
        for feature in Feature::ALL {
            pr_info!(
                "  {:<24}{}\n",
                feature.name(),
                if f.has(feature) { "yes" } else { "no" }
            );
        }
        let rating = kvmclock::rating(module_parameters::kvmclock_rating.value())?;
        let switches = switches(f);
        for s in switches {
            pr_info!("feature {}: {}\n", s.name, s.state());
        }
        let [kvmclock_switch, steal_switch, pv_eoi_switch, async_pf_switch] = switches;

        let sysfs = sysfs::Dir::new_in_kernel(c"kvm_guest_rs")?;
        let debugfs = debugfs::Dir::new(c"kvm_guest_rs");
        let bench = bench::Bench::new(&debugfs)?;
        let env = feature::Env {
            host: f,
            sysfs: &sysfs,
            debugfs: &debugfs,
        };
        // Any step may fail after kvmclock: its clocksource reaches timekeeping only once the
        // module is live.
        let kvmclock = feature::start::<kvmclock::KvmClock>(kvmclock_switch, rating, &env)?;
        let steal = feature::start::<steal::StealTime>(
            steal_switch,
            steal::Params {
                rq_accounting: module_parameters::steal_acc.value(),
            },
            &env,
        )?;
        let pv_eoi = feature::start::<pv_eoi::PvEoi>(pv_eoi_switch, (), &env)?;
        let async_pf = feature::start::<async_pf::AsyncPf>(async_pf_switch, (), &env)?;
        if module_parameters::inject_init_failure.value() {
            pr_info!("inject_init_failure: failing the load after setting everything up\n");
            return Err(EAGAIN);
        }
        Ok(Self {
            _async_pf: async_pf,
            _pv_eoi: pv_eoi,
            steal,
            _kvmclock: kvmclock,
            _bench: bench,
            _debugfs: debugfs,
            _sysfs: sysfs,
            kvm,
        })
    }
}

impl Drop for KvmGuestRs {
    fn drop(&mut self) {
        if module_parameters::leak_steal_time.value() {
            if let Some(steal) = self.steal.take() {
                pr_warn!("leak_steal_time: leaking the steal-time feature; the kernel must remove its registrations as the module goes\n");
                steal.leak();
            }
        }
        pr_info!("unloaded (KVM base {:#x})\n", self.kvm.base());
    }
}
