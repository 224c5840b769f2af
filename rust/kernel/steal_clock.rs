// SPDX-License-Identifier: GPL-2.0

//! Steal clock: the time a hypervisor ran something else while a vCPU was runnable.
//!
//! The scheduler takes steal time out of the tick (`/proc/stat` "steal") and, optionally, out of
//! the runqueue clock, so that a task is not charged for time its vCPU did not run. The kernel
//! reads it through one steal clock; a [`Registration`] installs a [`StealClock`] as that clock
//! at run time (`paravirt_steal_clock_register()`) and dropping it removes it.
//!
//! # Lifetime
//!
//! The kernel calls the clock through a static call that points at a function of the module
//! that implements [`StealClock`], and passes no argument but the CPU: the function finds the
//! registered data in `paravirt_steal_clock_data`, which the kernel sets before it installs the
//! function and clears only after it removed it and waited for every caller (two RCU grace
//! periods: the callers run with interrupts or preemption disabled). Only one steal clock can be
//! installed (`EBUSY` otherwise), so the data is always the registration's own. Dropping the
//! [`Registration`] returns only once no CPU runs the function; a leaked one is removed by the
//! kernel when its owner module goes, before the module's text is freed, and its data is never
//! freed.
//!
//! C header: [`include/linux/sched/cputime.h`](srctree/include/linux/sched/cputime.h)

use crate::{
    arch, bindings,
    cpu::CpuId,
    error::to_result,
    ffi::{
        c_int,
        c_void, //
    },
    leak_guard::module_of,
    preempt::ThisCpu,
    prelude::*,
    sync::Arc,
};

/// A source of steal time for every possible CPU.
///
/// `'static`: a leaked [`Registration`] keeps calling it (until its module goes), so it may not
/// borrow anything. The owner module, which the kernel watches for a leaked registration, is the
/// module whose text holds the installed function (a function monomorphised for `Self`, so
/// compiled into the module that creates the [`Registration`]), found by its address.
#[vtable]
pub trait StealClock: Send + Sync + Sized + 'static {
    /// Returns the steal time of `cpu` in nanoseconds; `this` is the CPU the caller runs on.
    ///
    /// The kernel calls it for any possible CPU, the current one or a remote one (it reads
    /// other CPUs' runqueue clocks), always with preemption disabled: from the tick with
    /// interrupts disabled, under a runqueue's raw spinlock, from NOHZ idle exit, and once for
    /// every possible CPU at registration. Never in NMI. It must not sleep, take locks, or print
    /// but deferred.
    ///
    /// It must never return less than it returned before for the same `cpu`: the scheduler
    /// subtracts the previous value as an unsigned number. At registration every CPU's baseline
    /// is set to the value returned then, so the steal time accumulated before is not
    /// accounted; a CPU whose source starts later must start from the value it returned last.
    ///
    /// Tracing: Rust code is not compiled with function-tracing entries, so the function tracer
    /// cannot recurse into it from the scheduler paths that call it. It is instrumented by
    /// KASAN, which is fine: none of its callers is `noinstr`, and KASAN's checks are valid in
    /// every context but NMI.
    fn steal_clock(&self, this: ThisCpu<'_>, cpu: CpuId) -> u64;
}

/// Returns the kernel's steal clock of the current CPU, in nanoseconds, as the scheduler's tick
/// reads it: through whichever steal clock is installed (the in-tree KVM, Xen or VMware guest's,
/// a [`Registration`]'s, or none, which returns 0).
///
/// For comparing providers; the value is only meaningful against an earlier one of the same
/// provider. Any context but NMI, where it returns 0 with a warning (the providers may not be
/// called there). Preemption is disabled around the read (`paravirt_steal_clock_read()`), so
/// the provider cannot be removed while it runs.
#[inline]
pub fn read() -> u64 {
    // SAFETY: No requirements; the C function checks its context itself.
    unsafe { bindings::paravirt_steal_clock_read() }
}

