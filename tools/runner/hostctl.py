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
  migrate                   live-migrate the VM into a file, quit this QEMU, and
                            restore the file into a fresh one (run-guest starts
                            it with the same arguments, paused); set the host
                            configuration changed by cpu-set and qom-set again,
                            continue the VM; reply (on the new channel)
                            "downtime_ms N": from the source's stop to the
                            destination's cont.  If the destination fails, it
                            is quit too (no VM runs to take a reply): the run
                            ends with the error in the log

The sockets of QEMU generation N (0 at boot, one more per migration) are
DIR/qmp.N.sock and DIR/ctl.N.sock; the migration file is DIR/vm.N, and
DIR/vm.N.done tells run-guest to restore it.

A reply starts with "ok" or "err MESSAGE".  The guest plans use it to read
the host model's counters and to arm its knobs while the test runs
(tools/runner/guest/hostq).  Every request and reply is logged to --log.
"""
import argparse
import json
import os
import shlex
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


class Host:
    """The QEMU of the current generation: its monitor and the guest channel."""

    def __init__(self, directory, timeout):
        self.dir = directory
        self.gen = 0
        # Host configuration set at run time, for the next generation, in
        # the order it was last set: (QOM path, property) -> value, with
        # path None for a cpu-set (every vCPU).
        self.props = {}
        self.attach(timeout)

    def attach(self, timeout):
        self.ctl = connect(f"{self.dir}/ctl.{self.gen}.sock", timeout)
        self.qmp = Qmp(f"{self.dir}/qmp.{self.gen}.sock", timeout)

    def detach(self):
        for s in (self.ctl, self.qmp.sock):
            try:
                s.close()
            except OSError:
                pass

    def cpu_set(self, pairs):
        for c in self.qmp.call("query-cpus-fast"):
            for prop, value in pairs:
                self.qmp.call("qom-set", {"path": c["qom-path"], "property": prop, "value": value})

    def migrate(self):
        """Moves the guest into the next generation; returns the downtime in seconds.

        A failure before the source quits leaves the guest running there (the
        error is the reply). After that nothing can answer a guest whose VM
        does not run: the destination is quit too, so that run-guest ends at
        once with the console, and the error goes to the log.
        """
        qmp = self.qmp
        path = f"{self.dir}/vm.{self.gen}"
        q = shlex.quote(path)
        # A file takes RAM as fast as it comes: no bandwidth cap, and a stop
        # phase long enough to converge under TCG's dirty tracking.
        qmp.call("migrate-set-parameters", {"max-bandwidth": 8 << 30, "downtime-limit": 2000})
        # exec: rather than file: (QEMU 8.2+), for the stock QEMU too; the
        # marker says that cat has written all of it (QEMU may report
        # "completed" before the command exits).
        qmp.call("migrate", {"uri": f"exec:cat > {q} && : > {q}.written"})
        # hostq waits 90 s for a reply line: 40 s for each side.
        deadline = time.monotonic() + 40
        while True:
            st = qmp.call("query-migrate")
            status = st.get("status")
            if status == "completed" and os.path.exists(path + ".written"):
                break
            if status in ("failed", "cancelled") or time.monotonic() > deadline:
                if status == "completed":
                    qmp.call("cont")  # the source stopped for good: run it again
                elif status not in ("failed", "cancelled"):
                    qmp.call("migrate_cancel")
                raise RuntimeError(f"migration {status}: {st.get('error-desc', 'not written in 40 s')}")
            time.sleep(0.02)
        stopped = time.monotonic() - st.get("downtime", 0) / 1000
        with open(path + ".done", "w", encoding="utf-8") as f:
            f.write(f"{st.get('downtime', 0)}\n")
        try:
            qmp.call("quit")
        except (EOFError, OSError):
            pass
        self.detach()
        self.gen += 1
        try:
            self.attach(40)
            qmp = self.qmp
            deadline = time.monotonic() + 40
            while True:
                status = qmp.call("query-status")["status"]
                if status != "inmigrate":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the destination did not load the VM state in 40 s")
                time.sleep(0.02)
            if status not in ("paused", "prelaunch"):
                raise RuntimeError(f"destination in state {status} after loading the VM state")
            for (p, prop), value in self.props.items():
                if p is None:
                    self.cpu_set([(prop, value)])
                else:
                    qmp.call("qom-set", {"path": p, "property": prop, "value": value})
            qmp.call("cont")
        except Exception as e:
            try:
                self.qmp.call("quit")
            except Exception:  # noqa: BLE001 - gone or never reached: either way it ends
                pass
            raise MigrationLost(f"migration: the destination failed: {e}") from e
        downtime = time.monotonic() - stopped
        for f in (path, path + ".written"):
            os.remove(f)
        return downtime

    def remember(self, path, prop, value):
        """Notes a property set at run time (path None: every vCPU), in order."""
        self.props.pop((path, prop), None)
        self.props[(path, prop)] = value


class MigrationLost(Exception):
    """The guest is gone with a failed migration: nothing can take a reply."""


def handle(host, line):
    qmp = host.qmp
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
        host.remember(path, prop, json.loads(value))
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
        host.cpu_set(pairs)
        for prop, value in pairs:
            host.remember(None, prop, value)
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
    if verb == "migrate":
        return ["ok", f"downtime_ms {round(host.migrate() * 1000)}"]
    raise ValueError(f"unknown request '{verb}'")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="the sockets' directory (see above)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--state-at-shutdown", metavar="FILE",
                    help="when the guest shuts down or resets (QEMU run with "
                         "-action shutdown=pause), write 'info kvm-pv' to FILE, then quit QEMU")
    a = ap.parse_args()
    with open(a.log, "w", encoding="utf-8") as log:
        try:
            host = Host(a.dir, a.timeout)
        except OSError as e:
            print(f"hostctl: cannot connect to QEMU: {e}", file=log)
            return 1
        buf = b""
        while True:
            if a.state_at_shutdown:
                # Watch QMP too: the paused VM's state is what the guest left at its reset.
                try:
                    ready, _, _ = select.select([host.ctl, host.qmp.sock], [], [])
                    if host.qmp.sock in ready and host.ctl not in ready:
                        host.qmp.poll_event()
                except (EOFError, OSError):
                    return 0
                if host.qmp.shutdown:
                    state = host.qmp.call("human-monitor-command", {"command-line": "info kvm-pv"})
                    with open(a.state_at_shutdown, "w", encoding="utf-8") as f:
                        f.write(state)
                    print("> (shutdown) info kvm-pv saved; quit", file=log)
                    log.flush()
                    try:
                        host.qmp.call("quit")
                    except (EOFError, OSError):
                        pass
                    return 0
                if host.ctl not in ready:
                    continue
            try:
                data = host.ctl.recv(4096)
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
                gen = host.gen
                t0 = time.monotonic()
                try:
                    reply = handle(host, line)
                except MigrationLost as e:
                    print(f"> {line}\n{e}", file=log)
                    return 1
                except (EOFError, OSError):
                    return 0
                except Exception as e:  # Report every failure to the guest.
                    reply = [f"err {e}".replace("\n", " ")]
                print(f"> {line} ({(time.monotonic() - t0) * 1000:.0f} ms)", file=log)
                for r in reply:
                    print(f"< {r}", file=log)
                log.flush()
                if host.gen != gen:
                    buf = b""  # what the old channel still held is gone with it
                host.ctl.sendall(("\n".join(reply + ["KGR-END"]) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
