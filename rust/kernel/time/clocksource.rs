// SPDX-License-Identifier: GPL-2.0

//! Clocksources: counters that timekeeping reads to tell the time.
//!
//! A [`Registration`] registers a clocksource whose `read` (and optional `enable`/`disable`) are
//! the methods of an [`Operations`] implementation. The name `Clocksource` is avoided on
//! purpose: [`crate::time::ClockSource`] already means a clock ID (`CLOCK_MONOTONIC`, ...).
//!
//! # Unregistration is always safe
//!
//! `clocksource_unregister()` fails with `-EBUSY` in two cases (`clocksource_unbind()` in
//! `kernel/time/clocksource.c`), and a [`Drop`] cannot fail, so both are designed out:
//!
//! - **The clocksource is the clocksource watchdog and no replacement exists.** The watchdog
//!   holds no module reference, so a failure here would leave a timer reading freed memory (and
//!   freed module text). Every [`Registration`] sets `CLOCK_SOURCE_MUST_VERIFY`: such a
//!   clocksource is itself watched and is never selected as the watchdog
//!   (`clocksource_select_watchdog()`), so this case cannot happen. Like the TSC, it also sets
//!   `CLOCK_SOURCE_VALID_FOR_HRES` up front, so it can be selected at once, also on systems
//!   without a watchdog.
//! - **The clocksource is the current one and no replacement can be switched to** (in oneshot
//!   mode only clocksources valid for high resolution qualify, so e.g. only `jiffies` left is
//!   not enough). While a clocksource is current, timekeeping holds a reference on its `owner`
//!   module (`try_module_get()` in `change_clocksource()`, dropped only when it switches away),
//!   and the registration sets `owner` to the module that implements [`Operations`]. So:
//!   - at module unload this case cannot happen: `delete_module()` refuses to unload a module
//!     whose clocksource is current, before the module's exit code runs. The user switches
//!     away first (`current_clocksource`) or unbinds it (`unbind_clocksource`, which selects a
//!     replacement and drops the reference);
//!   - if a registration is dropped while the module lives and unregistering fails, the
//!     clocksource and its data stay registered and are leaked, never freed, with a warning.
//!     That is sound because the reference timekeeping holds keeps the module, and thus the
//!     leaked callbacks, alive for as long as timekeeping can call them; once timekeeping
//!     switched away and the module goes, its module notifier (kept with the leaked data)
//!     unregisters the clocksource before the module text is freed.
//!
//! The clocksource and `T` therefore live in their own allocation, which is freed only after a
//! successful unregistration and an RCU grace period (readers in interrupt and
//! preemption-disabled sections that fetched the old clocksource pointer finish first).
//!
//! # Registration waits for the module to be live
//!
//! A module whose `init` fails is freed regardless of references, so a clocksource registered
//! during `init` could leave timekeeping calling freed module text if a later step of `init`
//! failed and the clocksource could not be unregistered. A [`Registration`] created while its
//! module is still initialising (`MODULE_STATE_COMING`) is therefore only prepared: it is
//! registered from the module notifier when the module becomes live (`MODULE_STATE_LIVE`, after
//! `init` returned success, still within `insmod`), and dropped unregistered if `init` fails.
//! The order of the steps of `init` does not matter for soundness.
//!
//! C header: [`include/linux/clocksource.h`](srctree/include/linux/clocksource.h)

use crate::{
    bindings,
    error::{
        from_result,
        VTABLE_DEFAULT_ERROR, //
    },
    module::this_module,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    types::Opaque, //
};
use core::mem::ManuallyDrop;