/// A [`StealClock`] installed as the kernel's steal clock.
///
/// # Invariants
///
/// `data` is the data the kernel's steal clock was registered with, together with
/// `Registration::<T>::read_callback`; it stays registered until `drop()`.
///
/// # Examples
///
/// ```
/// use kernel::{
///     cpu::CpuId,
///     preempt::ThisCpu,
///     prelude::*,
///     steal_clock::{
///         Registration,
///         StealClock, //
///     },
///     sync::Arc,
/// };
///
/// /// No steal time on any CPU.
/// struct Zero;
///
/// #[vtable]
/// impl StealClock for Zero {
///     fn steal_clock(&self, _this: ThisCpu<'_>, _cpu: CpuId) -> u64 {
///         0
///     }
/// }
///
/// // `EBUSY` if the in-tree KVM, Xen or VMware guest installed its own.
/// match Registration::new(Arc::new(Zero, GFP_KERNEL)?, false) {
///     Ok(reg) => drop(reg),
///     Err(e) => assert_eq!(e, EBUSY),
/// }
/// # Ok::<(), Error>(())
/// ```
pub struct Registration<T: StealClock> {
    data: Arc<T>,
}

impl<T: StealClock> Registration<T> {
    /// Installs `data` as the steal clock; with `rq_accounting`, steal time is also taken out of
    /// the runqueue clock (as the in-tree guests do unless booted with `no-steal-acc`).
    ///
    /// `data` is reference-counted so that the driver can share it with its other callbacks
    /// (CPU hotplug, sysfs) while the kernel reaches the `T` itself: the clock costs one load of
    /// the registered pointer, not a second one through a box.
    ///
    /// Calls [`StealClock::steal_clock`] for every possible CPU first. Fails with `EBUSY` if a
    /// steal clock is installed already. Must be called in process context, not from a CPU
    /// hotplug callback (it takes the CPU hotplug lock).
    pub fn new(data: Arc<T>, rq_accounting: bool) -> Result<Self> {
        let ptr: *const T = Arc::as_ptr(&data);
        // SAFETY: `read_callback::<T>` may be called while `paravirt_steal_clock_data` is `ptr`,
        // which stays valid until `drop()` unregisters it and drops this reference (or forever, if
        // the registration is leaked and the kernel unregisters it when the owner module goes:
        // the reference is leaked with it). The owner is the module whose text holds
        // `read_callback`; `new()` is compiled into it too and runs now, so it is live.
        to_result(unsafe {
            bindings::paravirt_steal_clock_register(
                Some(Self::read_callback),
                ptr.cast_mut().cast::<c_void>(),
                rq_accounting,
                module_of(Self::read_callback as *const () as usize),
            )
        })?;
        // INVARIANT: Registered above with `data`.
        Ok(Self { data })
    }

    /// Returns the installed data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The function installed as the steal clock.
    ///
    /// # Safety
    ///
    /// Called by the kernel while it is installed, with preemption disabled.
    unsafe extern "C" fn read_callback(cpu: c_int) -> u64 {
        // SAFETY: While this function is installed, `paravirt_steal_clock_data` is the `T` of
        // the registration that installed it (only one can be installed, and `T` determines the
        // function), which outlives the installation; a single aligned load.
        let data = unsafe { (&raw const bindings::paravirt_steal_clock_data).read_volatile() };
        // SAFETY: As above.
        let data = unsafe { &*data.cast::<T>() };
        // SAFETY: The kernel calls the steal clock with preemption disabled.
        let this = unsafe { ThisCpu::new_unchecked(arch::raw_smp_processor_id()) };
        // CAST: The kernel passes a possible CPU, which is not negative.
        // SAFETY: Possible CPUs are below `nr_cpu_ids()`.
        let cpu = unsafe { CpuId::from_u32_unchecked(cpu as u32) };
        data.steal_clock(this, cpu)
    }
}

/// Dropping takes the CPU hotplug lock like [`Registration::new`]: process context, not a CPU
/// hotplug callback.
impl<T: StealClock> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Installed in `new()` (type invariant); returns once no CPU runs the callback
        // any more, so `data` may be freed afterwards.
        unsafe { bindings::paravirt_steal_clock_unregister(Some(Self::read_callback)) };
    }
}
