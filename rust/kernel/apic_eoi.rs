// SPDX-License-Identifier: GPL-2.0

//! EOI override: end interrupts without the local APIC's EOI register when a hypervisor allows.
//!
//! Every interrupt handler ends its interrupt with `apic_eoi()`, which writes the local APIC's
//! EOI register: under a hypervisor, an exit. KVM's PV EOI lets the guest skip that write when
//! the host marked the interrupt in service as one it will complete by itself. A
//! [`Registration`] installs an [`EoiOverride`] as `apic_eoi()` at run time
//! (`apic_eoi_override_register()`); dropping it restores the APIC driver's own EOI.
//!
//! # Lifetime
//!
//! The kernel calls the override through a static call that points at a function of the module
//! that implements [`EoiOverride`], with no argument: the function finds the registered data in
//! `apic_eoi_override_data`, which the kernel sets before it installs the function and clears
//! only after it removed it and waited for every caller (an RCU grace period: the callers run in
//! hardirq context or with interrupts disabled; a CPU being brought up, which also ends
//! interrupts, is excluded by the CPU hotplug lock the static call update takes). Only one
//! override can be installed (`EBUSY` otherwise, also when the in-tree KVM or Hyper-V guest
//! installed one at boot), so the data is always the registration's own. Dropping the
//! [`Registration`] returns only once no CPU runs the function; a leaked one is removed by the
//! kernel when its owner module goes, before the module's text is freed, and its data is never
//! freed.
//!
//! # Exactly one end of interrupt
//!
//! [`EoiOverride::eoi`] gets an [`EoiContext`] by value, which only the trampoline makes, and
//! must return an [`Ended`] proof, which safe code cannot forge. Each way to get the proof
//! consumes the context and ends the interrupt once: KVM's PV EOI
//! (`PerCpu::<PvEoiWord>::pv_eoi()`, here, which gives the context back if the host did not arm
//! it) or the APIC driver's EOI ([`EoiContext::native`]). Nothing outside the EOI path can take
//! an armed bit away from its interrupt.
//!
//! C header: [`arch/x86/include/asm/apic.h`](srctree/arch/x86/include/asm/apic.h)

use crate::{
    arch,
    bindings,
    error::to_result,
    ffi::c_void,
    kvm_para::{
        abi::PvEoiWord,
        shared::PerCpu, //
    },
    leak_guard::module_of,
    preempt::ThisCpu,
    prelude::*,
    sync::Arc, //
};
use core::marker::PhantomData;

/// The interrupt in service on the current CPU, to be ended: what [`EoiOverride::eoi`] gets.
///
/// Only a [`Registration`]'s trampoline creates one, while the kernel ends an interrupt, so code
/// that holds one runs in that path; nothing else can call [`EoiOverride::eoi`]. It is neither
/// `Copy` nor `Clone`: ending the interrupt consumes it, so it is ended once.
#[must_use = "the interrupt must be ended"]
pub struct EoiContext<'a> {
    this: ThisCpu<'a>,
}

impl<'a> EoiContext<'a> {
    /// Returns the CPU that ends the interrupt.
    #[inline(always)]
    pub fn this_cpu(&self) -> ThisCpu<'a> {
        self.this
    }

    /// Ends the interrupt through the APIC driver's own EOI (the APIC's EOI register), whatever
    /// override is installed.
    #[inline(always)]
    pub fn native(self) -> Ended<'a> {
        // SAFETY: `self` is the EOI path of the interrupt in service on this CPU, which nothing
        // ended yet (ending it consumes the context).
        unsafe { bindings::apic_eoi_native() };
        Ended { _ctx: PhantomData }
    }
}

