#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""compare-report: table and plot of `make compare` (tools/make/compare.sh).

Input: results.tsv, lines "SIDE KEY VALUE..." from the compare plan, where SIDE
is A (in-tree C features) or B (the module) and the benchmarks give "CALLS NS";
pv_eoi lines give the host model's "INTERRUPTS EOI_WRITES COMPLETED TAKEN_BACK",
eoi_path_fast/slow the instructions of the EOI hook's paths; apf_episode,
apf_ready_first and apf_episode_sync "PAGES DELAY_NS NS INJECTED" (and KEY_handler
"INSNS TIMED": page-ready vector entry to acknowledgment), apf_overlap_on
and apf_overlap_off "MS" (async page faults, tools/runner/plans/clock-cost.sh).
Under icount shift 0 a virtual ns is one guest instruction, so NS / CALLS is
instructions per call.  Writes an RST table and a PNG bar chart.
"""
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    data = {}
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if len(parts) < 3:
            continue
        side, key, vals = parts[0], parts[1], parts[2:]
        data.setdefault((side, key), []).append(vals)
    return data


def per_call(data, side, key):
    runs = [int(ns) / int(calls) for calls, ns in data.get((side, key), [])]
    return (statistics.median(runs), runs) if runs else (None, [])


def warps(data, side, key):
    v = data.get((side, key))
    return (int(v[-1][0]), int(v[-1][1])) if v else (None, None)


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:.{digits}f}"


def main():
    data = load(sys.argv[1])
    ka, ka_runs = per_call(data, "A", "ktime_bench")
    kb, kb_runs = per_call(data, "B", "ktime_bench")
    rb, rb_runs = per_call(data, "B", "raw_read_bench")
    ua, ua_runs = per_call(data, "A", "user_bench")
    ub, ub_runs = per_call(data, "B", "user_bench")
    cs_a = data.get(("A", "clocksource"), [["?"]])[0][0]
    cs_b = data.get(("B", "clocksource"), [["?"]])[0][0]
    ratio = lambda b, a: None if a is None or b is None else b / a  # noqa: E731
    def upath(side):
        v = data.get((side, "user_path"))
        if not v:
            return "n/a"
        kind, ut, st = v[-1][:3]
        return f"{'vDSO' if kind == 'vdso' else 'system call'} ({ut}/{st})"

    rows = [
        ("Current clocksource", cs_a, cs_b, ""),
        ("(a) ktime_get(), instructions per call (median of runs)", fmt(ka), fmt(kb), fmt(ratio(kb, ka), 3)),
        ("(a) runs", " ".join(fmt(x) for x in ka_runs), " ".join(fmt(x) for x in kb_runs), ""),
        ("(a) raw clocksource read, instructions per call", "n/a (C, not callable)", fmt(rb), ""),
        ("(b) clock_gettime(CLOCK_MONOTONIC), instructions per call", fmt(ua), fmt(ub), fmt(ratio(ub, ua), 3)),
        ("(b) path (user/system ticks of 2*10^6 calls)", upath("A"), upath("B"), ""),
    ]
    def steal(side):
        v = data.get((side, "steal_acc"))
        return (int(v[-1][0]), int(v[-1][1])) if v else (None, None)

    (sa, ia), (sb, ib) = steal("A"), steal("B")
    acc = lambda s, i: None if not i or s is None else s / i  # noqa: E731
    ca, cb = acc(sa, ia), acc(sb, ib)
    sra, sra_runs = per_call(data, "A", "steal_clock_bench")
    srb, srb_runs = per_call(data, "B", "steal_clock_bench")
    steal_rows = [
        ("(d) /proc/stat steal / injected steal (4 s, 20 %)", fmt(ca, 4), fmt(cb, 4), fmt(ratio(cb, ca), 4)),
        ("(d) /proc/stat steal, ms (injected, ms)",
         "n/a" if sa is None else f"{sa // 1000000} ({ia // 1000000})",
         "n/a" if sb is None else f"{sb // 1000000} ({ib // 1000000})", ""),
        ("(d) steal-clock read (static call, current CPU), instructions per call",
         fmt(sra), fmt(srb), fmt(ratio(srb, sra), 3)),
        ("(d) runs", " ".join(fmt(x) for x in sra_runs), " ".join(fmt(x) for x in srb_runs), ""),
    ]
    def eoi(side, key):
        """Sums of the runs: share, writes per 1000 interrupts, totals, and per-run shares."""
        v = data.get((side, key))
        if not v:
            return None
        runs = [tuple(int(x) for x in r[:4]) for r in v]
        irqs, writes, completed, taken = (sum(r[i] for r in runs) for i in range(4))
        share = completed / (completed + writes) if completed + writes else None
        per_k = 1000 * writes / irqs if irqs else None
        shares = [r[2] / (r[2] + r[1]) if r[1] + r[2] else 0 for r in runs]
        return share, per_k, irqs, writes, completed, taken, shares

    ea, eb, eo = eoi("A", "pv_eoi"), eoi("B", "pv_eoi"), eoi("B", "pv_eoi_off")
    pick = lambda e, i: None if e is None else e[i]  # noqa: E731

    def path(side, kind):
        v = data.get((side, f"eoi_path_{kind}"))
        return int(v[-1][0]) if v else None

    pfa, pfb, psa, psb = path("A", "fast"), path("B", "fast"), path("A", "slow"), path("B", "slow")
    ifmt = lambda x: "n/a" if x is None else str(x)  # noqa: E731
    eoi_rows = [
        ("(e) EOIs that skip the APIC write (host: completed / (completed + EOI writes))",
         fmt(pick(ea, 0), 3), fmt(pick(eb, 0), 3), fmt(ratio(pick(eb, 0), pick(ea, 0)), 3)),
        ("(e) APIC EOI register writes per 1000 interrupts", fmt(pick(ea, 1)), fmt(pick(eb, 1)),
         fmt(ratio(pick(eb, 1), pick(ea, 1)), 3)),
        ("(e) ... with PV EOI off (B, module unloaded)", "", fmt(pick(eo, 1)), ""),
        ("(e) runs: share of each", "n/a" if ea is None else " ".join(fmt(x, 3) for x in ea[6]),
         "n/a" if eb is None else " ".join(fmt(x, 3) for x in eb[6]), ""),
        ("(e) interrupts, EOI writes, PV EOI completed, taken back (all runs)",
         "n/a" if ea is None else " ".join(map(str, ea[2:6])),
         "n/a" if eb is None else " ".join(map(str, eb[2:6])), ""),
        ("(e) EOI hook, instructions: PV EOI armed (skips the write)", ifmt(pfa), ifmt(pfb),
         fmt(ratio(pfb, pfa), 2)),
        ("(e) EOI hook, instructions: not armed (up to the APIC driver's EOI)", ifmt(psa), ifmt(psb),
         fmt(ratio(psb, psa), 2)),
    ]
    def apf(side, key):
        """Instructions per page beyond the host delay, pages, host injections."""
        v = data.get((side, key))
        if not v:
            return None, None, None
        pages, delay, ns, injected = (int(x) for x in v[-1][:4])
        return (ns - pages * delay) / pages, pages, injected

    def apf_ms(side, key):
        v = data.get((side, key))
        return float(v[-1][0]) if v else None

    (epa, npa, ia_), (epb, npb, ib_) = apf("A", "apf_episode"), apf("B", "apf_episode")
    def apf_early(side):
        """Instructions per host episode of the early-wake run (no host delay is waited)."""
        v = data.get((side, "apf_ready_first"))
        if not v:
            return None
        _, _, ns, injected = (int(x) for x in v[-1][:4])
        return ns / injected if injected else None

    rfa, rfb = apf_early("A"), apf_early("B")

    def apf_handler(side, key):
        """Instructions per page-ready from vector entry to the acknowledgment (host model)."""
        v = data.get((side, key + "_handler"))
        if not v:
            return None
        insns, timed = (int(x) for x in v[-1][:2])
        return insns / timed if timed else None

    hwa, hwb = apf_handler("A", "apf_episode"), apf_handler("B", "apf_episode")
    hea, heb = apf_handler("A", "apf_ready_first"), apf_handler("B", "apf_ready_first")
    esync, _, _ = apf("B", "apf_episode_sync")
    ova, ovb, ovoff = apf_ms("A", "apf_overlap_on"), apf_ms("B", "apf_overlap_on"), apf_ms("B", "apf_overlap_off")
    speed = lambda on: None if on is None or ovoff is None else ovoff / on  # noqa: E731
    apf_rows = [
        ("(f) page-ready interrupt, vector entry to acknowledgment (wakes the sleeper): "
         "instructions", fmt(hwa, 0), fmt(hwb, 0), fmt(ratio(hwb, hwa), 3)),
        ("(f) ... page ready before its fault (records an early wake): instructions",
         fmt(hea, 0), fmt(heb, 0), fmt(ratio(heb, hea), 3)),
        ("(f) async PF episode (fault, sleep, page ready, wake, retry): instructions per page "
         "beyond the 1 ms host delay", fmt(epa, 0), fmt(epb, 0), fmt(ratio(epb, epa), 3)),
        ("(f) ... pages, host injections", f"{npa} {ia_}", f"{npb} {ib_}", ""),
        ("(f) ... page ready before its fault (early wake, no sleep): instructions per episode",
         fmt(rfa, 0), fmt(rfb, 0), fmt(ratio(rfb, rfa), 3)),
        ("(f) ... no async PF (the vCPU waits, APF halt): instructions per page", "", fmt(esync, 0), ""),
        ("(f) overlap: computing task + 64 faults of 5 ms on one vCPU, ms", fmt(ova), fmt(ovb),
         fmt(ratio(ovb, ova), 3)),
        ("(f) ... without async PF (vCPU waits), ms", "", fmt(ovoff), ""),
        ("(f) overlap speed-up over the vCPU waiting (same host delay)", fmt(speed(ova), 2),
         fmt(speed(ovb), 2), fmt(ratio(speed(ovb), speed(ova)), 3)),
        ("(f) allocations in IRQ context per early wake", "1 (kzalloc GFP_ATOMIC, by its code)",
         "0 (table preallocated at load)", ""),
    ]
    for key, label in (("ktime_warp", "(c) ktime_get() warps across CPUs (reads)"),
                       ("user_warp", "(c) clock_gettime() warps across CPUs (reads)"),
                       ("raw_warp", "(c) raw kvm-clock-rs warps across CPUs (reads)")):
        ra, wa = warps(data, "A", key)
        rbb, wb = warps(data, "B", key)
        cell = lambda r, w: "n/a" if r is None else f"{w} ({r})"  # noqa: E731
        rows.append((label, cell(ra, wa), cell(rbb, wb), ""))
    def mem(side):
        v = data.get((side, "mem"))
        return tuple(int(x) for x in v[-1][:3]) if v else (None, None, None)

    (mca, mda, mpa), (mcb, mdb, mpb) = mem("A"), mem("B")
    mem_rows = [
        ("(g) code, bytes (A: kvm.o + kvmclock.o, all their PV features; B: the module with its "
         "counters, sysfs, debugfs benches)", ifmt(mca), ifmt(mcb), fmt(ratio(mcb, mca), 2)),
        ("(g) data, bytes (A includes kvmclock's boot page of records)", ifmt(mda), ifmt(mdb),
         fmt(ratio(mdb, mda), 2)),
        ("(g) static per-CPU bytes (B allocates its records at load)", ifmt(mpa), ifmt(mpb), ""),
    ]
    # Per possible CPU in all: A's static per-CPU data plus its kvmclock record (64 bytes a CPU
    # in kvmclock's boot page, counted in A's data above); B's static per-CPU data plus what its
    # features allocated at load (the module's percpu_bytes files: statistics and state, the
    # record's slot in host-shared memory, the per-CPU pointer to it).
    dyn_b = data.get(("B", "percpu_dyn"))
    pa = None if mpa is None else mpa + 64
    pb = None if dyn_b is None or mpb is None else mpb + int(dyn_b[-1][0])
    feats = " ".join(dyn_b[-1][1:]) if dyn_b else ""
    mem_rows.append((
        "(g) per-CPU bytes per possible CPU (A: static + its kvmclock record; B: static + "
        f"allocated at load: statistics, state, records of {feats or 'its features'})",
        ifmt(pa), ifmt(pb), fmt(ratio(pb, pa), 2)))
    rows += steal_rows
    rows += eoi_rows
    rows += apf_rows
    rows += mem_rows
    # The target of each B/A ratio (issues 8-13): costs at most the C guest's, the EOI
    # skip share and the overlap speed-up at least its, steal accuracy the same.
    targets = (
        ("(a) ktime_get()", "<= 1.00"), ("(b) clock_gettime", "<= 1.00"),
        ("warps", "0"), ("(d) /proc/stat steal / injected", "1.00 +- 0.01"),
        ("(d) steal-clock read", "<= 1.00"), ("(e) EOIs that skip", ">= 1.00"),
        ("(e) APIC EOI register writes", "<= 1.00"), ("(e) EOI hook", "<= 1.00"),
        ("(f) page-ready interrupt", "<= 1.00"), ("(f) ... page ready before its fault (records", "<= 1.00"),
        ("(f) async PF episode", "<= 1.00"), ("(f) ... page ready before its fault (early", "<= 1.00"),
        ("(f) overlap: computing", "<= 1.00"), ("(f) overlap speed-up", ">= 1.00"),
        ("(f) allocations in IRQ", "0"),
    )

    def target(label):
        return next((t for k, t in targets if k in label), "")

    rows = [r + (target(r[0]),) for r in rows]

    head = ("Measurement", "A: in-tree C", "B: kvm_guest_rs", "B/A", "Target")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    sep = " ".join("=" * w for w in widths)
    lines = [sep, " ".join(str(h).ljust(w) for h, w in zip(head, widths)), sep]
    lines += [" ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append(sep)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.8),
                                       gridspec_kw={"width_ratios": [4, 1.6, 1.6]})
    labels = ["ktime_get()\n(kernel)", "clock_gettime()\n(user space)", "raw read\n(kvm-clock-rs)",
              "steal-clock read\n(scheduler)", "EOI hook\n(PV EOI armed)"]
    a_vals = [ka or 0, ua or 0, 0, sra or 0, pfa or 0]
    b_vals = [kb or 0, ub or 0, rb or 0, srb or 0, pfb or 0]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], a_vals, 0.4, label="A: in-tree C (kvm-clock, kvm_steal_clock, PV EOI)")
    ax.bar([i + 0.2 for i in x], b_vals, 0.4, label="B: kvm_guest_rs (Rust module)")
    for i, (a, b) in enumerate(zip(a_vals, b_vals)):
        if a:
            ax.text(i - 0.2, a, f"{a:.0f}", ha="center", va="bottom", fontsize=8)
        if b:
            ax.text(i + 0.2, b, f"{b:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("guest instructions per call\n(icount shift 0)")
    ax.set_title("Cost on the KVM host model, same kernel image", fontsize=10)
    ax.legend(fontsize=7)
    eoi_labels = ["A", "B", "off"]
    eoi_vals = [pick(ea, 1) or 0, pick(eb, 1) or 0, pick(eo, 1) or 0]
    ax2.bar(range(3), eoi_vals, 0.6, color=["C0", "C1", "C7"])
    for i, v in enumerate(eoi_vals):
        ax2.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(range(3))
    ax2.set_xticklabels(eoi_labels)
    ax2.set_ylabel("APIC EOI writes\nper 1000 interrupts")
    ax2.set_title("PV EOI: exits left", fontsize=10)
    ov_labels = ["A", "B"]
    ov_vals = [speed(ova) or 0, speed(ovb) or 0]
    ax3.bar(range(2), ov_vals, 0.6, color=["C0", "C1"])
    for i, v in enumerate(ov_vals):
        ax3.text(i, v, f"{v:.2f}x", ha="center", va="bottom", fontsize=8)
    ax3.axhline(1.0, color="C7", linewidth=0.8)
    ax3.set_xticks(range(2))
    ax3.set_xticklabels(ov_labels)
    ax3.set_ylabel("speed-up over the vCPU\nwaiting for each page")
    ax3.set_title("Async PF: overlap", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[3], dpi=120)
    plt.close(fig)

    # One plot per feature next to the overview: compare-kvmclock.png, ...
    stem = sys.argv[3][:-4] if sys.argv[3].endswith(".png") else sys.argv[3]

    def bars(ax, labels, a_vals, b_vals, ylabel, title, digits=0):
        xs = range(len(labels))
        ax.bar([i - 0.2 for i in xs], [v or 0 for v in a_vals], 0.4, label="A: in-tree C")
        ax.bar([i + 0.2 for i in xs], [v or 0 for v in b_vals], 0.4, label="B: kvm_guest_rs")
        for i, (va, vb) in enumerate(zip(a_vals, b_vals)):
            for dx, v in ((-0.2, va), (0.2, vb)):
                if v:
                    ax.text(i + dx, v, f"{v:.{digits}f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)

    def feature_plot(name, panels):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
        for ax, panel in zip(axes if len(panels) > 1 else [axes], panels):
            bars(ax, *panel)
        fig.tight_layout()
        fig.savefig(f"{stem}-{name}.png", dpi=110)
        plt.close(fig)

    insns = "guest instructions per call (icount)"
    feature_plot("kvmclock", [
        (["ktime_get()", "clock_gettime()", "raw read"], [ka, ua, None], [kb, ub, rb], insns,
         "kvmclock: read cost"),
    ])
    feature_plot("steal", [
        (["steal-clock read"], [sra], [srb], insns, "Steal time: read cost"),
        (["/proc/stat steal /\ninjected steal"], [ca], [cb], "ratio (1 = exact)", "Steal time: accuracy", 4),
    ])
    feature_plot("pv-eoi", [
        (["EOI writes per\n1000 interrupts"], [pick(ea, 1)], [pick(eb, 1)],
         f"APIC EOI writes (PV EOI off: {fmt(pick(eo, 1), 0)})", "PV EOI: exits left", 1),
        (["hook, armed", "hook, not armed"], [pfa, psa], [pfb, psb], "instructions", "PV EOI: hook cost"),
    ])
    feature_plot("async-pf", [
        (["page-ready\ninterrupt", "early wake"], [hwa, hea], [hwb, heb], "instructions",
         "Async PF: page-ready handler"),
        (["episode beyond\nthe host delay"], [epa], [epb], "instructions per page", "Async PF: episode"),
        (["speed-up over the\nvCPU waiting"], [speed(ova)], [speed(ovb)], "x", "Async PF: overlap", 2),
    ])


if __name__ == "__main__":
    main()
