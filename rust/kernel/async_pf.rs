// SPDX-License-Identifier: GPL-2.0

//! KVM async page faults: a task sleeps on "page not present" and wakes on "page ready".
//!
//! When the host must fetch a page of guest memory (it was swapped out on the host), KVM can tell
//! the guest instead of stalling the vCPU: it raises `#PF` with a token in `CR2` and the reason
//! "page not present" in the CPU's record, and the guest runs another task until the host raises
//! the page-ready interrupt with the same token. A [`Registration`] handles both for a
//! [`Handler`] (`kvm_apf_ext_register()`; the kernel must run with `kvm-pv-ext`): the kernel's
//! `#PF` entry calls [`Handler::wait`] for a user-mode fault whose reason is set, and the
//! page-ready vector calls [`Handler::ready`]. The registration owns the per-CPU records
//! (`MSR_KVM_ASYNC_PF_EN`) and is the only code that enables them ([`Registration::enable`]),
//! always with the vector set and the dispatcher in place, so a token never reaches the kernel's
//! ordinary fault handling as an address.
//!
//! ```text
//!   #PF, reason "not present" ─▶ Handler::wait(Wait, token) ─▶ Wait::sleep_until(woken)
//!   page-ready vector         ─▶ Handler::ready(PageReady)  ─▶ PageReady::ack() ─▶ Acked
//! ```
//!
//! # Lifetime
//!
//! The kernel calls the handler through static calls behind a static key, with the registration's
//! address as argument. Dropping the [`Registration`] disables the records on every online CPU,
//! then unregisters: the kernel stops new calls, waits for every CPU that may be in the `#PF`
//! entry (an IPI) or in a callback with interrupts off (RCU), then calls [`Handler::wake_all`]
//! until no task is left in [`Handler::wait`] (it counts them in vmlinux, so none is inside the
//! module when it returns). A leaked registration is unregistered by the kernel when its module
//! goes, before the module's memory is freed; the records and the handler are then never freed.
//!
//! C header: [`arch/x86/include/asm/kvm_para.h`](srctree/arch/x86/include/asm/kvm_para.h)

use crate::{
    bindings,
    cpu::CpuId,
    error::to_result,
    ffi::{
        c_long,
        c_void, //
    },
    interrupt::LocalInterruptDisabled,
    kvm_para::{
        abi::{
            msr::ASYNC_PF_DELIVERY_AS_INT,
            PvApfData, //
        },
        msr::{
            AsyncPfAck,
            AsyncPfInt,
            ASYNC_PF_EN, //
        },
        shared::PerCpu,
    },
    leak_guard::module_of,
    preempt::ThisCpu,
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    task::Task,
    time::Jiffies,
    types::NotThreadSafe,
};
use core::marker::PhantomData;

/// The token of the page-ready broadcast: every task waiting on the receiving CPU may go on.
pub const WAKE_ALL: u32 = !0;

/// KVM's limit of outstanding async page faults per vCPU (`ASYNC_PF_PER_VCPU`), a host constant
/// the guest is never told; a handler sizes its tables from it.
pub const HOST_MAX_PER_CPU: usize = 64;

/// The vector of the page-ready interrupt, installed at boot by `kvm-pv-ext`.
const VECTOR: u8 = bindings::HYPERVISOR_CALLBACK_VECTOR as u8;

/// What handles async page faults.
///
/// `'static`: a leaked [`Registration`] keeps it until its module goes.
pub trait Handler: Send + Sync + 'static {
    /// "Page not present" for `token`: the current task faulted in user mode (with interrupts
    /// enabled there) on a page the host is fetching. Called in the fault path, with interrupts
    /// disabled; may sleep only through [`Wait::sleep_until`], which enables interrupts while
    /// the task sleeps and disables them again. Returning makes the task retry its access, which
    /// is always correct: if the page is still missing, the host waits for it synchronously.
    ///
    /// Must not sleep any other way, take sleeping locks, or allocate but atomically.
    fn wait(&self, ctx: &mut Wait<'_>, token: u32);

    /// The page-ready interrupt: [`PageReady::token`] is ready (or [`WAKE_ALL`]; 0 if the host
    /// sent none). Called in hardirq context; returns the proof that the notification was
    /// acknowledged, which lets the host send the next one.
    fn ready<'a>(&self, ctx: PageReady<'a>) -> Acked<'a>;

    /// Wakes every task sleeping in [`Handler::wait`]: called, in process context, while the
    /// registration is dropped, until none is left. It must make every [`Handler::wait`] return
    /// (dropping the registration waits for them, holding the kernel's registration lock).
    fn wake_all(&self);
}

