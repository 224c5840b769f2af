// SPDX-License-Identifier: GPL-2.0

//! The x86-64 fast paths: each function is the instruction sequence of the C inline function it
//! names, with the C file it comes from.
//!
//! One of them calls a function from inline assembly, as C does: the reschedule of
//! `preempt_enable_notrace()` (see there why the frame is set up before the call).

use crate::{
    bindings,
    cpu::CpuId,
    ffi::{
        c_int,
        c_ulong, //
    },
};

// The per-CPU variables below are read and written with instructions of their size: check
// their types, so that a change in C breaks the build instead of the data.
const _: fn() -> (*const c_ulong, *const c_int, *const c_ulong) = || {
    (
        &raw const bindings::__preempt_count,
        &raw const bindings::cpu_number,
        &raw const bindings::this_cpu_off,
    )
};
crate::static_assert!(size_of::<c_ulong>() == 8);
crate::static_assert!(size_of::<c_int>() == 4);

/// The operand-size suffix of the preemption count (`__pc_op` in
/// `arch/x86/include/asm/preempt.h`): 64 bits with `CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS`,
/// 32 bits otherwise.
#[cfg(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS)]
macro_rules! pc_size {
    () => {
        "q"
    };
}
#[cfg(not(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS))]
macro_rules! pc_size {
    () => {
        "l"
    };
}

/// `preempt_disable_notrace()` (`include/linux/preempt.h`): `__preempt_count_inc()`
/// (`arch/x86/include/asm/preempt.h`), then `barrier()`.
#[inline(always)]
pub fn preempt_disable_notrace() {
    // SAFETY: `%gs` addresses the current CPU's per-CPU area in kernel mode and `__preempt_count`
    // is a per-CPU `unsigned long` (of which x86 uses 4 or 8 bytes); one increment cannot be
    // split by an interrupt or a migration. Not `nomem`: the asm is a compiler barrier, like
    // `barrier()`.
    unsafe {
        crate::asm!(
            concat!("inc", pc_size!(), " %gs:{pc}(%rip)");
            pc = sym bindings::__preempt_count,
            options(nostack),
        )
    };
}

/// `preempt_enable_notrace()` (`include/linux/preempt.h`): `barrier()`, then, with
/// `CONFIG_PREEMPTION`, `__preempt_count_dec_and_test()` and the reschedule when it is true
/// (`arch/x86/include/asm/preempt.h`); without it, `__preempt_count_dec()`.
///
/// `CONFIG_PREEMPT_DYNAMIC` reschedules through a static call whose target the boot command line
/// chooses: that configuration calls the C function.
///
/// # Safety
///
/// The caller must have raised the preemption count with [`preempt_disable_notrace`].
#[inline(always)]
pub unsafe fn preempt_enable_notrace() {
    // x86 keeps `PREEMPT_NEED_RESCHED` inverted in the count: the decrement reaches 0 exactly
    // when preemption is enabled again and a reschedule is pending.
    #[cfg(all(CONFIG_PREEMPTION, not(CONFIG_PREEMPT_DYNAMIC)))]
    // SAFETY: As in `preempt_disable_notrace()`; the caller raised the count.
    // `preempt_schedule_notrace_thunk` saves and restores every register it clobbers, as for
    // the C caller (`__preempt_schedule_notrace()`), so the asm clobbers only the flags; it is
    // reached only where preemption was just enabled again with a reschedule pending.
    //
    // The `call` is where C needs `ASM_CALL_CONSTRAINT`. Without `nostack`, rustc marks the asm
    // as using the stack (LLVM `alignstack`), which makes LLVM set up the function's frame before
    // it, and with `CONFIG_FRAME_POINTER` the kernel builds Rust with
    // `-Cforce-frame-pointers=yes`: `push %rbp; mov %rsp,%rbp` then precede the call on every
    // path, which objtool's frame-pointer validation (`--stackval`) confirms for module objects
    // built that way.
    unsafe {
        crate::asm!(
            concat!("dec", pc_size!(), " %gs:{pc}(%rip)\n\tjnz 2f\n\tcall {thunk}\n2:");
            pc = sym bindings::__preempt_count,
            thunk = sym bindings::preempt_schedule_notrace_thunk,
        )
    };
    #[cfg(CONFIG_PREEMPT_DYNAMIC)]
    // SAFETY: The caller raised the count.
    unsafe {
        bindings::preempt_enable_notrace()
    };
    #[cfg(not(CONFIG_PREEMPTION))]
    // SAFETY: As in `preempt_disable_notrace()`; the caller raised the count.
    unsafe {
        crate::asm!(
            concat!("dec", pc_size!(), " %gs:{pc}(%rip)");
            pc = sym bindings::__preempt_count,
            options(nostack),
        )
    };
}

