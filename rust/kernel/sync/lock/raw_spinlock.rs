// SPDX-License-Identifier: GPL-2.0

//! A kernel raw spinlock, held with local interrupts disabled.
//!
//! This module allows Rust code to use the kernel's `raw_spinlock_t` with
//! `raw_spin_lock_irqsave()`, for data shared with hardirq handlers that cannot be threaded, such
//! as system vectors and exception handlers: a `spinlock_t` ([`SpinLockIrq`]) is a sleeping lock
//! under `PREEMPT_RT`, which lockdep rejects there (`CONFIG_PROVE_RAW_LOCK_NESTING`). Critical
//! sections must stay short and must not take sleeping locks, also on `PREEMPT_RT`.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! [`SpinLockIrq`]: super::spinlock::SpinLockIrq

use crate::{
    ffi::c_ulong,
    interrupt::LocalInterruptDisabled, //
};

/// Creates a [`RawSpinLockIrq`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_raw_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::RawSpinLockIrq::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_raw_spinlock_irq;

/// A raw spinlock, locked with local interrupts disabled (`raw_spin_lock_irqsave()`), usable in
/// every context, including hardirq handlers that are never threaded.
///
/// Locking saves the interrupt state and unlocking restores it, so the lock may be taken with
/// interrupts enabled or already disabled.
///
/// # Examples
///
/// ```
/// use kernel::sync::{
///     new_raw_spinlock_irq,
///     RawSpinLockIrq, //
/// };
///
/// let counter = KBox::pin_init(new_raw_spinlock_irq!(0u64), GFP_KERNEL)?;
/// *counter.lock() += 1;
/// assert_eq!(*counter.lock(), 1);
///
/// // Where interrupts are disabled already, without saving and restoring their state.
/// let irq = kernel::interrupt::local_interrupt_disable();
/// *counter.lock_with(&irq) += 1;
/// drop(irq);
/// assert_eq!(*counter.lock(), 2);
/// # Ok::<(), Error>(())
/// ```
pub type RawSpinLockIrq<T> = super::Lock<T, RawSpinLockIrqBackend>;

/// A kernel `raw_spinlock_t` lock backend, with interrupts disabled while held.
pub struct RawSpinLockIrqBackend;

/// A [`Guard`] acquired from locking a [`RawSpinLockIrq`].
///
/// [`Guard`]: super::Guard
pub type RawSpinLockIrqGuard<'a, T> = super::Guard<'a, T, RawSpinLockIrqBackend>;

// SAFETY: The underlying kernel `raw_spinlock_t` object ensures mutual exclusion; the guard state
// is the interrupt state saved when locking, restored when unlocking. `relock` uses the default
// implementation, which saves the state anew.
unsafe impl super::Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::raw_spin_lock_init_named(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::raw_spin_lock_irqsave(ptr) }
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, flags: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller is the owner of the lock; `flags` was saved when it was locked.
        unsafe { bindings::raw_spin_unlock_irqrestore(ptr, *flags) }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags = 0;
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialised before use;
        // `flags` is a valid place for the saved interrupt state.
        if unsafe { bindings::raw_spin_trylock_irqsave(ptr, &mut flags) } != 0 {
            Some(flags)
        } else {
            None
        }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        assert_is_held(ptr);
    }
}

/// `lockdep_assert_held()`, which is empty without `CONFIG_LOCKDEP`: then no helper call either
/// (every guard asserts it).
#[inline(always)]
fn assert_is_held(ptr: *mut bindings::raw_spinlock_t) {
    #[cfg(CONFIG_LOCKDEP)]
    // SAFETY: The callers pass a valid, initialised lock.
    unsafe {
        bindings::raw_spin_assert_is_held(ptr)
    };
    #[cfg(not(CONFIG_LOCKDEP))]
    let _ = ptr;
}

/// A kernel `raw_spinlock_t` lock backend that leaves the interrupt state alone: what a
/// [`RawSpinLockIrq`] becomes where interrupts are known to be disabled
/// ([`RawSpinLockIrq::lock_with`]).
pub struct RawSpinLockBackend;