/// Callbacks of a clocksource.
///
/// `'static`: a leaked [`Registration`] keeps calling them (until its module goes), so they may
/// not borrow anything.
#[vtable]
pub trait Operations: Send + Sync + Sized + 'static {
    /// Name shown in `/sys/devices/system/clocksource/clocksource0/available_clocksource`.
    const NAME: &'static CStr;

    /// Returns the current counter value.
    ///
    /// Timekeeping calls it in any context: process context with preemption enabled, hard
    /// interrupts with interrupts disabled, and NMI (`ktime_get_mono_fast_ns()`), possibly on
    /// all CPUs at once and possibly nested on one CPU. It must not sleep, take locks, print or
    /// call into timekeeping.
    fn read(&self) -> u64;

    /// Prepares the clocksource before timekeeping switches to it.
    ///
    /// Called from `stop_machine()` context with interrupts disabled. An error keeps the current
    /// clocksource.
    fn enable(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called after timekeeping switched away from the clocksource (from `stop_machine()`).
    fn disable(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Parameters of a clocksource that are known only at run time.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Selection priority, 1 (lowest) to 499 (see `include/linux/clocksource.h`); the highest
    /// rated clocksource is used.
    pub rating: i32,
    /// Counter frequency in Hz (e.g. `1_000_000_000` for a counter in nanoseconds).
    pub hz: u32,
    /// Width of the counter in bits (1 to 64); it wraps at `2^bits`.
    pub bits: u32,
    /// How user space reads the counter in the vDSO while the clocksource is the current one;
    /// `None`: it makes a system call.
    pub vdso: Option<VdsoClockMode>,
}

/// A vDSO clock mode (`enum vdso_clock_mode`): user space reads the counter itself, without a
/// system call, while the clocksource is the current one.
///
/// Only the abstraction of what the vDSO reads in that mode makes one (for
/// `VDSO_CLOCKMODE_PVCLOCK`, `kernel::pvclock_vdso::VdsoPage::clock_mode()`). Once timekeeping
/// switches to another clocksource, user space goes back to the system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VdsoClockMode(bindings::vdso_clock_mode);

impl VdsoClockMode {
    /// Returns the mode `mode`.
    ///
    /// # Safety
    ///
    /// `mode` is a value of `enum vdso_clock_mode` other than `VDSO_CLOCKMODE_NONE`, and every
    /// process can read what the vDSO reads in `mode` for ever: the kernel maps it into every
    /// process on demand, for the life of the system (for `VDSO_CLOCKMODE_PVCLOCK`: the pvclock
    /// page is set and marked used). The vDSO's counter must also equal what
    /// [`Operations::read`] returns (a correctness requirement).
    pub const unsafe fn new(mode: bindings::vdso_clock_mode) -> Self {
        Self(mode)
    }

    /// Returns the mode's value.
    pub fn as_raw(self) -> bindings::vdso_clock_mode {
        self.0
    }
}

/// [`Pending::state`]: not registered yet.
const PENDING: u32 = 0;
/// [`Pending::state`]: registered with timekeeping.
const REGISTERED: u32 = 1;
/// [`Pending::state`]: `clocksource_register_hz()` failed.
const FAILED: u32 = 2;

/// The clocksource and its data, in an allocation of their own (see the module documentation).
#[pin_data]
struct Inner<T: Operations> {
    // `data` comes first: `read` may be called as soon as `cs` is registered.
    data: T,
    #[pin]
    cs: Opaque<bindings::clocksource>,
}

/// What registering a clocksource needs, with the module notifier that does it once the owner
/// module is live.
///
/// Not generic: its callback is compiled into the kernel crate, never into a module, so even a
/// leaked [`Registration`] leaves no notifier pointing into unloaded module text.
///
/// # Invariants
///
/// `cs` points to a `struct clocksource` that stays valid and pinned while `self` exists, and is
/// registered only by [`Pending::register`].
struct Pending {
    cs: *mut bindings::clocksource,
    /// Frequency to register `cs` with.
    hz: u32,
    /// [`PENDING`], [`REGISTERED`] or [`FAILED`]; leaves [`PENDING`] once.
    state: Atomic<u32>,
    /// The owner module, NULL for built-in code.
    owner: *mut bindings::module,
    /// Registers `cs` when `owner` becomes live.
    live: Opaque<bindings::notifier_block>,
}

impl Pending {
    /// Returns `true` if the owner module finished its `init` (or the code is built in).
    fn owner_live(&self) -> bool {
        if self.owner.is_null() {
            return true;
        }
        // SAFETY: `owner` is the module whose code created the registration, which lives at
        // least as long as it; the module loader writes its state, read here with one load.
        let state =
            unsafe { crate::sync::atomic::atomic_load(&raw mut (*self.owner).state, Relaxed) };
        state == bindings::module_state_MODULE_STATE_LIVE
    }

    /// Registers `cs` unless that happened (or failed) already; returns the error of
    /// `clocksource_register_hz()` if this call tried and failed.
    fn register(&self) -> Result {
        if self.state.cmpxchg(PENDING, FAILED, Relaxed).is_err() {
            return Ok(());
        }
        // SAFETY: `cs` is initialised and pinned (type invariant) and stays valid until
        // `Registration::drop()` unregisters it (or forever, if that fails); its data is
        // initialised, so the callbacks may run at once.
        let ret = unsafe { bindings::clocksource_register_hz(self.cs, self.hz) };
        if ret != 0 {
            pr_warn!("clocksource registration failed ({})\n", ret);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: `cs` is registered; `Registration::drop()` unregisters it.
        self.state.store(REGISTERED, Relaxed);
        Ok(())
    }

    /// The module notifier: registers `cs` once the owner is live, and makes sure it is gone
    /// when the owner goes.
    ///
    /// A [`Registration`] that is dropped unregisters this notifier first (a module's `exit`
    /// runs before the `MODULE_STATE_GOING` notification), so `MODULE_STATE_GOING` only reaches
    /// a leaked one (`mem::forget()`): still pending, it must never register (the module text
    /// its callbacks point to is about to be freed); registered, it is unregistered here and
    /// its memory stays leaked. Unregistering cannot fail then: a current clocksource holds a
    /// reference on its owner, so the module could not be unloaded.
    ///
    /// # Safety
    ///
    /// `nb` must be the `live` field of a live, pinned `Pending`.
    // Out of line: its address, taken in generic code, must be the kernel crate's copy.
    #[inline(never)]
    unsafe extern "C" fn module_notify(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        module: *mut c_void,
    ) -> c_int {
        let nb = Opaque::cast_from(nb);
        // SAFETY: By the safety requirements, `nb` is embedded in a live `Pending`.
        let this = unsafe { &*crate::container_of!(nb, Pending, live) };
        if module.cast::<bindings::module>() != this.owner {
            // CAST: `NOTIFY_DONE` is 0.
            return bindings::NOTIFY_DONE as c_int;
        }
        // CAST: The module states are small enumerators.
        if action == bindings::module_state_MODULE_STATE_LIVE as c_ulong {
            // A failure is logged; `is_registered()` tells the owner.
            let _ = this.register();
        } else if action == bindings::module_state_MODULE_STATE_GOING as c_ulong
            && this.state.cmpxchg(PENDING, FAILED, Relaxed).is_err()
            && this.state.load(Relaxed) == REGISTERED
        {
            // SAFETY: `cs` is registered (type invariant of `Registration`) and stays valid: its
            // registration was leaked, so its memory is never freed.
            let ret = unsafe { bindings::clocksource_unregister(this.cs) };
            if ret == 0 {
                this.state.store(FAILED, Relaxed);
            }
            pr_warn!(
                "a leaked clocksource registration outlived its module; unregistered ({})\n",
                ret
            );
        }
        // CAST: `NOTIFY_DONE` is 0.
        bindings::NOTIFY_DONE as c_int
    }
}

/// A registered clocksource.
///
/// # Invariants
///
/// - `pending.cs` is `inner.cs`. Once `pending.state` is `REGISTERED`, `inner.cs` is
///   registered with `clocksource_register_hz()` and stays registered or unbound until `drop()`
///   (or, for a leaked registration, until the owner module goes); `inner` is not dropped before
///   `clocksource_unregister()` succeeded.
/// - If `notifier` is set, `pending.live` is registered with `register_module_notifier()`;
///   `pending` is not dropped before it is unregistered.
///
/// # Examples
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::atomic::{
///         Atomic,
///         Relaxed, //
///     },
///     time::clocksource::{
///         Operations,
///         Options,
///         Registration, //
///     },
/// };
///
/// /// A clocksource that counts its own reads, rated too low to ever be selected.
/// struct Counter(Atomic<u64>);
///
/// #[vtable]
/// impl Operations for Counter {
///     const NAME: &'static CStr = c"rust-doctest-counter";
///     fn read(&self) -> u64 {
///         self.0.fetch_add(1, Relaxed)
///     }
/// }
///
/// let opts = Options { rating: 1, hz: 1_000_000, bits: 64, vdso: None };
/// let reg = Registration::new(Counter(Atomic::new(0)), opts)?;
/// // Built-in code (the doctests) is always live, so the clocksource is registered at once.
/// assert!(reg.is_registered());
/// assert_eq!(reg.data().read() + 1, reg.data().read());
/// drop(reg);
/// # Ok::<(), Error>(())
/// ```
pub struct Registration<T: Operations> {
    inner: ManuallyDrop<Pin<KBox<Inner<T>>>>,
    pending: ManuallyDrop<Pin<KBox<Pending>>>,
    notifier: bool,
}

// SAFETY: Unregistration may happen on any thread; `T: Send + Sync`; `Pending` holds the address
// of the clocksource this registration owns, the owner module's address and atomics.
unsafe impl<T: Operations> Send for Registration<T> {}

// SAFETY: `&self` methods only give out `&T`, and `T: Sync`.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    /// Registers `data` as a clocksource, or, while the owner module initialises, prepares it to
    /// be registered when the module becomes live (see the module documentation).
    ///
    /// Timekeeping switches to it at registration if it has the highest rating (or is named by
    /// the `clocksource=` override). Fails with `EINVAL` for a rating outside 1..=499, a width
    /// outside 1..=64 bits or a zero frequency, and with the error of `clocksource_register_hz()`
    /// when registering at once fails (a failure of the deferred registration is logged, and
    /// [`Registration::is_registered`] stays `false`).
    ///
    /// Process context; not from a CPU hotplug callback (switching clocksources runs
    /// `stop_machine()`, which takes the hotplug lock), and neither is the drop.
    pub fn new(data: T, opts: Options) -> Result<Self> {
        if !(1..=499).contains(&opts.rating) || !(1..=64).contains(&opts.bits) || opts.hz == 0 {
            return Err(EINVAL);
        }
        let mask = if opts.bits == 64 {
            u64::MAX
        } else {
            (1u64 << opts.bits) - 1
        };
        let owner = this_module::<T::OwnerModule>().as_ptr();
        let inner = KBox::pin_init(
            try_pin_init!(Inner {
                data,
                cs <- Opaque::try_ffi_init(move |slot: *mut bindings::clocksource| {
                    let cs = bindings::clocksource {
                        name: T::NAME.as_char_ptr(),
                        rating: opts.rating,
                        mask,
                        // CAST: The `CLOCK_SOURCE_*` flags fit in `c_ulong`.
                        flags: (bindings::CLOCK_SOURCE_IS_CONTINUOUS
                            | bindings::CLOCK_SOURCE_VALID_FOR_HRES
                            | bindings::CLOCK_SOURCE_MUST_VERIFY) as c_ulong,
                        read: Some(Self::read_callback),
                        enable: if T::HAS_ENABLE {
                            Some(Self::enable_callback)
                        } else {
                            None
                        },
                        disable: if T::HAS_DISABLE {
                            Some(Self::disable_callback)
                        } else {
                            None
                        },
                        owner,
                        vdso_clock_mode: opts
                            .vdso
                            .map_or(bindings::vdso_clock_mode_VDSO_CLOCKMODE_NONE, |m| m.0),
                        ..pin_init::zeroed()
                    };
                    // SAFETY: `slot` is valid for writes.
                    unsafe { slot.write(cs) };
                    Ok::<(), Error>(())
                }),
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: `cs` is `inner.cs`, pinned in its allocation, which `drop()` frees only
        // after `pending`'s notifier is gone and `cs` is unregistered.
        let pending = KBox::pin(
            Pending {
                cs: inner.cs.get(),
                hz: opts.hz,
                state: Atomic::new(PENDING),
                owner,
                live: Opaque::new(bindings::notifier_block {
                    notifier_call: Some(Pending::module_notify),
                    next: core::ptr::null_mut(),
                    priority: 0,
                }),
            },
            GFP_KERNEL,
        )?;
        let mut this = Self {
            inner: ManuallyDrop::new(inner),
            pending: ManuallyDrop::new(pending),
            notifier: false,
        };
        if !this.pending.owner.is_null() {
            // SAFETY: `live` is pinned in `pending`, which lives until `drop()` unregisters it;
            // the callback's requirements hold. `register_module_notifier()` cannot fail.
            unsafe { bindings::register_module_notifier(this.pending.live.get()) };
            // INVARIANT: Registered here, unregistered in `drop()`.
            this.notifier = true;
        }
        // The module may have become live before the notifier was in place (a registration from
        // another thread than `init`); `register()` runs only once.
        if this.pending.owner_live() {
            this.pending.register()?;
        }
        Ok(this)
    }

    /// Returns `true` once the clocksource is registered with timekeeping (it is not while the
    /// owner module initialises).
    pub fn is_registered(&self) -> bool {
        self.pending.state.load(Relaxed) == REGISTERED
    }

    /// Returns the registered data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// Returns the `Inner` a `struct clocksource` belongs to.
    ///
    /// # Safety
    ///
    /// `cs` must be the `cs` field of a live `Inner<T>`.
    unsafe fn inner<'a>(cs: *mut bindings::clocksource) -> &'a Inner<T> {
        let cs = Opaque::cast_from(cs);
        // SAFETY: By the safety requirements, `cs` is embedded in a live `Inner<T>`.
        unsafe { &*crate::container_of!(cs, Inner<T>, cs) }
    }

    /// # Safety
    ///
    /// `cs` must be the `cs` field of a live `Inner<T>` (timekeeping only calls it for the
    /// registered clocksource).
    unsafe extern "C" fn read_callback(cs: *mut bindings::clocksource) -> u64 {
        // SAFETY: Guaranteed by the safety requirements.
        unsafe { Self::inner(cs) }.data.read()
    }

    /// # Safety
    ///
    /// As for `read_callback()`.
    unsafe extern "C" fn enable_callback(cs: *mut bindings::clocksource) -> c_int {
        from_result(|| {
            // SAFETY: Guaranteed by the safety requirements.
            unsafe { Self::inner(cs) }.data.enable()?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// As for `read_callback()`.
    unsafe extern "C" fn disable_callback(cs: *mut bindings::clocksource) {
        // SAFETY: Guaranteed by the safety requirements.
        unsafe { Self::inner(cs) }.data.disable()
    }
}

impl<T: Operations> Drop for Registration<T> {
    fn drop(&mut self) {
        if self.notifier && self.pending.state.load(Relaxed) != REGISTERED {
            // Pending: stop the notifier first. Unregistering waits for a notifier call in
            // progress, so `state` is final afterwards.
            // SAFETY: `live` was registered in `new()` (type invariant).
            unsafe { bindings::unregister_module_notifier(self.pending.live.get()) };
            self.notifier = false;
        }
        if self.pending.state.load(Relaxed) == REGISTERED {
            // SAFETY: `cs` was registered (type invariant); unregistering an unbound clocksource
            // succeeds and does nothing.
            let ret = unsafe { bindings::clocksource_unregister(self.inner.cs.get()) };
            if ret != 0 {
                // Still the current clocksource with nowhere to switch to: timekeeping holds a
                // reference on the owner module, which keeps the callbacks alive. Keep the data,
                // and the module notifier, which unregisters the clocksource once timekeeping
                // switched away and the module goes. The notifier was stopped above if the
                // clocksource was still pending then and registered meanwhile: start it again.
                if !self.notifier && !self.pending.owner.is_null() {
                    // SAFETY: `live` is pinned in `pending`, which is leaked from here on, and
                    // is not registered (`notifier` is false).
                    unsafe { bindings::register_module_notifier(self.pending.live.get()) };
                    self.notifier = true;
                }
                pr_warn!(
                    "clocksource {} is in use and cannot be unregistered ({}); leaking it\n",
                    T::NAME.to_str().unwrap_or("?"),
                    ret
                );
                return;
            }
            // Readers in interrupt, NMI or preemption-disabled sections that fetched the
            // clocksource pointer before the switch finish within a grace period. A task
            // preempted inside `ktime_get()` between loading the pointer and calling `read` is
            // not covered, as for every modular clocksource in C (timekeeping reads it under a
            // seqcount only); closing that needs timekeeping's cooperation.
            // SAFETY: Called in process context (a `Drop` of a registration is not atomic).
            unsafe { bindings::synchronize_rcu() };
        }
        if self.notifier {
            // SAFETY: `live` was registered in `new()` (type invariant).
            unsafe { bindings::unregister_module_notifier(self.pending.live.get()) };
        }
        // SAFETY: `cs` is not registered and no reader is left, so `inner` may be dropped, and
        // with the notifier gone, `pending` too; neither is used again.
        unsafe {
            ManuallyDrop::drop(&mut self.inner);
            ManuallyDrop::drop(&mut self.pending);
        }
    }
}