/// The fault path of a task waiting for a page: what [`Handler::wait`] gets.
///
/// Only the registration's callback creates one, with interrupts disabled, in the `#PF` entry of
/// a user-mode fault; it is not `Send`, so it stays in that path.
pub struct Wait<'a> {
    cpu: CpuId,
    _p: PhantomData<&'a ()>,
    _not_send: NotThreadSafe,
}

impl Wait<'_> {
    /// Returns the CPU the task runs on (it may change across [`Wait::sleep_until`]).
    ///
    /// Valid as long as the handler does not sleep but through [`Wait::sleep_until`], like any
    /// proof of the current CPU in atomic context: sleeping another way (a mutex, a `GFP_KERNEL`
    /// allocation) in the fault path is a bug that `CONFIG_DEBUG_ATOMIC_SLEEP` reports.
    #[inline]
    pub fn this_cpu(&self) -> ThisCpu<'_> {
        // SAFETY: Interrupts are disabled in the fault path except inside `sleep_until()`, which
        // takes `&mut self` (so no `ThisCpu` borrowed from `self` lives across it) and updates
        // `cpu` before it returns.
        unsafe { ThisCpu::new_unchecked(self.cpu) }
    }

    /// Returns the task that waits, to wake it with [`Task::wake_up`].
    #[inline]
    pub fn task(&self) -> ARef<Task> {
        // SAFETY: The fault path runs in the context of the faulting task, which stays alive while
        // it runs; `Task` is a transparent wrapper of `task_struct`.
        let task = unsafe { &*Task::current_raw().cast::<Task>() };
        ARef::from(task)
    }

    /// Puts the task to sleep, uninterruptible, until `woken` returns `true` or `timeout`
    /// jiffies passed; returns `true` if woken.
    ///
    /// `woken` is called with interrupts disabled, after the task was marked sleeping, so a
    /// [`Task::wake_up`] that happens after a `false` from it is not lost; it must not sleep.
    /// Interrupts are enabled only while the task sleeps, as the in-tree guest does, and are
    /// disabled again when this returns.
    ///
    /// Does not sleep, with a warning, if the handler holds something that forbids it (a
    /// preemption or interrupt guard, a spinlock: the fault path starts with a zero preemption
    /// count), since the task may wake on another CPU; it then returns what `woken` says.
    pub fn sleep_until(&mut self, timeout: Jiffies, mut woken: impl FnMut() -> bool) -> bool {
        // SAFETY: Reads the current CPU's state.
        if unsafe { bindings::preempt_count() } != 0 || !unsafe { bindings::irqs_disabled() } {
            crate::warn_on!(true);
            return woken();
        }
        // CAST: `schedule_timeout()` takes a `long`; longer is forever anyway.
        let mut left = timeout.min(c_long::MAX as Jiffies) as c_long;
        let done = loop {
            // SAFETY: Marks the current task; any context.
            unsafe { bindings::set_current_state_uninterruptible() };
            if woken() {
                break true;
            }
            if left <= 0 {
                break false;
            }
            // SAFETY: The fault came from user mode with interrupts enabled (the kernel calls
            // `wait` only then), after `irqentry_enter()`, so the task may enable interrupts and
            // sleep here, as `kvm_async_pf_task_wait_schedule()` does.
            unsafe { bindings::local_irq_enable() };
            // SAFETY: Process context with interrupts enabled.
            left = unsafe { bindings::schedule_timeout(left) };
            // SAFETY: Back to the fault path's state.
            unsafe { bindings::local_irq_disable() };
        };
        // SAFETY: Marks the current task.
        unsafe { bindings::set_current_state_running() };
        self.cpu = CpuId::current();
        done
    }
}

/// A page-ready interrupt, to acknowledge: what [`Handler::ready`] gets.
///
/// Only the registration's callback creates one, in the interrupt, after it took the token from
/// the CPU's record (so the token slot is 0 again, as the host requires before the
/// acknowledgment). Not `Copy` nor `Clone`: [`PageReady::ack`] consumes it.
#[must_use = "the host sends no further page-ready notification before the acknowledgment"]
pub struct PageReady<'a> {
    this: ThisCpu<'a>,
    token: u32,
}

impl<'a> PageReady<'a> {
    /// Returns the CPU that got the interrupt.
    #[inline]
    pub fn this_cpu(&self) -> ThisCpu<'a> {
        self.this
    }

    /// Returns proof that local interrupts are disabled: the handler runs in hardirq context.
    #[inline]
    pub fn irqs_disabled(&self) -> &'a LocalInterruptDisabled {
        // SAFETY: A `PageReady` exists only in the page-ready interrupt handler, which runs with
        // local interrupts disabled; `'a` does not outlive the handler's call (the callback
        // creates the `PageReady`, and `Handler::ready()` must work for any `'a`).
        unsafe { LocalInterruptDisabled::assume_disabled() }
    }

    /// Returns the token: a page is ready, [`WAKE_ALL`], or 0 if the host sent no token.
    #[inline]
    pub fn token(&self) -> u32 {
        self.token
    }

    /// Acknowledges the notification (`MSR_KVM_ASYNC_PF_ACK`), so the host may send the next.
    #[inline]
    pub fn ack(self) -> Acked<'a> {
        // A refused write (`#GP`) leaves nothing to do: the host then sends no more.
        let _ = AsyncPfAck::ack(self.this);
        Acked { _p: PhantomData }
    }
}