/// `raw_smp_processor_id()` (`arch/x86/include/asm/smp.h`): `this_cpu_read(cpu_number)`.
///
/// Meaningful while the caller cannot migrate.
#[inline(always)]
pub fn raw_smp_processor_id() -> CpuId {
    let cpu: u32;
    // SAFETY: `cpu_number` is a per-CPU `int`, read with one `%gs`-relative load. `pure` (C's
    // `this_cpu_read()` is volatile): the value only changes with a migration, which callers
    // exclude (`ThisCpu`), and the preemption count changes that allow one are compiler barriers
    // this load is not moved across; an unused read is dropped.
    unsafe {
        crate::asm!(
            "movl %gs:{nr}(%rip), {cpu:e}";
            nr = sym bindings::cpu_number,
            cpu = out(reg) cpu,
            options(nostack, pure, readonly, preserves_flags),
        )
    };
    // SAFETY: `cpu_number` of an online CPU is below `nr_cpu_ids()`.
    unsafe { CpuId::from_u32_unchecked(cpu) }
}

/// `this_cpu_ptr()` (`arch_raw_cpu_ptr()` in `arch/x86/include/asm/percpu.h`): the per-CPU
/// address `ptr` plus `this_cpu_read(this_cpu_off)`, one `addq` from `%gs` as C compiles it.
///
/// The result is the current CPU's copy while the caller cannot migrate.
#[inline(always)]
pub fn this_cpu_ptr<T>(ptr: *mut T) -> *mut T {
    // CAST: A per-CPU address plus the CPU's offset is the address of that CPU's copy, as in C;
    // the integer round trip says that the result is not derived from `ptr` alone.
    let mut v = ptr as usize;
    // SAFETY: `this_cpu_off` is a per-CPU `unsigned long` holding the current CPU's per-CPU
    // offset; one `%gs`-relative add. `pure`: two reads with no compiler barrier between them
    // give the same value.
    unsafe {
        crate::asm!(
            "addq %gs:{off}(%rip), {v}";
            off = sym bindings::this_cpu_off,
            v = inout(reg) v,
            options(nostack, pure, readonly),
        )
    };
    v as *mut T
}

/// `this_cpu_read()` of an 8-byte per-CPU variable (`__raw_cpu_read()` in
/// `arch/x86/include/asm/percpu.h`): one `%gs`-relative `movq`, without computing the address.
///
/// # Safety
///
/// `ptr` must be a per-CPU address (`__percpu`) of an 8-byte aligned `u64` initialised on the
/// current CPU and not written while it may be read. The value is the current CPU's while the
/// caller cannot migrate; the caller must not be able to migrate between two calls either, since
/// the compiler may merge them (`pure`).
#[inline(always)]
pub unsafe fn this_cpu_read_u64(ptr: *const u64) -> u64 {
    let v: u64;
    // SAFETY: `%gs` addresses the current CPU's per-CPU area in kernel mode, so `%gs:(ptr)` is
    // the current CPU's copy, valid and aligned by the caller's guarantee. `pure`: the value only
    // changes with a migration (see `raw_smp_processor_id()`).
    unsafe {
        crate::asm!(
            "movq %gs:({p}), {v}";
            p = in(reg) ptr,
            v = out(reg) v,
            options(nostack, pure, readonly, preserves_flags),
        )
    };
    v
}

