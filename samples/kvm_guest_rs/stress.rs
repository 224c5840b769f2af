// SPDX-License-Identifier: GPL-2.0

//! Stress test of [`kernel::kvm_para::shared::PerCpu`] publishing from two contexts of one CPU.
//!
//! Reading `/sys/kernel/debug/kvm_guest_rs/publish_stress` takes `MSR_KVM_STEAL_TIME` for the
//! test (the module does not implement steal time yet, so nothing of its own uses the MSR; the
//! in-tree guest's record on the reader's CPU is left unregistered afterwards) and, for
//! [`DURATION_MS`], enables and disables the current CPU's record in a loop in process context
//! while a pinned hard-interrupt timer does the same every [`PERIOD_US`] from interrupt
//! context. After every step it compares, with interrupts off, what the CPU's MSR holds with
//! what the owner believes it published. Any difference is a record the host may write while
//! the owner could free it, or the reverse. It prints one line:
//!
//! ```text
//! cpu 0 loops 5210 irq_toggles 981 mismatches 0
//! ```

use core::fmt;
use kernel::{
    impl_has_hr_timer,
    interrupt::local_interrupt_disable,
    kvm_para::{
        abi::KvmStealTime,
        msr::STEAL_TIME,
        shared::PerCpu,
        KvmPara, //
    },
    local::Local64,
    preempt::{
        self,
        ThisCpu, //
    },
    prelude::*,
    sync::{
        atomic::{
            AtomicFlag,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    time::{
        hrtimer::{
            HrTimer,
            HrTimerCallback,
            HrTimerCallbackContext,
            HrTimerPointer,
            HrTimerRestart,
            RelativePinnedHardMode, //
        },
        Delta,
        Instant,
        Monotonic, //
    },
};

/// How long the process-context loop runs.
const DURATION_MS: i64 = 300;

/// Period of the interrupt-context toggles.
const PERIOD_US: i64 = 25;

/// The records under test and the interrupt side's state.
#[pin_data]
struct Stress {
    #[pin]
    timer: HrTimer<Self>,
    records: PerCpu<KvmStealTime>,
    /// Successful enables and disables from the timer, on the timer's CPU only.
    irq_toggles: Local64,
    /// Tells the timer to stop re-arming.
    stop: AtomicFlag,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Stress {
        mode: RelativePinnedHardMode<Monotonic>, field: self.timer
    }
}

impl HrTimerCallback for Stress {
    type Pointer<'a> = Arc<Self>;

    /// Runs in hard-interrupt context on the CPU that started the timer.
    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        if this.stop.load(Relaxed) {
            return HrTimerRestart::NoRestart;
        }
        let guard = preempt::disable();
        if this.toggle(guard.this_cpu()) {
            this.irq_toggles.inc();
        }
        ctx.forward_now(Delta::from_micros(PERIOD_US));
        HrTimerRestart::Restart
    }
}

impl Stress {
    /// Enables the record of `cpu` if it is off, else disables it; `true` if that succeeded.
    fn toggle(&self, cpu: ThisCpu<'_>) -> bool {
        if self.records.is_enabled(cpu.id()) {
            self.records.disable(cpu).is_ok()
        } else {
            self.records.enable(cpu).is_ok()
        }
    }

    /// Returns `true` if the MSR of `cpu` holds what the owner believes it published.
    fn consistent(&self, cpu: ThisCpu<'_>) -> bool {
        let _irq = local_interrupt_disable();
        self.records.msr().read_safe().ok() == Some(self.records.msr_value(cpu.id()))
    }
}

/// Runs the test on the current CPU and prints its result line.
pub(crate) fn run(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !KvmPara::detect().is_ok_and(|kvm| kvm.has(STEAL_TIME.feature())) {
        return writeln!(f, "skip: the host does not offer {}", STEAL_TIME.name());
    }
    let stress = match Arc::pin_init(
        try_pin_init!(Stress {
            timer <- HrTimer::new(),
            records: PerCpu::new(&STEAL_TIME)?,
            irq_toggles: Local64::new(0),
            stop: AtomicFlag::new(false),
        }),
        GFP_KERNEL,
    ) {
        Ok(s) => s,
        Err(e) => return writeln!(f, "error {}", e.to_errno()),
    };
    let (mut loops, mut mismatches) = (0u64, 0u64);
    let cpu_nr;
    let timer;
    {
        // Stay on one CPU, with interrupts on: the timer is pinned to it.
        let guard = preempt::disable();
        let cpu = guard.this_cpu();
        cpu_nr = cpu.id().as_u32();
        timer = stress.clone().start(Delta::from_micros(PERIOD_US));
        let start = Instant::<Monotonic>::now();
        while start.elapsed() < Delta::from_millis(DURATION_MS) {
            for _ in 0..2 {
                stress.toggle(cpu);
                if !stress.consistent(cpu) {
                    mismatches += 1;
                }
            }
            loops += 1;
        }
        stress.stop.store(true, Relaxed);
    }
    // Cancels the timer, if it did not stop by itself yet.
    drop(timer);
    writeln!(
        f,
        "cpu {} loops {} irq_toggles {} mismatches {}",
        cpu_nr,
        loops,
        stress.irq_toggles.get(),
        mismatches
    )
    // Dropping `stress` disables the record wherever it is still published.
}