/// Proof that a page-ready interrupt was acknowledged, tied to it (invariant in `'a`).
#[must_use]
pub struct Acked<'a> {
    _p: PhantomData<fn(&'a ()) -> &'a ()>,
}

/// Takes the page-ready token from the current CPU's record: replaces it with 0 and returns it,
/// in one instruction (`XCHG`), so the host never sees the slot half consumed.
///
/// Only the page-ready callback takes it: anything else could take a token from its wake-up.
#[inline]
fn take_token(records: &PerCpu<PvApfData>, cpu: ThisCpu<'_>) -> u32 {
    let word = records.this_slot(cpu).word::<u32>(PvApfData::TOKEN);
    // SAFETY: `word` is a valid, aligned `u32` of this CPU's record, which lives as long as
    // `records`, and the host and the guest access it with marked accesses only.
    unsafe { crate::arch::xchg_u32(word, 0) }
}

/// What the kernel's callbacks reach: the records and the handler.
struct Shared<T: Handler> {
    records: PerCpu<PvApfData>,
    handler: Arc<T>,
}

/// A [`Handler`] registered for async page faults, with the per-CPU records.
///
/// # Invariants
///
/// The kernel's async page fault dispatcher is registered with the operations of `Self` and the
/// address of `shared`, which stays allocated until `drop()` unregistered it. Records are
/// enabled only on CPUs whose record the dispatcher knows, with the page-ready vector set.
///
/// # Examples
///
/// ```
/// use kernel::{
///     async_pf::{
///         Acked,
///         Handler,
///         PageReady,
///         Registration,
///         Wait, //
///     },
///     prelude::*,
///     sync::Arc,
/// };
///
/// /// Lets every fault retry at once (the host then waits for the page synchronously).
/// struct Retry;
///
/// impl Handler for Retry {
///     fn wait(&self, _ctx: &mut Wait<'_>, _token: u32) {}
///     fn ready<'a>(&self, ctx: PageReady<'a>) -> Acked<'a> {
///         ctx.ack()
///     }
///     fn wake_all(&self) {}
/// }
///
/// // `ENODEV` without `kvm-pv-ext`, `EBUSY` if the in-tree async PF runs.
/// match Registration::new(Arc::new(Retry, GFP_KERNEL)?) {
///     Ok(reg) => drop(reg),
///     Err(e) => assert!(e == ENODEV || e == EBUSY),
/// }
/// # Ok::<(), Error>(())
/// ```
pub struct Registration<T: Handler> {
    shared: KBox<Shared<T>>,
}

impl<T: Handler> Registration<T> {
    const OPS: bindings::kvm_apf_ext_ops = bindings::kvm_apf_ext_ops {
        wait: Some(Self::wait_callback),
        ready: Some(Self::ready_callback),
        wake_all: Some(Self::wake_all_callback),
    };

    /// Registers `handler` for async page faults, with zeroed records for every possible CPU;
    /// no CPU has async page faults enabled yet ([`Registration::enable`]).
    ///
    /// Fails with `ENODEV` if the kernel has no page-ready vector for a driver (booted without
    /// `kvm-pv-ext`, or the host lacks `KVM_FEATURE_ASYNC_PF_INT`), `EBUSY` if the in-tree async
    /// PF runs or a handler is registered already. Process context, not a CPU hotplug callback
    /// (it takes the CPU hotplug lock).
    pub fn new(handler: Arc<T>) -> Result<Self> {
        let records = PerCpu::new(&ASYNC_PF_EN)?;
        let shared = KBox::new(Shared { records, handler }, GFP_KERNEL)?;
        let data: *const Shared<T> = &*shared;
        // SAFETY: The callbacks may run while `data` is registered, and `shared` stays allocated
        // until `drop()` unregistered it, or forever if the registration is leaked (the kernel
        // then unregisters it when the owner module goes). The owner is the module whose text
        // holds the callbacks, which is running `new()` now.
        to_result(unsafe {
            bindings::kvm_apf_ext_register(
                &Self::OPS,
                data.cast_mut().cast(),
                module_of(Self::wait_callback as *const () as usize),
            )
        })?;
        // INVARIANT: Registered above with `shared`; no record is enabled.
        Ok(Self { shared })
    }

