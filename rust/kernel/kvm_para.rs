// SPDX-License-Identifier: GPL-2.0

//! KVM paravirtual interface detection.
//!
//! Finds the KVM CPUID leaves and the paravirtual features the host offers, without relying on
//! the in-tree guest code (`kvm_para_has_feature()` needs the unexported
//! `kvm_arch_para_features()`, and `kvm_para_available()` does not exist without
//! `CONFIG_KVM_GUEST`).
//!
//! C header: [`include/linux/kvm_para.h`](srctree/include/linux/kvm_para.h)
//!
//! Reference: <https://docs.kernel.org/virt/kvm/x86/cpuid.html>

pub mod abi;
pub mod msr;
pub mod shared;

use crate::{
    cpuid,
    error::{
        code::ENODEV,
        Result, //
    },
};

pub use abi::{
    DetectError,
    Feature,
    Features, //
};

/// The KVM paravirtual interface of the host, as found by [`KvmPara::detect`].
///
/// # Examples
///
/// ```
/// use kernel::kvm_para::{
///     Feature,
///     KvmPara, //
/// };
///
/// match KvmPara::detect() {
///     Ok(kvm) => {
///         assert_eq!(kvm.base() & 0xff, 0);
///         pr_info!("KVM at {:#x}, steal time: {}\n", kvm.base(), kvm.has(Feature::STEAL_TIME));
///     }
///     Err(e) => assert_eq!(e, ENODEV),
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct KvmPara {
    detection: abi::Detection,
}

impl KvmPara {
    /// Detects KVM on the current CPU.
    ///
    /// Returns [`ENODEV`] when the kernel does not run under a hypervisor or the hypervisor has
    /// no KVM signature; [`KvmPara::detect_raw`] tells which.
    pub fn detect() -> Result<Self> {
        Self::detect_raw().map_err(|_| ENODEV)
    }

    /// Detects KVM on the current CPU and reports why it was not found.
    pub fn detect_raw() -> core::result::Result<Self, DetectError> {
        abi::detect(cpuid::cpuid).map(|detection| Self { detection })
    }

    /// Returns the base of the KVM CPUID leaves.
    pub fn base(&self) -> u32 {
        self.detection.base
    }

    /// Returns the highest KVM CPUID leaf.
    pub fn max_leaf(&self) -> u32 {
        self.detection.max_leaf
    }

    /// Returns the feature bits (EAX of the feature leaf).
    pub fn features(&self) -> Features {
        self.detection.features
    }

    /// Returns the hint bits (EDX of the feature leaf).
    pub fn hints(&self) -> u32 {
        self.detection.hints
    }

    /// Returns `true` if the host offers `feature`.
    pub fn has(&self, feature: Feature) -> bool {
        self.detection.features.has(feature)
    }
}
