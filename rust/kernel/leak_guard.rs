// SPDX-License-Identifier: GPL-2.0

//! Undoing a leaked registration when the module that holds its callbacks goes.
//!
//! A registration whose callbacks are generic (`extern "C" fn callback<T>()`) has them compiled
//! into the crate that instantiates it, normally a module. Its `Drop` removes them from the C
//! side, but leaking it (`mem::forget()`, an `Arc` cycle) is safe Rust, and would leave the C side
//! calling freed module text after the module goes.
//!
//! A [`LeakGuard`] closes that hole. It finds the module that holds a callback by its address,
//! and registers a module notifier, compiled into the kernel crate like everything it calls,
//! that runs a non-generic undo function of the kernel crate on `MODULE_STATE_GOING` of that
//! module: after the module's `exit` (or failed `init`), before its memory is freed. A
//! registration that is dropped normally disarms its guard first; only a leaked one is still
//! armed then. Code that is built in needs no guard: its text is never freed.
//!
//! ```text
//!   registration         guard                       owner module
//!   new() ──────────────▶ armed ◀───────────────────── COMING / LIVE
//!   drop() ─ disarm() ──▶ (notifier gone) ─▶ drop() undoes the registration
//!   leaked ─────────────▶ armed ──── GOING ─────────▶ undo(), logged; the drop never runs
//! ```

use crate::{
    bindings,
    prelude::*,
    sync::{
        atomic::{
            AtomicFlag,
            Relaxed, //
        },
        rcu,
    },
    types::Opaque, //
};

/// Undoes a registration from its raw parts: `ptr` and `word`, as given to [`LeakGuard::new`].
pub(crate) type UndoFn = unsafe fn(ptr: *mut c_void, word: usize);

/// A module notifier that undoes a registration if the registration is still there when the
/// module that holds its callbacks goes.
///
/// Not generic: the notifier and the undo function it calls are compiled into the kernel crate,
/// never into a module, so even a leaked guard points into no module text.
///
/// # Invariants
///
/// - `nb` is registered with `register_module_notifier()` while `registered` is set, which it is
///   from `new()` until the guard is disarmed or dropped; `owner` is the module whose text holds
///   the callbacks of the registration.
/// - `undone` is set once `undo` ran; `undo` runs at most once, and not after
///   [`LeakGuard::disarm`] returned.
pub(crate) struct LeakGuard {
    nb: Opaque<bindings::notifier_block>,
    owner: *mut bindings::module,
    undo: UndoFn,
    ptr: *mut c_void,
    word: usize,
    undone: AtomicFlag,
    registered: AtomicFlag,
}

// SAFETY: The guard is used from any thread: its notifier runs in the thread that unloads the
// owner module. `ptr` is only passed to `undo`, whose contract covers any thread.
unsafe impl Send for LeakGuard {}

// SAFETY: `&self` methods only use atomics and the notifier chain, which has its own lock.
unsafe impl Sync for LeakGuard {}

impl LeakGuard {
    /// Returns a guard that calls `undo(ptr, word)` when the module whose text holds `code`
    /// goes, or `None` if `code` is not module text (built-in code is never freed).
    ///
    /// Kept out of line so that the notifier's address is the kernel crate's copy, never one
    /// instantiated in a module.
    ///
    /// # Safety
    ///
    /// - `undo` is a function of the kernel crate that is neither generic nor inlinable
    ///   (`#[inline(never)]`), so its text is not in any module.
    /// - Until the guard is disarmed, `undo(ptr, word)` may be called once, from process context
    ///   in the thread unloading the owner module (holding no lock but the module notifier
    ///   chain's, read), and then removes the registration, so the owner's callbacks are not
    ///   called any more once it returns. `ptr` stays valid for that while the guard is armed.
    /// - `code` is the address of a callback of the registration.
    #[inline(never)]
    pub(crate) unsafe fn new(
        code: usize,
        undo: UndoFn,
        ptr: *mut c_void,
        word: usize,
    ) -> Result<Option<Pin<KBox<Self>>>> {
        let owner = {
            let _rcu = rcu::read_lock();
            // SAFETY: Called within an RCU read-side critical section, as required; the result
            // is the module holding `code`, or NULL for built-in text.
            unsafe { bindings::__module_text_address(code) }
        };
        if owner.is_null() {
            return Ok(None);
        }
        let guard = KBox::pin(
            Self {
                nb: Opaque::new(bindings::notifier_block {
                    notifier_call: Some(Self::module_notify),
                    next: core::ptr::null_mut(),
                    priority: 0,
                }),
                // The module cannot go while its code runs this constructor, so the pointer stays
                // valid for as long as it can matter.
                owner,
                undo,
                ptr,
                word,
                undone: AtomicFlag::new(false),
                registered: AtomicFlag::new(true),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `nb` is pinned in the allocation and unregistered in `drop()` before the
        // allocation is freed (or never, if the guard is leaked with its registration); the
        // callback's requirements hold. `register_module_notifier()` cannot fail.
        // INVARIANT: Registered here with `registered` set; `stop()` unregisters it.
        unsafe { bindings::register_module_notifier(guard.nb.get()) };
        Ok(Some(guard))
    }

    /// Stops the guard and returns `true` if its registration was undone already (it was leaked
    /// and the owner module went, and it is reachable again, e.g. through a `ManuallyDrop`), in
    /// which case the caller must not tear it down again. Sleeps.
    pub(crate) fn disarm(&self) -> bool {
        self.stop();
        // `stop()` waited for a notifier call in progress: `undone` is final.
        self.undone.load(Relaxed)
    }

    /// Unregisters the notifier, once; waits for a call of it in progress.
    fn stop(&self) {
        if self.registered.xchg(false, Relaxed) {
            // SAFETY: `nb` was registered in `new()` (`registered` was set).
            unsafe { bindings::unregister_module_notifier(self.nb.get()) };
        }
    }

    /// The module notifier: undoes the registration as its owner goes.
    ///
    /// # Safety
    ///
    /// `nb` must be the `nb` field of a live, pinned `LeakGuard`.
    #[inline(never)]
    unsafe extern "C" fn module_notify(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        module: *mut c_void,
    ) -> c_int {
        let nb = Opaque::cast_from(nb);
        // SAFETY: By the safety requirements, `nb` is embedded in a live `LeakGuard`.
        let this = unsafe { &*crate::container_of!(nb, LeakGuard, nb) };
        // CAST: The module states are small enumerators.
        if module.cast::<bindings::module>() == this.owner
            && action == bindings::module_state_MODULE_STATE_GOING as c_ulong
            && !this.undone.xchg(true, Relaxed)
        {
            // SAFETY: The guard is armed (its notifier runs), so by the contract of `new()`
            // `undo(ptr, word)` may run now, once (`undone` was clear).
            unsafe { (this.undo)(this.ptr, this.word) };
            // SAFETY: `owner` is still a valid module: its memory is freed only after the
            // `MODULE_STATE_GOING` notifications.
            let name = unsafe { CStr::from_char_ptr((*this.owner).name.as_ptr()) };
            pr_warn!(
                "a leaked registration of module {} outlived it; removed\n",
                name.to_str().unwrap_or("?")
            );
        }
        // CAST: `NOTIFY_DONE` is 0.
        bindings::NOTIFY_DONE as c_int
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