/// `local64_read()` (`local_read()` in `arch/x86/include/asm/local.h`): `READ_ONCE()`, one
/// aligned `movq`.
///
/// A volatile load, as C's `READ_ONCE()` is, rather than assembly: the compiler folds the
/// field's offset into the instruction. Concurrent with other CPUs' atomic updates, this is the
/// kernel memory model's `READ_ONCE()` (as `kvm_para::shared::Slot`'s loads of host-written
/// words and the DMA abstraction's `dma_read!` are), not an atomic in Rust's model.
///
/// # Safety
///
/// `p` must be valid and 8-byte aligned, and accessed concurrently only with atomic (or these
/// single-instruction) operations.
#[inline(always)]
pub unsafe fn local64_read(p: *const u64) -> u64 {
    // SAFETY: Guaranteed by the caller; a volatile load of an aligned `u64` is one untorn
    // `movq` on x86-64, `READ_ONCE()` (see above).
    unsafe { core::ptr::read_volatile(p) }
}

/// `local64_set()` (`local_set()` in `arch/x86/include/asm/local.h`): `WRITE_ONCE()`, one
/// aligned `movq`, volatile for the reason given at [`local64_read`].
///
/// # Safety
///
/// As for [`local64_read`], and `p` must be writable.
#[inline(always)]
pub unsafe fn local64_set(p: *mut u64, v: u64) {
    // SAFETY: Guaranteed by the caller; a volatile store of an aligned `u64` is one untorn
    // `movq` on x86-64, `WRITE_ONCE()` (see `local64_read()`).
    unsafe { core::ptr::write_volatile(p, v) };
}

/// `local64_add()` (`local_add()` in `arch/x86/include/asm/local.h`): one `addq` to memory,
/// which an interrupt on this CPU sees before or after, and another CPU's load sees untorn.
///
/// # Safety
///
/// As for [`local64_set`]; only one CPU updates `*p` at a time.
#[inline(always)]
pub unsafe fn local64_add(p: *mut u64, v: u64) {
    // SAFETY: Guaranteed by the caller. The `addq` behaves as a relaxed load followed by a
    // relaxed store, which is how the other accesses treat it.
    unsafe {
        crate::asm!(
            "addq {v}, ({p})";
            v = in(reg) v,
            p = in(reg) p,
            options(nostack),
        )
    };
}

/// `local64_inc()` (`local_inc()` in `arch/x86/include/asm/local.h`): one `incq` to memory.
///
/// # Safety
///
/// As for [`local64_add`].
#[inline(always)]
pub unsafe fn local64_inc(p: *mut u64) {
    // SAFETY: As in `local64_add()`.
    unsafe {
        crate::asm!(
            "incq ({p})";
            p = in(reg) p,
            options(nostack),
        )
    };
}

/// `atomic64_read()` (`arch_atomic64_read()` in `arch/x86/include/asm/atomic64_64.h`):
/// `__READ_ONCE()`, one aligned `movq`; concurrent with other CPUs' `lock cmpxchg`, a relaxed
/// load in the kernel memory model, not a Rust atomic (see [`local64_read`]).
///
/// # Safety
///
/// `p` must be valid and 8-byte aligned, and accessed concurrently only with atomic operations.
#[inline(always)]
pub unsafe fn atomic64_read(p: *const u64) -> u64 {
    // SAFETY: Guaranteed by the caller; the same instruction as `local64_read()`.
    unsafe { local64_read(p) }
}

