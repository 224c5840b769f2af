// SPDX-License-Identifier: GPL-2.0

//! sysfs directories and read-only attributes.
//!
//! A [`Dir`] is a kobject directory, for example `/sys/kernel/<name>` or a subdirectory of
//! another [`Dir`]. A [`Group`] adds read-only files to a directory; each file shows a value
//! computed from shared data (`Arc<T>`) by a plain function, as in:
//!
//! ```text
//!   /sys/kernel/kvm_guest_rs/              Dir::new_in_kernel(c"kvm_guest_rs")
//!   /sys/kernel/kvm_guest_rs/kvmclock/     dir.subdir(c"kvmclock")
//!   /sys/kernel/kvm_guest_rs/kvmclock/reads  Group::new(&kvmclock, data, &ATTRS)
//! ```
//!
//! Dropping a [`Group`] removes its files and waits for `show()` calls in progress
//! (`sysfs_remove_group()` drains the kernfs active references), so the data may go away right
//! after. A directory disappears once its [`Dir`] and all its children are dropped.
//!
//! C headers: [`include/linux/kobject.h`](srctree/include/linux/kobject.h),
//! [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h)
//!
//! Reference: <https://docs.kernel.org/core-api/kobject.html>

use crate::{
    bindings,
    error::to_result,
    leak_guard::{
        module_of,
        LeakGuard, //
    },
    prelude::*,
    str::Formatter,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc, //
    },
    types::Opaque, //
};
use core::{
    fmt,
    mem::ManuallyDrop,
    ptr::NonNull, //
};

/// A kernel object (`struct kobject`).
///
/// # Invariants
///
/// The pointer is a valid `struct kobject` with a non-zero reference count.
#[repr(transparent)]
pub struct Kobject(Opaque<bindings::kobject>);

impl Kobject {
    /// Returns the raw `struct kobject`.
    pub fn as_raw(&self) -> *mut bindings::kobject {
        self.0.get()
    }
}

// SAFETY: Every `struct kobject` is reference counted, and `kobject_put()` may run on any thread.
unsafe impl AlwaysRefCounted for Kobject {
    fn inc_ref(&self) {
        // SAFETY: A shared reference implies a non-zero reference count.
        unsafe { bindings::kobject_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns the reference being released.
        unsafe { bindings::kobject_put(obj.cast().as_ptr()) };
    }
}

// SAFETY: kobjects are used from any thread; their state is protected by the kernel.
unsafe impl Send for Kobject {}

// SAFETY: As above.
unsafe impl Sync for Kobject {}

/// A directory in sysfs, owned through a reference to its kobject.
///
/// # Examples
///
/// ```
/// use kernel::sysfs::Dir;
///
/// let top = Dir::new_in_kernel(c"rust_sysfs_doctest")?;
/// let sub = top.subdir(c"sub")?;
/// // Children keep their parent alive; the directories go when both handles are dropped.
/// drop(top);
/// drop(sub);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct Dir {
    kobj: ARef<Kobject>,
}

impl Dir {
    /// Creates `/sys/kernel/<name>`.
    ///
    /// Fails with `ENOMEM`, also when the directory exists already (the kernel then logs the
    /// duplicate name).
    pub fn new_in_kernel(name: &CStr) -> Result<Self> {
        // SAFETY: `kernel_kobj` is set up at boot and never freed.
        let parent = unsafe { bindings::kernel_kobj };
        Self::create(name, parent)
    }

    /// Creates a subdirectory of this directory.
    pub fn subdir(&self, name: &CStr) -> Result<Self> {
        Self::create(name, self.kobj.as_raw())
    }

    fn create(name: &CStr, parent: *mut bindings::kobject) -> Result<Self> {
        // SAFETY: `name` is a valid C string (copied by the callee); `parent` is a live kobject.
        let kobj = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        let kobj = NonNull::new(kobj).ok_or(ENOMEM)?;
        Ok(Self {
            // SAFETY: `kobject_create_and_add()` returned a kobject with a reference we own.
            kobj: unsafe { ARef::from_raw(kobj.cast()) },
        })
    }

    /// Returns the kobject of the directory.
    pub fn kobject(&self) -> &Kobject {
        &self.kobj
    }
}

/// The function that formats the contents of an attribute of `T`.
pub type ShowFn<T> = fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result;

/// A read-only attribute of `T`: a file name, its mode and the function that formats its
/// contents.
///
/// # Invariants
///
/// `mode` has read bits only, and at least the owner's.
pub struct Attribute<T> {
    name: &'static CStr,
    mode: u16,
    show: ShowFn<T>,
}

impl<T> Attribute<T> {
    /// Creates an attribute named `name`, readable by everyone (mode 0444), that shows
    /// `show(data)`.
    ///
    /// `show` runs in process context and may sleep, but must not register or unregister module
    /// notifiers (the removal of a leaked group waits for it from one); its output is cut at
    /// `PAGE_SIZE`.
    pub const fn new(name: &'static CStr, show: ShowFn<T>) -> Self {
        Self::with_mode(name, 0o444, show)
    }

