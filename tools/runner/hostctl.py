#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""hostctl: serve QEMU monitor requests from inside the guest.

run-guest --hostctl starts QEMU with a QMP socket and a second serial port
(the guest's ttyS1) connected to a UNIX socket, then runs this proxy.  The
guest writes one request per line on ttyS1 and reads the reply lines up to a
line "KGR-END".  Requests:

  hmp COMMAND...            human monitor command; reply: its output lines
  qom-get PATH PROPERTY     reply: the value as JSON
  qom-set PATH PROPERTY JSON
  qmp JSON                  raw QMP command object; reply: the "return" as JSON
  cpu-path INDEX            QOM path of vCPU INDEX (for qom-get/qom-set)
  cpu-set PROP JSON...      set each property (a PROP JSON pair, no space in
                            JSON) on every vCPU, in one request
  cpu-sum PROP...           each integer property summed over all vCPUs, read
                            in one snapshot with the VM stopped; reply: one
                            "PROP SUM" line per property
  pause SECONDS             stop the VM, wait, continue it (the guest cannot send
                            "cont" itself); reply after the VM runs again

A reply starts with "ok" or "err MESSAGE".  The guest plans use it to read
the host model's counters and to arm its knobs while the test runs
(tools/runner/guest/hostq).  Every request and reply is logged to --log.
"""
import argparse
import json
import select
import socket
import sys
import time


def connect(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Qmp:
    def __init__(self, path, timeout):
        self.sock = connect(path, timeout)
        self.file = self.sock.makefile("rw", encoding="utf-8", newline="\n")
        self.shutdown = False  # a SHUTDOWN event was seen
        json.loads(self.file.readline())  # greeting
        self.call("qmp_capabilities")

    def note(self, msg):
        if msg.get("event") == "SHUTDOWN":
            self.shutdown = True

    def poll_event(self):
        """Reads one message that arrived while no request was pending."""
        line = self.file.readline()
        if not line:
            raise EOFError("QMP closed")
        self.note(json.loads(line))

    def call(self, execute, arguments=None):
        cmd = {"execute": execute}
        if arguments is not None:
            cmd["arguments"] = arguments
        return self.raw(cmd)

    def raw(self, cmd):
        self.file.write(json.dumps(cmd) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP closed")
            msg = json.loads(line)
            if "event" in msg:
                self.note(msg)
                continue
            if "error" in msg:
                raise RuntimeError(msg["error"].get("desc", str(msg["error"])))
            return msg.get("return")


def handle(qmp, line):
    verb, _, rest = line.partition(" ")
    if verb == "hmp":
        out = qmp.call("human-monitor-command", {"command-line": rest})
        return ["ok"] + out.rstrip("\n").split("\n") if out else ["ok"]
    if verb == "qom-get":
        path, prop = rest.split()
        return ["ok", json.dumps(qmp.call("qom-get", {"path": path, "property": prop}))]
    if verb == "qom-set":
        path, prop, value = rest.split(" ", 2)
        qmp.call("qom-set", {"path": path, "property": prop, "value": json.loads(value)})
        return ["ok"]
    if verb == "cpu-path":
        for cpu in qmp.call("query-cpus-fast"):
            if cpu["cpu-index"] == int(rest):
                return ["ok", cpu["qom-path"]]
        raise ValueError(f"no vCPU {rest}")
    if verb == "cpu-set":
        words = rest.split()
        if not words or len(words) % 2:
            raise ValueError("cpu-set wants PROP JSON pairs")
        pairs = [(words[i], json.loads(words[i + 1])) for i in range(0, len(words), 2)]
        for c in qmp.call("query-cpus-fast"):
            for prop, value in pairs:
                qmp.call("qom-set", {"path": c["qom-path"], "property": prop, "value": value})
        return ["ok"]
    if verb == "cpu-sum":
        props = rest.split()
        paths = [c["qom-path"] for c in qmp.call("query-cpus-fast")]
        running = qmp.call("query-status")["running"]
        if running:
            qmp.call("stop")
        try:
            sums = {p: sum(int(qmp.call("qom-get", {"path": c, "property": p})) for c in paths)
                    for p in props}
        finally:
            if running:
                qmp.call("cont")
        return ["ok"] + [f"{p} {sums[p]}" for p in props]
    if verb == "qmp":
        return ["ok", json.dumps(qmp.raw(json.loads(rest)))]
    if verb == "pause":
        secs = float(rest)
        if not 0 < secs <= 60:
            raise ValueError(f"pause {rest}: want 0 < SECONDS <= 60")
        qmp.call("stop")
        time.sleep(secs)
        qmp.call("cont")
        return ["ok"]
    raise ValueError(f"unknown request '{verb}'")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--state-at-shutdown", metavar="FILE",
                    help="when the guest shuts down or resets (QEMU run with "
                         "-action shutdown=pause), write 'info kvm-pv' to FILE, then quit QEMU")
    a = ap.parse_args()
    with open(a.log, "w", encoding="utf-8") as log:
        try:
            ctl = connect(a.ctl, a.timeout)
            qmp = Qmp(a.qmp, a.timeout)
        except OSError as e:
            print(f"hostctl: cannot connect to QEMU: {e}", file=log)
            return 1
        buf = b""
        while True:
            if a.state_at_shutdown:
                # Watch QMP too: the paused VM's state is what the guest left at its reset.
                try:
                    ready, _, _ = select.select([ctl, qmp.sock], [], [])
                    if qmp.sock in ready and ctl not in ready:
                        qmp.poll_event()
                except (EOFError, OSError):
                    return 0
                if qmp.shutdown:
                    state = qmp.call("human-monitor-command", {"command-line": "info kvm-pv"})
                    with open(a.state_at_shutdown, "w", encoding="utf-8") as f:
                        f.write(state)
                    print("> (shutdown) info kvm-pv saved; quit", file=log)
                    log.flush()
                    try:
                        qmp.call("quit")
                    except (EOFError, OSError):
                        pass
                    return 0
                if ctl not in ready:
                    continue
            try:
                data = ctl.recv(4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").strip("\r\x00 ")
                if not line:
                    continue
                try:
                    reply = handle(qmp, line)
                except (EOFError, OSError):
                    return 0
                except Exception as e:  # Report every failure to the guest.
                    reply = [f"err {e}".replace("\n", " ")]
                print(f"> {line}", file=log)
                for r in reply:
                    print(f"< {r}", file=log)
                log.flush()
                ctl.sendall(("\n".join(reply + ["KGR-END"]) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
