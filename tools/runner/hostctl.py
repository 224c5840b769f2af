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
        json.loads(self.file.readline())  # greeting
        self.call("qmp_capabilities")

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
