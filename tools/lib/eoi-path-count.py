#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""eoi-path-count: instructions on the two paths of the PV EOI hook, in C and in Rust.

Usage: eoi-path-count VMLINUX MODULE.ko

The EOI hook runs inside every interrupt handler, so it cannot be timed on its own in a guest
(a benchmark calling it outside an interrupt would end interrupts nobody handled). Both hooks
are a few straight-line instructions with one branch, so the instructions each path executes
are counted in the compiled code instead, the same way on both sides, from the binaries
`make compare` boots:

- A: kvm_guest_apic_eoi_write() in VMLINUX (the in-tree guest's hook);
- B: the module's trampoline kernel::apic_eoi::Registration::<T>::eoi_callback with the driver's
  EoiOverride::eoi() inlined, plus, on the slow path, apic_eoi_native() in VMLINUX up to its
  jump into the APIC driver.

"fast": the host armed PV EOI (bit set), from the hook's first instruction to its return.
"slow": the bit was clear, from the first instruction to the jump or call into the APIC
driver's EOI (apic_call_native_eoi), which both sides then run alike. Paths into KASAN, UBSAN,
panic or BUG reports are not counted. Prints "A fast N", "A slow N", "B fast N", "B slow N"
(the shortest path of each kind; a hook with more than one prints them all as "... N (also M)")
and exits 1 if a hook or a path is not found.
"""
import re
import subprocess
import sys

INSN = re.compile(r"^\s*([0-9a-f]+):\s+([a-z][a-z0-9.]*)\s*(.*)$")
RELOC = re.compile(r"^\s*[0-9a-f]+:\s+R_X86_64_\S+\s+(\S+?)(?:[-+]0x[0-9a-f]+)?$")
TARGET = re.compile(r"^(?:\*)?([0-9a-f]+)\s+<([^>+]+)(?:\+0x([0-9a-f]+))?>")
NATIVE = ("__SCT__apic_call_native_eoi", "apic_eoi_native")
ERROR = ("__asan_", "__kasan", "__ubsan", "panic", "__warn", "report_bug", "rust_begin_unwind",
         "__rust_panic", "core::panicking")


def disasm(path, symbol):
    """The instructions of `symbol` in `path`: [(addr, mnemonic, operands, target symbol)]."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-r", "--disassemble=" + symbol,
                          path], check=True, capture_output=True, text=True).stdout
    insns, inside = [], False
    for line in out.splitlines():
        if line.endswith(">:"):
            inside = line.split("<", 1)[1].rstrip(">:") == symbol
            continue
        if not inside:
            continue
        m = RELOC.match(line)
        if m and insns:
            a, mn, ops, _ = insns[-1]
            insns[-1] = (a, mn, ops, m.group(1))
            continue
        m = INSN.match(line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2), m.group(3), None))
    return insns


def find_symbol(path, pattern):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if re.search(pattern, line)]
    return names[0] if len(names) == 1 else None


def paths(insns, max_len=200):
    """Every path from the first instruction: (kind, count), kind "fast" or "slow"."""
    index = {a: i for i, (a, _, _, _) in enumerate(insns)}
    results = []

    def target(ops, reloc):
        m = TARGET.match(ops)
        name = reloc or (m.group(2) if m else None)
        addr = int(m.group(1), 16) if m and not reloc else None
        return name, addr

    def walk(i, count, seen):
        while i < len(insns) and count < max_len:
            a, mn, ops, reloc = insns[i]
            count += 1
            name, addr = target(ops, reloc)
            if mn.startswith("ret"):
                results.append(("fast", count))
                return
            if mn == "ud2" or mn == "int3":
                return
            if mn.startswith("call"):
                if name and any(e in name for e in ERROR):
                    return
                if name and any(n in name for n in NATIVE):
                    results.append(("slow", count))
                    return
                i += 1
                continue
            if mn.startswith("j"):
                internal = addr is not None and addr in index and not reloc
                external = name is not None and not internal
                if mn.startswith("jmp"):
                    if external:
                        if any(n in name for n in NATIVE):
                            results.append(("slow", count))
                        elif "return_thunk" in name:
                            results.append(("fast", count))
                        return
                    if not internal or addr in seen:
                        return
                    i = index[addr]
                    seen = seen | {addr}
                    continue
                # Conditional: both ways.
                if external and any(n in name for n in NATIVE):
                    results.append(("slow", count))
                elif internal and addr not in seen:
                    walk(index[addr], count, seen | {addr})
                i += 1
                continue
            i += 1

    walk(0, 0, frozenset())
    return results


def summary(results, kind, extra=0):
    counts = sorted({c + extra for k, c in results if k == kind})
    if not counts:
        return None
    return str(counts[0]) + ("" if len(counts) == 1 else " (also " + " ".join(map(str, counts[1:])) + ")")


def main():
    vmlinux, ko = sys.argv[1], sys.argv[2]
    ok = True
    a = paths(disasm(vmlinux, "kvm_guest_apic_eoi_write"))
    sym = find_symbol(ko, r"apic_eoi.*Registration.*eoi_callback")
    b = paths(disasm(ko, sym)) if sym else []
    native = [c for k, c in paths(disasm(vmlinux, "apic_eoi_native")) if k == "slow"]
    for side, res, extra in (("A", a, 0), ("B", b, min(native) if native else 0)):
        for kind in ("fast", "slow"):
            s = summary(res, kind, extra if kind == "slow" else 0)
            if s is None or (side == "B" and kind == "slow" and not native):
                ok = False
                s = "n/a"
            print(f"{side} {kind} {s}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
