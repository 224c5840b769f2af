// SPDX-License-Identifier: GPL-2.0

//! Undoing a leaked registration when the module that holds its callbacks goes.
//!
//! A registration whose callbacks are generic (`extern "C" fn callback<T>()`) has them compiled
//! into the crate that instantiates it, normally a module. Its `Drop` removes them from the C
//! side, but leaking it (`mem::forget()`, an `Arc` cycle) is safe Rust, and would leave the C side
//! calling freed module text after the module goes.
//!
//! A [`LeakGuard`] closes that hole. It finds the module that holds a callback by its address
//! and arms a guard (`rust/leak_guard.c`): one module notifier, registered at boot,
//! runs the guard's undo function, a non-generic function of the kernel crate, on
//! `MODULE_STATE_GOING` of that module: after the module's `exit` (or failed `init`), before its
//! memory is freed. A registration that is dropped disarms its guard first; only a leaked one is
//! still armed then. Arming and disarming never take the module notifier chain's lock, so both
//! may happen in a CPU hotplug callback or in a callback an undo runs. Code that is built in
//! needs no guard: its text is never freed.
//!
//! ```text
//!   registration           guard                        owner module
//!   new() ─── arm() ─────▶ armed ◀─────────────────────── COMING / LIVE
//!   drop() ── disarm() ──▶ (freed) ──▶ drop() undoes the registration
//!   leaked ──────────────▶ armed ──── GOING ────────────▶ undo(), logged
//! ```
//!
//! Used by `cpuhp` and `sysfs`. `time::clocksource` and `steal_clock` have their own module
//! notifiers (they also act at `MODULE_STATE_LIVE`, or live in C); other registrations of the
//! kernel crate (e.g. `debugfs`) are not covered.

use crate::{
    bindings,
    prelude::*, //
};
use core::ptr::NonNull;

/// Undoes a registration from its raw parts: `ptr` and `word`, as given to [`LeakGuard::arm`].
pub(crate) type UndoFn = unsafe extern "C" fn(ptr: *mut c_void, word: c_ulong);

/// `struct rust_leak_guard`, opaque to Rust.
type RawGuard = c_void;

/// Returns the module whose text holds the function at `code`, or NULL for built-in code.
///
/// The result may only be used while that module cannot go (e.g. while its code runs).
#[inline(never)]
pub(crate) fn module_of(code: usize) -> *mut bindings::module {
    #[cfg(CONFIG_MODULES)]
    {
        let _rcu = crate::sync::rcu::read_lock();
        // SAFETY: Called within an RCU read-side critical section, as required.
        unsafe { bindings::__module_text_address(code) }
    }
    #[cfg(not(CONFIG_MODULES))]
    {
        let _ = code;
        core::ptr::null_mut()
    }
}

/// An armed leak guard (`struct rust_leak_guard` of `rust/leak_guard.c`).
///
/// # Invariants
///
/// `guard` is armed with `rust_helper_leak_guard_arm()` and owned by `self`; dropping or
/// disarming `self` disarms and frees it. Its undo runs at most once, and not after it was
/// disarmed.
pub(crate) struct LeakGuard {
    guard: NonNull<RawGuard>,
}

// SAFETY: The guard is a kernel object that any thread may disarm.
unsafe impl Send for LeakGuard {}

// SAFETY: `&self` gives no access to the guard.
unsafe impl Sync for LeakGuard {}

impl LeakGuard {
    /// Returns a guard that calls `undo(ptr, word)` when `owner` goes, or `None` if `owner` is
    /// NULL (built-in code is never freed).
    ///
    /// Arm it once the registration exists: from then on the undo may run.
    ///
    /// # Safety
    ///
    /// - `owner` is NULL or the module that holds every function the registration calls (see
    ///   [`module_of`]), and it cannot go while this runs.
    /// - `undo` is a function of the kernel crate that is neither generic nor inlinable
    ///   (`#[inline(never)]`), so its text is not in any module.
    /// - Until the guard is disarmed, `undo(ptr, word)` may be called once, from process context
    ///   in the thread unloading the owner module (holding the module notifier chain's lock for
    ///   reading: it, and the callbacks it runs, must not register or unregister module
    ///   notifiers), and then removes the registration, so the owner's callbacks are not called
    ///   any more once it returns.
    pub(crate) unsafe fn arm(
        owner: *mut bindings::module,
        undo: UndoFn,
        ptr: *mut c_void,
        word: usize,
    ) -> Result<Option<Self>> {
        if owner.is_null() {
            return Ok(None);
        }
        #[cfg(CONFIG_MODULES)]
        {
            // SAFETY: By the safety requirements, `undo(ptr, word)` may run once `owner` goes.
            // CAST: `usize` and `c_ulong` are the same size in the kernel.
            let guard =
                unsafe { bindings::leak_guard_arm(owner, Some(undo), ptr, word as c_ulong) };
            // INVARIANT: Armed here.
            Ok(Some(Self {
                guard: NonNull::new(guard).ok_or(ENOMEM)?,
            }))
        }
        #[cfg(not(CONFIG_MODULES))]
        {
            let _ = (undo, ptr, word);
            Ok(None)
        }
    }

    /// Disarms the guard and returns `true` if its registration was undone already (it was
    /// leaked and the owner module went, and it is reachable again, e.g. through a
    /// `ManuallyDrop`), in which case the caller must not tear it down again. Waits for an undo
    /// in progress. Sleeps.
    pub(crate) fn disarm(self) -> bool {
        let guard = self.guard.as_ptr();
        core::mem::forget(self);
        // SAFETY: `guard` is armed and owned (type invariant); it is not used again.
        unsafe { disarm_raw(guard) }
    }
}

/// # Safety
///
/// `guard` is an armed guard that the caller owns; it is freed.
unsafe fn disarm_raw(guard: *mut RawGuard) -> bool {
    #[cfg(CONFIG_MODULES)]
    {
        // SAFETY: By the safety requirements.
        unsafe { bindings::leak_guard_disarm(guard) }
    }
    #[cfg(not(CONFIG_MODULES))]
    {
        // No guard is ever armed.
        let _ = guard;
        false
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        // SAFETY: `guard` is armed and owned (type invariant); it is not used again.
        unsafe { disarm_raw(self.guard.as_ptr()) };
    }
}
