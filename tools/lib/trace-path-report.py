#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# trace-path-report.py TRACES.json VMLINUX [MODULE.ko TEXT_ADDR]: the
# instructions of each trace tools/runner/trace-path recorded, per function
# (symbols from nm; the module's relative to the address of its text).
import bisect
import json
import subprocess
import sys


def symbols(path, base=0):
    out = subprocess.run(["nm", "-n", "-C", "--defined-only", path],
                         capture_output=True, text=True, check=True).stdout
    res = []
    for line in out.splitlines():
        f = line.split(None, 2)
        if len(f) == 3 and f[1] in "tTwW":
            res.append((int(f[0], 16) + base, f[2]))
    return res


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit("usage: trace-path-report.py TRACES.json VMLINUX [MODULE.ko TEXT_ADDR]")
    traces = json.load(open(sys.argv[1]))
    syms = symbols(sys.argv[2])
    if len(sys.argv) == 5:
        syms += symbols(sys.argv[3], int(sys.argv[4], 16))
    syms.sort()
    addrs = [a for a, _ in syms]

    def name(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        return syms[i][1] if i >= 0 else hex(pc)

    for k, t in enumerate(traces):
        pcs = [p for p in t["pcs"] if p >= 0]
        per = {}
        for pc in pcs:
            n = name(pc)
            per[n] = per.get(n, 0) + 1
        note = "" if t["ok"] else " (did not reach the WRMSR)"
        if t.get("finishes"):
            note += f" ({t['finishes']} loops left with finish: a lower bound)"
        print(f"trace {k}: {len(pcs)} instructions{note}")
        for n, c in sorted(per.items(), key=lambda x: -x[1]):
            print(f"  {c:6d}  {n}")


main()