/// A [`RawSpinLockIrq`] locked with interrupts already disabled ([`RawSpinLockIrq::lock_with`]).
pub type RawSpinLockGuard<'a, T> = super::Guard<'a, T, RawSpinLockBackend>;

// SAFETY: The underlying kernel `raw_spinlock_t` object ensures mutual exclusion. Its only user is
// `RawSpinLockIrq::lock_with()`, whose callers prove that local interrupts stay disabled while
// the guard lives, so no interrupt on this CPU can try to take the lock meanwhile.
unsafe impl super::Backend for RawSpinLockBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::raw_spin_lock_init_named(ptr, name, key) }
    }

    /// `raw_spin_lock()` is `_raw_spin_lock()` (`include/linux/spinlock.h`), which with the SMP
    /// API (`CONFIG_SMP` or `CONFIG_DEBUG_SPINLOCK`) is an exported function unless
    /// `CONFIG_INLINE_SPIN_LOCK` inlines it (`include/linux/spinlock_api_smp.h`): called
    /// directly then, not through the helper that would wrap the call in another. Otherwise
    /// (inlined, or the UP API's macros) through the helper.
    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe {
            #[cfg(all(any(CONFIG_SMP, CONFIG_DEBUG_SPINLOCK), not(CONFIG_INLINE_SPIN_LOCK)))]
            bindings::_raw_spin_lock(ptr);
            #[cfg(not(all(
                any(CONFIG_SMP, CONFIG_DEBUG_SPINLOCK),
                not(CONFIG_INLINE_SPIN_LOCK)
            )))]
            bindings::raw_spin_lock(ptr);
        }
    }

    /// `raw_spin_unlock()`, directly `_raw_spin_unlock()` as in `lock()` where that is a
    /// function: with the SMP API and `CONFIG_UNINLINE_SPIN_UNLOCK`.
    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller is the owner of the lock.
        unsafe {
            #[cfg(all(any(CONFIG_SMP, CONFIG_DEBUG_SPINLOCK), CONFIG_UNINLINE_SPIN_UNLOCK))]
            bindings::_raw_spin_unlock(ptr);
            #[cfg(not(all(any(CONFIG_SMP, CONFIG_DEBUG_SPINLOCK), CONFIG_UNINLINE_SPIN_UNLOCK)))]
            bindings::raw_spin_unlock(ptr);
        }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialised before use.
        (unsafe { bindings::raw_spin_trylock(ptr) } != 0).then_some(())
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        assert_is_held(ptr);
    }
}

impl<T: ?Sized> super::Lock<T, RawSpinLockIrqBackend> {
    /// Acquires the lock without saving or changing the interrupt state, which `context` proves
    /// disabled (a hardirq handler, an exception entry): cheaper than [`Lock::lock()`].
    ///
    /// [`Lock::lock()`]: super::Lock::lock
    #[inline]
    pub fn lock_with<'a>(&'a self, context: &'a LocalInterruptDisabled) -> RawSpinLockGuard<'a, T> {
        let _ = context;
        // SAFETY: Both backends have the same `State` (`raw_spinlock_t`) and differ only in what
        // they do with the interrupt state, so `Lock<T, _>` has the same layout with either, and
        // `raw_spin_lock()` excludes every other holder as `raw_spin_lock_irqsave()` does. The
        // guard cannot outlive `context`, while which local interrupts are disabled (its
        // invariant), so an interrupt on this CPU does not spin on the lock held here.
        // Limitation: `RawSpinLockIrqBackend` saves and restores the interrupt state instead of
        // counting like `local_interrupt_disable()`, so a `RawSpinLockIrqGuard` taken before
        // `context` and dropped while it lives re-enables interrupts early; a `lock_with()` after
        // that can deadlock against an interrupt (no data race: the lock still excludes). Inside
        // a hardirq handler, where the saved state is always "off", it cannot happen.
        let lock: &'a super::Lock<T, RawSpinLockBackend> = unsafe { core::mem::transmute(self) };
        lock.lock()
    }
}