/// Proof that the interrupt in service on the current CPU has ended, through the APIC's EOI
/// register or a way the hypervisor offers.
///
/// Tied to the [`EoiContext`] it was made from (invariant in `'a`), so it cannot be kept for a
/// later interrupt.
#[must_use]
pub struct Ended<'a> {
    _ctx: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a> Ended<'a> {
    /// Returns the proof for the interrupt of `ctx`, consuming it.
    ///
    /// # Safety
    ///
    /// The interrupt in service on `ctx`'s CPU must have been ended in a way the hypervisor
    /// completes (e.g. KVM's PV EOI bit, armed for it, cleared in one instruction), exactly once.
    #[inline(always)]
    pub unsafe fn new_unchecked(ctx: EoiContext<'a>) -> Self {
        let _ = ctx;
        Self { _ctx: PhantomData }
    }
}

/// What ends interrupts on every CPU instead of the APIC driver's EOI.
///
/// `'static`: a leaked [`Registration`] keeps calling it (until its module goes), so it may not
/// borrow anything. The owner module, which the kernel watches for a leaked registration, is the
/// module whose text holds the installed function (a function monomorphised for `Self`, so
/// compiled into the module that creates the [`Registration`]), found by its address.
#[vtable]
pub trait EoiOverride: Send + Sync + Sized + 'static {
    /// Ends the interrupt of `ctx` and returns the proof: without the APIC's EOI register if it
    /// can (a hypervisor interface of the kernel crate, e.g.
    /// `kvm_para::shared::PerCpu::<PvEoiWord>::pv_eoi()`), otherwise through it
    /// ([`EoiContext::native`]). Every way to the proof consumes the context, so an interrupt is
    /// ended exactly once, whatever the implementation does.
    ///
    /// Runs in every interrupt of every CPU, in hardirq context or with interrupts disabled
    /// (also while a CPU comes online and clears its in-service interrupts, before any of its
    /// hotplug callbacks ran), never in NMI. It must not sleep, take locks, allocate, or print but
    /// deferred.
    ///
    /// Tracing: Rust code is not compiled with function-tracing entries, so the function tracer
    /// cannot recurse into it from the interrupt paths. It is instrumented by KASAN, which is
    /// fine: every `apic_eoi()` call is inside an instrumentation region, never in `noinstr`
    /// code, and KASAN's checks are valid in hardirq context.
    fn eoi<'a>(&self, ctx: EoiContext<'a>) -> Ended<'a>;
}

impl PerCpu<PvEoiWord> {
    /// KVM's PV EOI, in the EOI path `ctx`: clears bit 0 of the current CPU's word in one
    /// instruction (`__test_and_clear_bit()`: `BTR` without `LOCK`, the result as a jump) and, if
    /// it was set, returns the proof that the interrupt in service has ended; otherwise gives the
    /// context back, to end the interrupt another way.
    ///
    /// The host sets the bit only when it injects an interrupt it completes by itself once the
    /// guest cleared the bit, and it looks at the word only between two instructions of this CPU,
    /// so one unlocked instruction is what the ABI needs (a load and a store could let the host
    /// take the EOI back in between, and both would skip it). The guest only ever clears the
    /// word, so a set bit is the host's. Only code in the EOI path can call this, so no other
    /// context can take the bit away from the EOI it belongs to.
    #[inline(always)]
    pub fn pv_eoi<'a>(
        &self,
        ctx: EoiContext<'a>,
    ) -> core::result::Result<Ended<'a>, EoiContext<'a>> {
        let word = self.this_slot(ctx.this_cpu()).word::<u32>(PvEoiWord::WORD);
        // SAFETY: `word` is a valid, aligned `u32` of this CPU's record, which lives as long as
        // `self`; the bit is below 32. Only this CPU (the EOI path runs with interrupts off) and
        // the host access it, and guest accesses to records are marked (volatile or atomic).
        if unsafe { crate::arch::test_and_clear_bit_u32::<{ PvEoiWord::BIT }>(word) } {
            // SAFETY: The host armed the bit for the interrupt in service and completes it now
            // that the guest cleared it; cleared once, by this call.
            Ok(unsafe { Ended::new_unchecked(ctx) })
        } else {
            Err(ctx)
        }
    }
}

