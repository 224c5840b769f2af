// SPDX-License-Identifier: GPL-2.0

//! KVM paravirtual guest features in Rust.
//!
//! A loadable counterpart of the in-tree C guest (`arch/x86/kernel/kvm.c`, `kvmclock.c`). On load
//! it finds the KVM CPUID leaves through [`kernel::kvm_para`] and reports the paravirtual
//! features the host offers; off KVM it refuses to load with `-ENODEV`.
//!
//! Each feature has a module parameter (`kvmclock`, `steal_time`, `pv_eoi`, `async_pf`) that
//! switches it on or off; the kernel rejects a value that is not a boolean with `-EINVAL`.

use kernel::{
    kvm_para::{
        DetectError,
        Feature,
        Features,
        KvmPara, //
    },
    prelude::*, //
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
        steal_time: bool {
            default: true,
            description: "Report steal time (MSR_KVM_STEAL_TIME)",
        },
        pv_eoi: bool {
            default: true,
            description: "Use the PV EOI fast path (MSR_KVM_PV_EOI_EN)",
        },
        async_pf: bool {
            default: true,
            description: "Use async page faults with page-ready interrupts (MSR_KVM_ASYNC_PF_EN)",
        },
    },
}

/// Whether a feature was asked for by its parameter and is offered by the host.
#[derive(Clone, Copy)]
struct Switch {
    /// Parameter name.
    name: &'static str,
    /// Value of the module parameter.
    wanted: bool,
    /// Whether the host offers what the feature needs.
    offered: bool,
}

impl Switch {
    /// Returns the word that describes the switch in the load message.
    fn state(self) -> &'static str {
        match (self.wanted, self.offered) {
            (true, true) => "on",
            (true, false) => "unsupported by host",
            (false, _) => "off by parameter",
        }
    }
}

/// Returns the feature switches for the host features `f`, from the module parameters.
fn switches(f: Features) -> [Switch; 4] {
    [
        Switch {
            name: "kvmclock",
            wanted: module_parameters::kvmclock.value(),
            offered: f.has_kvmclock(),
        },
        Switch {
            name: "steal_time",
            wanted: module_parameters::steal_time.value(),
            offered: f.has(Feature::STEAL_TIME),
        },
        Switch {
            name: "pv_eoi",
            wanted: module_parameters::pv_eoi.value(),
            offered: f.has(Feature::PV_EOI),
        },
        Switch {
            name: "async_pf",
            wanted: module_parameters::async_pf.value(),
            offered: f.has_async_pf_int(),
        },
    ]
}

/// The module state.
struct KvmGuestRs {
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
        for s in switches(f) {
            pr_info!("feature {}: {}\n", s.name, s.state());
        }
        Ok(Self { kvm })
    }
}

impl Drop for KvmGuestRs {
    fn drop(&mut self) {
        pr_info!("unloaded (KVM base {:#x})\n", self.kvm.base());
    }
}
