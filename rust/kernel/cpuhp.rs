// SPDX-License-Identifier: GPL-2.0

//! CPU hotplug states.
//!
//! A [`Registration`] allocates a dynamic state in the `CPUHP_AP_ONLINE_DYN` range and adds one
//! instance to it, through the multi-instance API (`cpuhp_setup_state_multi()` and
//! `cpuhp_state_add_instance()`), whose callbacks receive a pointer to the instance: the
//! callbacks are methods of the registered data instead of functions on global state.
//!
//! ```text
//!               new()                                     drop()
//!   (none) ─────────────────▶ registered ─────────────────────────▶ (none)
//!            online() on every            offline() on every
//!            online CPU; a CPU that       online CPU, then the
//!            fails rolls all back         state is removed
//!
//!   while registered:   CPU comes online ──▶ online() on that CPU
//!                       CPU goes offline ──▶ offline() on that CPU
//! ```
//!
//! A registration that is leaked (`mem::forget()`) instead of dropped is removed, as by `drop()`,
//! when the module holding its callbacks goes, before the module's memory is freed, with a
//! warning: no CPU coming online afterwards calls into freed module text.
//!
//! C header: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h)
//!
//! Reference: <https://docs.kernel.org/core-api/cpu_hotplug.html>

use crate::{
    bindings,
    cpu::CpuId,
    error::{
        from_result,
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    leak_guard::{
        module_of,
        LeakGuard, //
    },
    preempt::ThisCpu,
    prelude::*,
    types::Opaque, //
};

/// Callbacks of a CPU hotplug state in the `CPUHP_AP_ONLINE_DYN` range.
///
/// Both callbacks run on the CPU they are about: in that CPU's hotplug thread (a kthread bound to
/// it) when the CPU comes online or goes offline, and on each online CPU in turn when the
/// [`Registration`] is created or dropped. They run in process context with CPU hotplug locked:
/// they may sleep, but must not register or unregister hotplug states or take
/// `cpus_read_lock()`. For a leaked registration, [`Operations::offline`] runs one last time from
/// a module notifier as the module goes: it must not register or unregister module notifiers
/// either (e.g. create or drop a `time::clocksource::Registration`).
///
/// `'static`: the callbacks may run on any CPU that comes online while the registration exists,
/// so they may not borrow anything.
#[vtable]
pub trait Operations: Send + Sync + Sized + 'static {
    /// Name of the state, shown in `/sys/devices/system/cpu/hotplug/states`.
    const NAME: &'static CStr;

    /// Sets up the current CPU, which is coming online.
    ///
    /// An error keeps the CPU from coming online (or, when the registration is created, fails the
    /// registration after [`Operations::offline`] ran on the CPUs that succeeded).
    fn online(&self, cpu: ThisCpu<'_>) -> Result;

    /// Tears down the current CPU, which is going offline. It cannot fail.
    fn offline(&self, _cpu: ThisCpu<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A registered CPU hotplug state with one instance, whose callbacks are `T`'s methods.
///
/// # Invariants
///
/// - `state` is a dynamic state set up with `cpuhp_setup_state_multi()` with the callbacks of
///   `T`, and `node` is its one instance, added with `cpuhp_state_add_instance()`; both stay
///   registered until `drop()`.
/// - `node` is embedded in a `Registration<T>`, which the callbacks rely on.
/// - `guard` (a `LeakGuard`) is `None` for built-in code; otherwise it removes `node` and
///   `state` (calling [`Operations::offline`] from module text that is still there) if the
///   registration was leaked and the module holding the callbacks goes. Once it did, `drop()`
///   does nothing.
///
/// # Examples
///
/// ```
/// use kernel::{
///     cpuhp,
///     prelude::*,
///     preempt::ThisCpu,
///     sync::{
///         atomic::{
///             Atomic,
///             Relaxed, //
///         },
///         Arc, //
///     },
/// };
///
/// struct Count(Arc<Atomic<u32>>);
///
/// #[vtable]
/// impl cpuhp::Operations for Count {
///     const NAME: &'static CStr = c"rust/doctest:online";
///     fn online(&self, _cpu: ThisCpu<'_>) -> Result {
///         self.0.add(1, Relaxed);
///         Ok(())
///     }
///     fn offline(&self, _cpu: ThisCpu<'_>) {
///         self.0.fetch_sub(1, Relaxed);
///     }
/// }
///
/// let online = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
/// let reg = KBox::pin_init(cpuhp::Registration::new(Count(online.clone())), GFP_KERNEL)?;
/// // `online()` ran once on every online CPU, the current one included.
/// let n = online.load(Relaxed);
/// assert!(n >= 1 && n <= kernel::cpu::nr_cpu_ids());
/// assert!(reg.state() > 0);
/// // Dropping the registration runs `offline()` on the same CPUs.
/// drop(reg);
/// assert_eq!(online.load(Relaxed), 0);
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: Operations> {
    // `data` comes first: callbacks may run as soon as the instance is added.
    data: T,
    #[pin]
    node: Opaque<bindings::hlist_node>,
    state: c_int,
    guard: Option<LeakGuard>,
}

// SAFETY: The C side may call the callbacks on any CPU and `drop()` removes the state from any
// thread; `T: Send + Sync` covers the data they use.
unsafe impl<T: Operations> Send for Registration<T> {}

// SAFETY: `&self` methods only give out `&T`, and `T: Sync`.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    /// Allocates a dynamic state, runs [`Operations::online`] on every online CPU and keeps
    /// calling the callbacks as CPUs come and go until the registration is dropped.
    ///
    /// Fails with `ENOSPC` if all dynamic states are in use, or with the error of a CPU's
    /// [`Operations::online`].
    pub fn new(data: T) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            data,
            node: Opaque::uninit(),
            state: {
                let teardown: Option<unsafe extern "C" fn(c_uint, *mut bindings::hlist_node) -> c_int> =
                    if T::HAS_OFFLINE {
                        Some(Self::offline_callback)
                    } else {
                        None
                    };
                // SAFETY: `T::NAME` is a static C string; the callbacks are only invoked with
                // instances added below, which are embedded in a `Registration<T>`.
                let ret = unsafe {
                    bindings::cpuhp_setup_state_multi(
                        bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                        T::NAME.as_char_ptr(),
                        Some(Self::online_callback),
                        teardown,
                    )
                };
                to_result(ret)?;
                ret
            },
            _: {
                // SAFETY: `this` points to the `Registration` being initialised; projecting to a
                // field does not create a reference.
                let node = Opaque::cast_into(unsafe { &raw const (*this.as_ptr()).node });
                // SAFETY: `data` and `state` are initialised, which is all the callbacks use
                // (`data_of()`), so they may run right away. `node` is pinned and is removed in
                // `drop()` (or below, or by the guard) before the memory goes away.
                // INVARIANT: On success, `node` is an instance of `state`.
                let ret = unsafe { bindings::__cpuhp_state_add_instance(*state, node, true) };
                if ret != 0 {
                    // SAFETY: `state` was set up above and has no instance.
                    unsafe { bindings::__cpuhp_remove_state(*state, false) };
                    return Err(Error::from_errno(ret));
                }
            },
            guard: {
                // SAFETY: `this` points to the `Registration` being initialised.
                let node = Opaque::cast_into(unsafe { &raw const (*this.as_ptr()).node });
                // The callbacks and `T`'s methods are instantiated together, in one crate.
                let owner = module_of(Self::online_callback as *const () as usize);
                // SAFETY: `owner` holds the callbacks and runs this code. `undo_leaked()` is a
                // non-generic, out-of-line kernel-crate function that removes the instance
                // `node` (added above, and leaked with the registration while the guard is
                // armed) and the state, after which no callback runs.
                let guard = unsafe {
                    LeakGuard::arm(
                        owner,
                        undo_leaked,
                        node.cast(),
                        // CAST: A state number is positive (checked above); `undo_leaked()`
                        // casts it back.
                        *state as usize,
                    )
                };
                guard.inspect_err(|_| {
                    // SAFETY: `node` is an instance of `state`, set up above.
                    unsafe {
                        bindings::__cpuhp_state_remove_instance(*state, node, true);
                        bindings::__cpuhp_remove_state(*state, false);
                    }
                })?
            },
        })
    }

    /// Returns the registered data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Returns the dynamic state number (see `/sys/devices/system/cpu/hotplug/states`).
    pub fn state(&self) -> c_int {
        self.state
    }

    /// Returns the data of the registration an instance node belongs to.
    ///
    /// Only `data` is referenced, never the whole registration: the callbacks run while
    /// [`Registration::new`] still initialises the fields after `node`.
    ///
    /// # Safety
    ///
    /// `node` must be the `node` field of a `Registration<T>` whose `data` is initialised and
    /// stays valid for `'a`.
    unsafe fn data_of<'a>(node: *mut bindings::hlist_node) -> &'a T {
        let node = Opaque::cast_from(node);
        // SAFETY: By the safety requirements, `node` is embedded in a `Registration<T>`.
        let this = unsafe { crate::container_of!(node, Self, node) };
        // SAFETY: A place projection through the raw pointer references the field only, not the
        // whole registration; `data` is initialised and valid for `'a`.
        unsafe { &(*this).data }
    }

    /// # Safety
    ///
    /// Must only be called by the hotplug core, as the startup callback of a state set up by
    /// [`Registration::new`], for an instance added there, on CPU `cpu`.
    unsafe extern "C" fn online_callback(cpu: c_uint, node: *mut bindings::hlist_node) -> c_int {
        from_result(|| {
            // SAFETY: The hotplug core only passes instances of this state, added once `data`
            // was initialised; they are removed before `data` is dropped.
            let data = unsafe { Self::data_of(node) };
            // SAFETY: `CPUHP_AP_ONLINE_DYN` callbacks run on `cpu` in its bound hotplug thread
            // (`cpuhp_invoke_ap_callback()`), which cannot migrate for the duration of the call;
            // `cpu` is a valid CPU number.
            let on = unsafe { ThisCpu::new_unchecked(CpuId::from_u32_unchecked(cpu)) };
            data.online(on)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Must only be called by the hotplug core, as the teardown callback of a state set up by
    /// [`Registration::new`], for an instance added there, on CPU `cpu`.
    unsafe extern "C" fn offline_callback(cpu: c_uint, node: *mut bindings::hlist_node) -> c_int {
        // SAFETY: As in `online_callback()`.
        let data = unsafe { Self::data_of(node) };
        // SAFETY: As in `online_callback()`.
        let on = unsafe { ThisCpu::new_unchecked(CpuId::from_u32_unchecked(cpu)) };
        data.offline(on);
        0
    }
}

/// Removes the instance `node` of the state `state` of a leaked [`Registration`] (see
/// [`LeakGuard`]).
///
/// # Safety
///
/// `node` is a live instance of the dynamic state `state`, which was set up by
/// [`Registration::new`]; neither is removed otherwise.
#[inline(never)]
unsafe extern "C" fn undo_leaked(node: *mut c_void, state: c_ulong) {
    // CAST: `state` is a `c_int` cast to `usize` by `Registration::new`.
    let state = state as c_int;
    // SAFETY: By the safety requirements. The teardown callback still runs: the module holding
    // it is going but not freed yet, and the instance's data is leaked.
    unsafe { bindings::__cpuhp_state_remove_instance(state, node.cast(), true) };
    // SAFETY: `state` has no instances left.
    unsafe { bindings::__cpuhp_remove_state(state, false) };
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for Registration<T> {
    fn drop(mut self: Pin<&mut Self>) {
        if self
            .as_mut()
            .project()
            .guard
            .take()
            .is_some_and(LeakGuard::disarm)
        {
            // Leaked, and removed as its module went (type invariants).
            return;
        }
        // SAFETY: By the type invariants `node` is an instance of `state`. Removing it runs the
        // teardown callback on every online CPU and waits for it; afterwards no callback can see
        // this instance.
        unsafe { bindings::__cpuhp_state_remove_instance(self.state, self.node.get(), true) };
        // SAFETY: `state` was set up in `new()` and has no instances left.
        unsafe { bindings::__cpuhp_remove_state(self.state, false) };
    }
}