/// An [`EoiOverride`] installed as `apic_eoi()`.
///
/// # Invariants
///
/// The `T` of `data` is the data the kernel's EOI override was registered with, together with
/// `Registration::<T>::eoi_callback`; it stays registered until `drop()`.
///
/// # Examples
///
/// ```
/// use kernel::{
///     apic_eoi::{
///         Ended,
///         EoiContext,
///         EoiOverride,
///         Registration, //
///     },
///     prelude::*,
///     sync::{
///         atomic::{
///             Atomic,
///             Relaxed, //
///         },
///         Arc,
///     },
/// };
///
/// /// Counts interrupts, ending each with the APIC's own EOI.
/// struct Count(Atomic<u64>);
///
/// #[vtable]
/// impl EoiOverride for Count {
///     fn eoi<'a>(&self, ctx: EoiContext<'a>) -> Ended<'a> {
///         self.0.add(1, Relaxed);
///         ctx.native()
///     }
/// }
///
/// // `EBUSY` if the in-tree KVM or Hyper-V guest installed its own (PV EOI).
/// match Registration::new(Arc::new(Count(Atomic::new(0)), GFP_KERNEL)?) {
///     Ok(reg) => drop(reg),
///     Err(e) => assert_eq!(e, EBUSY),
/// }
/// # Ok::<(), Error>(())
/// ```
pub struct Registration<T: EoiOverride> {
    data: Arc<T>,
}

impl<T: EoiOverride> Registration<T> {
    /// Installs `data` as what ends every interrupt.
    ///
    /// The kernel gets the address of the `T` inside the [`Arc`], so the callback reaches it with
    /// one load; the registration holds a reference until it is dropped, and the caller may keep
    /// others (for its CPU hotplug callbacks or files).
    ///
    /// Fails with `EBUSY` if an override is installed already. Must be called in process
    /// context, not from a CPU hotplug callback (it takes the CPU hotplug lock).
    pub fn new(data: Arc<T>) -> Result<Self> {
        let ptr: *const T = &*data;
        // SAFETY: `eoi_callback::<T>` may be called while `apic_eoi_override_data` is `ptr`,
        // which stays valid until `drop()` unregisters it (the registration holds a reference),
        // or forever, if the registration is leaked and the kernel unregisters it when the owner
        // module goes. The owner is the module whose text holds `eoi_callback`; `new()` is
        // compiled into it too and runs now, so it is live.
        to_result(unsafe {
            bindings::apic_eoi_override_register(
                Some(Self::eoi_callback),
                ptr.cast_mut().cast::<c_void>(),
                module_of(Self::eoi_callback as *const () as usize),
            )
        })?;
        // INVARIANT: Registered above with `data`.
        Ok(Self { data })
    }

    /// Returns the installed data.
    pub fn data(&self) -> &Arc<T> {
        &self.data
    }

    /// The function installed as `apic_eoi()`.
    ///
    /// # Safety
    ///
    /// Called by the kernel while it is installed, in hardirq context or with interrupts
    /// disabled.
    unsafe extern "C" fn eoi_callback() {
        // SAFETY: While this function is installed, `apic_eoi_override_data` is the `T` of the
        // registration that installed it (only one can be installed, and `T` determines the
        // function), which outlives the installation; a single aligned load.
        let data = unsafe { (&raw const bindings::apic_eoi_override_data).read_volatile() };
        // SAFETY: As above.
        let data = unsafe { &*data.cast::<T>() };
        // SAFETY: The kernel ends interrupts with interrupts disabled, so the caller stays on
        // this CPU.
        let this = unsafe { ThisCpu::new_unchecked(arch::raw_smp_processor_id()) };
        // The override ends the interrupt: it can only return `Ended` by consuming the context.
        let _ended = data.eoi(EoiContext { this });
    }
}

/// Dropping takes the CPU hotplug lock like [`Registration::new`]: process context, not a CPU
/// hotplug callback.
impl<T: EoiOverride> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Installed in `new()` (type invariant); returns once no CPU runs the callback
        // any more, so `data` may be released (and freed) afterwards.
        unsafe { bindings::apic_eoi_override_unregister(Some(Self::eoi_callback)) };
    }
}