    /// Returns the handler.
    pub fn handler(&self) -> &Arc<T> {
        &self.shared.handler
    }

    /// Returns the records, e.g. to show their state.
    pub fn records(&self) -> &PerCpu<PvApfData> {
        &self.shared.records
    }

    /// Enables async page faults on the current CPU: the dispatcher learns the CPU's record, the
    /// page-ready vector is set (`MSR_KVM_ASYNC_PF_INT`), then the record is published
    /// (`MSR_KVM_ASYNC_PF_EN`, delivery as interrupt, user-mode faults only).
    ///
    /// Returns `EIO` if the host refuses an MSR, `EBUSY` if enabled already.
    pub fn enable(&self, cpu: ThisCpu<'_>) -> Result {
        let records = &self.shared.records;
        // One section with interrupts off, so the three steps run on one CPU whatever `cpu`.
        let _irq = crate::interrupt::local_interrupt_disable();
        // SAFETY: Interrupts are disabled; the record is valid until `drop()` unregistered the
        // dispatcher, which then forgets it.
        unsafe { bindings::kvm_apf_ext_set_cpu_data(records.this_slot(cpu).as_ptr().cast()) };
        // SAFETY: The vector's handler (installed at boot; `new()` checked it) dispatches to
        // this registration while it is registered; the kernel turns async PF off on every
        // online CPU whose record it knows before it unregisters (offline CPUs come back through
        // INIT, which resets the MSR).
        unsafe { AsyncPfInt::set_vector(cpu, VECTOR) }?;
        // SAFETY: The dispatcher is registered and knows this CPU's record, the vector is set
        // (type invariant); the record is disabled before the dispatcher goes, as above.
        unsafe { records.enable_unchecked(cpu, ASYNC_PF_DELIVERY_AS_INT) }
    }

    /// Disables async page faults on the current CPU (`MSR_KVM_ASYNC_PF_EN` = 0): the host drops
    /// what is outstanding, so the handler wakes the CPU's waiting tasks after this.
    pub fn disable(&self, cpu: ThisCpu<'_>) -> Result {
        self.shared.records.disable(cpu)
    }

    /// Called by the kernel for "page not present".
    ///
    /// # Safety
    ///
    /// `data` is the `Shared<T>` of a live registration; called in the `#PF` entry of a
    /// user-mode fault with interrupts enabled in the interrupted context, after
    /// `irqentry_enter()`, with interrupts disabled.
    unsafe extern "C" fn wait_callback(data: *mut c_void, token: u32) {
        // SAFETY: Guaranteed by the caller.
        let shared = unsafe { &*data.cast::<Shared<T>>() };
        let mut ctx = Wait {
            cpu: CpuId::current(),
            _p: PhantomData,
            _not_send: NotThreadSafe,
        };
        shared.handler.wait(&mut ctx, token);
    }

    /// Called by the kernel for the page-ready interrupt.
    ///
    /// # Safety
    ///
    /// `data` is the `Shared<T>` of a live registration; hardirq context.
    unsafe extern "C" fn ready_callback(data: *mut c_void) {
        // SAFETY: Guaranteed by the caller.
        let shared = unsafe { &*data.cast::<Shared<T>>() };
        // SAFETY: Hardirq context: the caller stays on this CPU.
        let this = unsafe { ThisCpu::new_unchecked(crate::arch::raw_smp_processor_id()) };
        // `XCHG`: the token slot is 0 again before the acknowledgment, as the host requires.
        let token = take_token(&shared.records, this);
        let _acked = shared.handler.ready(PageReady { this, token });
    }

    /// Called by the kernel while it unregisters, until no task is left in `wait`.
    ///
    /// # Safety
    ///
    /// `data` is the `Shared<T>` of a live registration.
    unsafe extern "C" fn wake_all_callback(data: *mut c_void) {
        // SAFETY: Guaranteed by the caller.
        let shared = unsafe { &*data.cast::<Shared<T>>() };
        shared.handler.wake_all();
    }
}

/// Dropping takes the CPU hotplug lock and sleeps: process context, not a CPU hotplug callback.
impl<T: Handler> Drop for Registration<T> {
    fn drop(&mut self) {
        // No CPU raises "page not present" any more: the host drops what is outstanding.
        self.shared.records.disable_online();
        // SAFETY: Registered in `new()` with `OPS` (type invariant). Returns once no CPU runs a
        // callback and no task is left in `wait` (woken through `wake_all`), and the kernel no
        // longer knows the records, so `shared` may be freed.
        unsafe { bindings::kvm_apf_ext_unregister(&Self::OPS) };
    }
}