    /// Creates an attribute named `name` with the file mode `mode`, for example 0400 for a value
    /// only root may read (a kernel or physical address, as `kptr_restrict` keeps from other
    /// users).
    ///
    /// # Panics
    ///
    /// Panics (at build time, in a `static` or `const`) if `mode` has a bit other than read
    /// bits (attributes have no `store()`), or lacks the owner's read bit.
    pub const fn with_mode(name: &'static CStr, mode: u16, show: ShowFn<T>) -> Self {
        assert!(mode & !0o444 == 0 && mode & 0o400 != 0);
        // INVARIANT: Checked above.
        Self { name, mode, show }
    }
}

/// One attribute of a group, with what its callback needs.
struct Slot<T> {
    kattr: Opaque<bindings::kobj_attribute>,
    show: ShowFn<T>,
    data: *const T,
}

/// Formats `data` with `show`.
struct ShowAdapter<'a, T>(&'a T, ShowFn<T>);

impl<T> fmt::Display for ShowAdapter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

/// Read-only files in a sysfs directory, showing values of `T`.
///
/// # Invariants
///
/// - `group` is created in `dir` with `sysfs_create_group()` and removed in `drop()`. It refers
///   to `_ptrs` and `_attrs`, whose elements stay at their addresses (the vectors are never
///   changed after creation) and point to the data in `data`.
/// - `dir` holds a reference on the kobject, dropped in `drop()`.
/// - `guard` (a `LeakGuard`) is `None` for built-in code; otherwise, if the group was leaked and
///   the module holding its `show()` functions goes, it removes `group` from `dir` and drops
///   the reference of `dir`; once it did, `drop()` does neither.
///
/// # Examples
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::{
///         atomic::{
///             Atomic,
///             Relaxed, //
///         },
///         Arc, //
///     },
///     sysfs::{
///         Attribute,
///         Dir,
///         Group, //
///     },
/// };
///
/// struct Stats {
///     hits: Atomic<u64>,
/// }
///
/// static ATTRS: [Attribute<Stats>; 1] = [Attribute::new(c"hits", |s, f| {
///     writeln!(f, "{}", s.hits.load(Relaxed))
/// })];
///
/// let dir = Dir::new_in_kernel(c"rust_sysfs_group_doctest")?;
/// let stats = Arc::new(Stats { hits: Atomic::new(7) }, GFP_KERNEL)?;
/// let group = Group::new(&dir, stats.clone(), &ATTRS)?;
/// // /sys/kernel/rust_sysfs_group_doctest/hits now reads "7".
/// assert_eq!(group.data().hits.load(Relaxed), 7);
/// drop(group);
/// # Ok::<(), Error>(())
/// ```
pub struct Group<T: Send + Sync> {
    _attrs: KVec<Slot<T>>,
    _ptrs: KVec<*mut bindings::attribute>,
    group: KBox<Opaque<bindings::attribute_group>>,
    dir: ManuallyDrop<Dir>,
    data: Arc<T>,
    guard: Option<LeakGuard>,
}

// SAFETY: The raw pointers point into `attrs` and `data`, which the group owns; `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for Group<T> {}

// SAFETY: `&self` only gives out `&T`.
unsafe impl<T: Send + Sync> Sync for Group<T> {}

impl<T: Send + Sync> Group<T> {
    /// Creates the files of `attrs` in `dir`, showing values of `data`.
    ///
    /// Fails with `EINVAL` if the `show()` functions are in different modules.
    pub fn new(dir: &Dir, data: Arc<T>, attrs: &'static [Attribute<T>]) -> Result<Self> {
        let mut slots = KVec::with_capacity(attrs.len(), GFP_KERNEL)?;
        for a in attrs {
            // SAFETY: All-zero is a valid `kobj_attribute` (no callbacks, no name).
            let mut kattr: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
            kattr.attr.name = a.name.as_char_ptr();
            kattr.attr.mode = a.mode;
            kattr.__bindgen_anon_1.show = Some(Self::show_callback);
            slots.push(
                Slot {
                    kattr: Opaque::new(kattr),
                    show: a.show,
                    data: Arc::as_ptr(&data),
                },
                GFP_KERNEL,
            )?;
        }
        let mut ptrs = KVec::with_capacity(attrs.len() + 1, GFP_KERNEL)?;
        for s in slots.iter() {
            let kattr = s.kattr.get();
            // SAFETY: `kattr` is valid; `attr` is its first field.
            let attr = unsafe { &raw mut (*kattr).attr };
            // SAFETY: `attr` is valid and will not move (see the type invariants).
            unsafe { bindings::sysfs_attr_init(attr) };
            ptrs.push(attr, GFP_KERNEL)?;
        }
        ptrs.push(core::ptr::null_mut(), GFP_KERNEL)?;
        // SAFETY: All-zero is a valid, empty `attribute_group`.
        let mut raw: bindings::attribute_group = unsafe { core::mem::zeroed() };
        raw.__bindgen_anon_2.attrs = ptrs.as_mut_ptr();
        let group = KBox::new(Opaque::new(raw), GFP_KERNEL)?;
        let owner = Self::owner(attrs)?;
        let dir = dir.clone();
        let kobj = dir.kobject().as_raw();
        // SAFETY: The directory is live; the group and the attributes it points to stay valid
        // and in place until `drop()` (or the guard) removes the group.
        to_result(unsafe { bindings::sysfs_create_group(kobj, group.get()) })?;
        // SAFETY: `owner` holds every `show()` and runs this code. `undo_leaked()` is a
        // non-generic, out-of-line kernel-crate function that removes the group, created above
        // in `kobj` (leaked with the `Group` while the guard is armed), and drops the reference
        // of `kobj` that `dir` holds (the `Group`'s, from here on); no `show()` runs after it
        // returns.
        let guard =
            unsafe { LeakGuard::arm(owner, undo_leaked, group.get().cast(), kobj as usize) };
        let guard = guard.inspect_err(|_| {
            // SAFETY: Created above.
            unsafe { bindings::sysfs_remove_group(kobj, group.get()) };
        })?;
        // INVARIANT: The group is created in `dir`, whose reference `dir` holds.
        Ok(Self {
            _attrs: slots,
            _ptrs: ptrs,
            group,
            dir: ManuallyDrop::new(dir),
            data,
            guard,
        })
    }

    /// Returns the module whose text holds the `show()` functions, or NULL if built in; `EINVAL`
    /// if they are in different modules (one guard cannot keep them all).
    fn owner(attrs: &'static [Attribute<T>]) -> Result<*mut bindings::module> {
        let mut owner = module_of(Self::show_callback as *const () as usize);
        for a in attrs {
            let m = module_of(a.show as *const () as usize);
            if owner.is_null() {
                owner = m;
            } else if !m.is_null() && m != owner {
                return Err(EINVAL);
            }
        }
        Ok(owner)
    }

    /// Returns the data the files show.
    pub fn data(&self) -> &Arc<T> {
        &self.data
    }

    /// # Safety
    ///
    /// `kattr` must be the `kattr` of a `Slot<T>` of a live `Group<T>`, and `buf` a buffer of
    /// `PAGE_SIZE` bytes (as `sysfs_kf_seq_show()` passes).
    unsafe extern "C" fn show_callback(
        _kobj: *mut bindings::kobject,
        kattr: *mut bindings::kobj_attribute,
        buf: *mut c_char,
    ) -> isize {
        let kattr = Opaque::cast_from(kattr);
        // SAFETY: By the safety requirements, `kattr` is embedded in a live `Slot<T>`.
        let slot = unsafe { &*crate::container_of!(kattr, Slot<T>, kattr) };
        // SAFETY: The group keeps `data` alive until it is removed, and removal waits for this
        // callback.
        let data = unsafe { &*slot.data };
        // SAFETY: `buf` is valid for writes of `PAGE_SIZE` bytes for the duration of the call.
        let page =
            unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE) };
        let mut f = Formatter::new(page);
        // A value that does not fit is cut, like `sysfs_emit()` does, at `PAGE_SIZE - 1` bytes:
        // sysfs warns about a show that returns `PAGE_SIZE` or more.
        let _ = fmt::Write::write_fmt(&mut f, format_args!("{}", ShowAdapter(data, slot.show)));
        // CAST: Below `PAGE_SIZE`, which fits in `isize`.
        f.bytes_written().min(bindings::PAGE_SIZE - 1) as isize
    }
}