/// `atomic64_cmpxchg_relaxed()` (`arch_cmpxchg()` in `arch/x86/include/asm/cmpxchg.h`): one
/// `lock cmpxchgq`; stores `new` if `*p` is `old`, and returns the previous value either way.
///
/// # Safety
///
/// `p` must be valid for writes and 8-byte aligned, and accessed concurrently only with atomic
/// operations.
#[inline(always)]
pub unsafe fn atomic64_cmpxchg_relaxed(p: *mut u64, old: u64, new: u64) -> u64 {
    let prev: u64;
    // SAFETY: Guaranteed by the caller; `lock cmpxchgq` is an atomic read-modify-write (a full
    // barrier on x86, stronger than relaxed).
    unsafe {
        crate::asm!(
            "lock cmpxchgq {new}, ({p})";
            p = in(reg) p,
            new = in(reg) new,
            inout("rax") old => prev,
            options(nostack),
        )
    };
    prev
}

/// `rdtsc_ordered()` (`arch/x86/include/asm/tsc.h`): `RDTSCP`, or `LFENCE; RDTSC`, whichever
/// the CPU prefers, so the read is not hoisted above earlier loads.
///
/// This is the C function's own `ALTERNATIVE_2()`, generated from `<asm/alternative.h>`: the
/// kernel patches its alternatives into vmlinux at boot and into a module when it is loaded.
#[inline(always)]
pub fn rdtsc_ordered() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: The instructions of every alternative exist on the CPUs the kernel patches them in
    // for, and only write EAX, EDX and (RDTSCP) ECX; CR4.TSD is clear in the kernel. Not
    // `nomem`: like the C `asm volatile`, the read stays between the loads around it.
    unsafe {
        crate::asm!(
            include!(concat!(
                env!("OBJTREE"),
                "/rust/kernel/generated_arch_rdtsc_ordered_asm.rs"
            ));
            out("eax") lo,
            out("edx") hi,
            out("ecx") _,
            options(nostack, preserves_flags),
        )
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// `__test_and_clear_bit()` (`arch___test_and_clear_bit()` in `arch/x86/include/asm/bitops.h`)
/// on a 32-bit word: one `BTR` without `LOCK`; returns whether the bit was set.
///
/// One instruction cannot be split by an interrupt on this CPU, nor by a hypervisor that looks
/// at the word between two instructions of this vCPU; it is not atomic against other CPUs.
///
/// # Safety
///
/// `word` must be valid and 4-byte aligned, accessed concurrently only by the current CPU
/// (including its interrupts) and the hypervisor, with marked accesses. `BIT` must be below 32
/// (a build error otherwise).
#[inline(always)]
pub unsafe fn test_and_clear_bit_u32<const BIT: u32>(word: *mut u32) -> bool {
    const { assert!(BIT < 32) };
    'set: {
        // SAFETY: Guaranteed by the caller; with an immediate bit offset below 32, `BTR` touches
        // only the 32-bit word at `word`. The jump leaves the asm only for the label block.
        unsafe {
            crate::asm!(
                "btrl ${bit}, ({word})\n\tjc {was_set}";
                bit = const BIT,
                word = in(reg) word,
                was_set = label {
                    break 'set true;
                },
                options(nostack),
            )
        };
        false
    }
}

/// Exchange of a 32-bit word: one `XCHG` (implicitly `LOCK`ed, so fully ordered like C's
/// `xchg()`; the fallback only promises `xchg_relaxed()`), returns the old value.
///
/// # Safety
///
/// `word` must be valid and 4-byte aligned, and accessed concurrently only with marked accesses.
#[inline(always)]
pub unsafe fn xchg_u32(word: *mut u32, new: u32) -> u32 {
    let mut v = new;
    // SAFETY: Guaranteed by the caller; `XCHG` with a memory operand is atomic.
    unsafe {
        crate::asm!(
            "xchgl {v:e}, ({word})";
            v = inout(reg) v,
            word = in(reg) word,
            options(nostack),
        )
    };
    v
}
