# SPDX-License-Identifier: GPL-2.0
#
# gdb -batch -ex 'file vmlinux' -x trace-path-gdb.py, for tools/runner/trace-path:
# attaches to QEMU's gdbstub (TRACE_PORT), stops at every entry of TRACE_SYM and
# single-steps that vCPU until a WRMSR to TRACE_MSR, recording the address of
# every instruction. Writes the traces as JSON to TRACE_OUT after each one.
# A loop that only ends when time passes (single steps stop the clock) is left
# with "finish" once an address repeats TRACE_SPIN (500) times; such a trace records -1 there
# and is marked ("finishes"), its count is a lower bound.
import json
import os

import gdb

port = os.environ.get("TRACE_PORT", "1234")
sym = os.environ.get("TRACE_SYM", "asm_sysvec_kvm_asyncpf_interrupt")
out = os.environ["TRACE_OUT"]
msr = int(os.environ.get("TRACE_MSR", "0x4b564d07"), 0)
limit = int(os.environ.get("TRACE_LIMIT", "100000"))
spin = int(os.environ.get("TRACE_SPIN", "500"))

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote :" + port)
gdb.execute("break " + sym)
inf = gdb.selected_inferior()
traces = []
while True:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break
    pcs, seen, finishes, ok = [], {}, 0, False
    try:
        while len(pcs) < limit:
            pc = int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF
            pcs.append(pc)
            if (inf.read_memory(pc, 2).tobytes() == b"\x0f\x30"
                    and int(gdb.parse_and_eval("$rcx")) & 0xFFFFFFFF == msr):
                ok = True
                break
            seen[pc] = seen.get(pc, 0) + 1
            if seen[pc] == spin and finishes < 5:
                gdb.execute("finish", to_string=True)
                finishes += 1
                pcs.append(-1)
                continue
            gdb.execute("stepi", to_string=True)
    except gdb.error:
        pass
    if not pcs:
        # The guest went away at the stop (QEMU quits when the plan ends).
        break
    traces.append({"ok": ok, "finishes": finishes, "pcs": pcs})
    with open(out, "w") as f:
        json.dump(traces, f)