/// Removes the attribute group `group` of a leaked [`Group`] from the kobject `kobj` and drops
/// the `Group`'s reference of `kobj` (see `LeakGuard`).
///
/// # Safety
///
/// `group` was created in `kobj` by [`Group::new`], whose `Group` holds a reference of `kobj`;
/// neither is removed or dropped otherwise.
#[inline(never)]
unsafe extern "C" fn undo_leaked(group: *mut c_void, kobj: c_ulong) {
    let kobj = kobj as *mut bindings::kobject;
    // SAFETY: By the safety requirements. Removal waits for `show()` in progress, which still
    // runs: the module holding it is going but not freed yet, and the group's data is leaked.
    unsafe { bindings::sysfs_remove_group(kobj, group.cast()) };
    // SAFETY: The `Group`'s reference, which its `drop()` will not drop (the guard is undone).
    unsafe { bindings::kobject_put(kobj) };
}

impl<T: Send + Sync> Drop for Group<T> {
    fn drop(&mut self) {
        if self.guard.take().is_some_and(LeakGuard::disarm) {
            // Leaked, and removed as its module went; the reference of `dir` is gone too (type
            // invariants).
            return;
        }
        // SAFETY: The group was created in `dir` (type invariant). Removal waits for `show()` in
        // progress, so `attrs`, `ptrs` and `data` may be dropped afterwards.
        unsafe { bindings::sysfs_remove_group(self.dir.kobject().as_raw(), self.group.get()) };
        // SAFETY: `dir` is not used again.
        unsafe { ManuallyDrop::drop(&mut self.dir) };
    }
}
