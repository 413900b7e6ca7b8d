#!/usr/bin/env python3
"""Soak test for rgate: mixed text + QAP1 load while session processes are SIGKILLed.

Usage:
  scripts/soak.py                                  # start rgate, 300 s, 12 clients, a kill every 2 s
  scripts/soak.py --duration 120 --bin .build/debug/rgate
  scripts/soak.py --text-port 8080 --qap-port 6311 # attach to a running server (not stopped at exit)
  scripts/soak.py --help                           # every option

Every request must end in an answer (a result or an error reply) or, if the harness injected a
fault into that very session (SIGKILL of its process, or its own q()), in a detected connection
close ("lost_to_fault"). Anything else is "lost" and fails the run. The killer SIGSTOPs a random
session process (a child of the worker), reads from /proc which client connection it holds,
records the fault against that connection, then SIGKILLs it; idle spares (no client yet) are
resumed and skipped. Prints one summary JSON on stdout; exits 0 when lost == 0 and the
supervisor's RSS grew by at most --max-rss-growth (50 %), 1 otherwise, 2 when the server could
not be started or found. Python 3 standard library only; Linux only (/proc). Ctrl-C stops
early, prints the summary and cleans up every process started.
"""

import argparse
import collections
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SOCKET_TIMEOUT = 30.0

# (name, code, weight, expected outcome). Weights are relative; "timeout" and "quit" are rare.
KINDS = [
    ("fast", "1+1", 28.0, "ok"),
    ("sum", "sum(1:1e5)", 18.0, "ok"),
    ("sleep", "Sys.sleep(0.2)", 14.0, "ok"),
    ("error", "stop('x')", 14.0, "error"),
    ("heavy", "x <- rnorm(1e6); mean(x)", 12.0, "ok"),
    ("timeout", "repeat {}", 0.25, "error"),
    ("quit", "q('no')", 1.0, "quit"),
]
KIND_INFO = {k[0]: k for k in KINDS}
EXPECTED_TEXT = {"fast": "[1] 2\n", "sum": "[1] 5000050000\n", "sleep": "", "error": "Error: x\n"}
QAP_OK = 0x10001
QAP_STATUS_BUSY = 0x50
TEXT_ERROR = re.compile(r"(^|\n)Error")


# ---------------------------------------------------------------------------------------- /proc

def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def proc_table():
    """pid -> (ppid, state, starttime) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read_file(f"/proc/{name}/stat")
        if not stat:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        try:
            table[int(name)] = (int(fields[1]), fields[0], int(fields[19]))
        except (IndexError, ValueError):
            continue
    return table


def descendants(root, table=None):
    table = table if table is not None else proc_table()
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def session_pids(supervisor):
    """Session processes: children of the worker (zygote) processes, the supervisor's children."""
    table = proc_table()
    zygotes = [p for p, (pp, _, _) in table.items() if pp == supervisor]
    return [p for p, (pp, state, _) in table.items() if pp in zygotes and state not in "ZX"]


def rss_kb(pid):
    status = read_file(f"/proc/{pid}/status")
    if status:
        m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        if m:
            return int(m.group(1))
    return 0


def pss_kb(pid):
    rollup = read_file(f"/proc/{pid}/smaps_rollup")
    if rollup:
        m = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
        if m:
            return int(m.group(1))
    return 0


def tcp_sockets():
    """inode -> (local port, remote port, state) for every TCP socket (IPv4 and IPv6)."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        text = read_file(path) or ""
        for line in text.splitlines()[1:]:
            f = line.split()
            if len(f) < 10:
                continue
            try:
                out[int(f[9])] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3])
            except ValueError:
                continue
    return out


def socket_inodes(pid):
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening_pid(port):
    """The pid that owns the listening TCP socket on `port` (attach mode)."""
    inodes = {i for i, (lp, _, st) in tcp_sockets().items() if lp == port and st == "0A"}
    owners = sorted(p for p in proc_table() if socket_inodes(p) & inodes)
    return owners[0] if owners else None


def wait_stopped(pid, timeout=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        stat = read_file(f"/proc/{pid}/stat")
        if stat is None:
            return "gone"
        state = stat[stat.rfind(")") + 2:].split()[0]
        if state in "Tt":
            return "stopped"
        if state in "ZX":
            return "gone"
        time.sleep(0.002)
    return "timeout"


# ---------------------------------------------------------------------------------------- state

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()
        self.by_kind = collections.defaultdict(collections.Counter)
        self.by_proto = collections.defaultdict(collections.Counter)
        self.latency = collections.defaultdict(list)  # kind -> seconds, answered requests only
        self.lost_examples = []
        self.unexpected_examples = []

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n

    def request(self, proto, kind, outcome, latency=None, detail=None):
        with self.lock:
            self.c[outcome] += 1
            self.by_kind[kind][outcome] += 1
            self.by_proto[proto][outcome] += 1
            if latency is not None:
                self.latency[kind].append(latency)
            if outcome == "lost" and len(self.lost_examples) < 20:
                self.lost_examples.append(detail)

    def unexpected(self, what, detail):
        with self.lock:
            self.c["unexpected." + what] += 1
            if len(self.unexpected_examples) < 20:
                self.unexpected_examples.append(detail)


class Faults:
    """Kills the harness injected, by the client connection they hit ((client port, server port))."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kills = {}  # (client port, server port) -> [monotonic times]
        self.c = collections.Counter()

    def record_kill(self, keys, when):
        with self.lock:
            for key in keys:
                self.kills.setdefault(key, []).append(when)

    def killed_since(self, key, since):
        with self.lock:
            return any(t >= since for t in self.kills.get(key, ()))

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n


class Conn:
    def __init__(self, proto, sock, server_port, started):
        self.proto = proto
        self.sock = sock
        self.key = (sock.getsockname()[1], server_port)
        self.started = started
        self.quit_sent = False
        self.requests = 0


class Soak:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.faults = Faults()
        self.stop_clients = threading.Event()
        self.stop_killer = threading.Event()
        self.stop_sampler = threading.Event()
        self.interrupted = False
        self.deadline = None
        self.live = set()  # open client sockets, shut down on Ctrl-C
        self.live_lock = threading.Lock()
        self.stopped_pids = set()  # SIGSTOPped by the killer and not yet killed or resumed
        self.server = None
        self.supervisor = None
        self.started_tree = {}  # pid -> starttime of every process of ours seen, for cleanup
        self.rss = {"samples": 0}
        self.timeline = []

    # ------------------------------------------------------------------------------- server

    def start_server(self):
        a = self.args
        log = open(a.server_log, "wb")
        cmd = [a.bin, "serve", "--host", a.host, "--text-port", "0", "--qap-port", "0",
               "--workers", str(a.workers), "--max-sessions", str(a.max_sessions),
               "--eval-timeout", str(a.eval_timeout), "--exit-with-parent"]
        self.server_cmd = cmd
        # Own process group: Ctrl-C reaches only us; we stop the server ourselves.
        self.server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=log, start_new_session=True)
        log.close()
        ports, buf, end = {}, b"", time.monotonic() + 120
        fd = self.server.stdout.fileno()
        while len(ports) < 2:
            left = end - time.monotonic()
            if left <= 0 or self.server.poll() is not None:
                raise RuntimeError(f"rgate did not start (see {a.server_log})")
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = re.match(r"rgate: listening (\S+) (\S+)", line.decode("utf-8", "replace"))
                if m:
                    ports[m.group(1)] = int(m.group(2).rsplit(":", 1)[1])
        threading.Thread(target=self._drain, args=(fd,), daemon=True).start()
        self.text_port, self.qap_port = ports.get("text"), ports.get("qap1")
        self.supervisor = self.server.pid

    def _drain(self, fd):
        try:
            while os.read(fd, 65536):
                pass
        except OSError:
            pass

    def remember_tree(self):
        if self.server is None:
            return
        table = proc_table()
        for pid in [self.supervisor] + descendants(self.supervisor, table):
            if pid in table:
                self.started_tree.setdefault(pid, table[pid][2])

    def cleanup(self):
        for pid in list(self.stopped_pids):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        if self.server is None:
            return
        self.remember_tree()
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        # The zygote and sessions die with the supervisor; make sure of it.
        time.sleep(0.2)
        table = proc_table()
        for pid, start in self.started_tree.items():
            if pid in table and table[pid][2] == start and table[pid][1] not in "ZX":
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.stats.add("cleanup.killed_leftovers")
                except OSError:
                    pass

    # ------------------------------------------------------------------------------- clients

    def connect(self, proto):
        port = self.text_port if proto == "text" else self.qap_port
        started = time.monotonic()
        try:
            sock = socket.create_connection((self.args.host, port), timeout=SOCKET_TIMEOUT)
        except OSError as e:
            self.stats.add(f"connections.connect_failed.{type(e).__name__}")
            return None
        sock.settimeout(SOCKET_TIMEOUT)
        conn = Conn(proto, sock, port, started)
        with self.live_lock:
            self.live.add(sock)
        self.stats.add("connections.opened")
        if proto == "qap1":
            try:
                ident = recv_exact(sock, 32)
                if not ident.startswith(b"Rsrv0103QAP1"):
                    raise EOFError("bad identification %r" % ident[:12])
            except (OSError, EOFError) as e:
                if self.faults.killed_since(conn.key, conn.started):
                    self.stats.add("connections.qap_handshake_lost_to_fault")
                elif self.interrupted:
                    self.stats.add("connections.aborted")
                else:
                    self.stats.add("connections.qap_handshake_failed")
                    self.stats.unexpected("qap_handshake", {"error": repr(e)})
                self.close(conn)
                return None
        return conn

    def close(self, conn):
        with self.live_lock:
            self.live.discard(conn.sock)
        try:
            conn.sock.close()
        except OSError:
            pass

    def client(self, index):
        rng = random.Random(self.args.seed * 1000 + index)
        names = [k[0] for k in KINDS]
        weights = [k[2] for k in KINDS]
        if not self.args.timeouts:
            weights[names.index("timeout")] = 0
        protos = [p for p, port in (("text", self.text_port), ("qap1", self.qap_port)) if port]
        while not self.stop_clients.is_set() and time.monotonic() < self.deadline:
            proto = rng.choice(protos)
            count = 1 if rng.random() < self.args.fresh_share else rng.randint(2, 10)
            conn = self.connect(proto)
            if conn is None:
                time.sleep(0.05)
                continue
            try:
                for _ in range(count):
                    if self.stop_clients.is_set() or time.monotonic() >= self.deadline:
                        break
                    kind = rng.choices(names, weights)[0]
                    if not self.request(conn, kind):
                        break
            finally:
                self.close(conn)

    def request(self, conn, kind):
        """Sends one request and classifies its outcome. Returns whether the connection is still usable."""
        _, code, _, expect = KIND_INFO[kind]
        conn.requests += 1
        if kind == "quit":
            conn.quit_sent = True
            self.faults.add("quits")
        self.stats.add("sent")
        t0 = time.monotonic()
        try:
            if conn.proto == "text":
                body = code.encode()
                conn.sock.sendall(b"UTF-8\n" + len(body).to_bytes(8, "little") + body)
                n = int.from_bytes(recv_exact(conn.sock, 8), "little")
                reply = recv_exact(conn.sock, n).decode("utf-8", "replace")
                cmd = None
            else:
                data = code.encode() + b"\0"
                data += b"\0" * (-len(data) % 4)
                payload = struct.pack("<I", 4 | (len(data) << 8)) + data
                conn.sock.sendall(struct.pack("<IIII", 3, len(payload), 0, 0) + payload)
                cmd, length, _, high = struct.unpack("<IIII", recv_exact(conn.sock, 16))
                reply = recv_exact(conn.sock, length | (high << 32))
        except (OSError, EOFError) as e:
            self.no_answer(conn, kind, e, time.monotonic() - t0)
            return False
        latency = time.monotonic() - t0
        return self.answered(conn, kind, expect, cmd, reply, latency)

    def no_answer(self, conn, kind, error, waited):
        if conn.quit_sent:
            self.stats.request(conn.proto, kind, "lost_to_fault")
            self.stats.add("lost_to_fault.quit")
        elif self.faults.killed_since(conn.key, conn.started):
            self.stats.request(conn.proto, kind, "lost_to_fault")
            self.stats.add("lost_to_fault.kill")
        elif self.interrupted:
            self.stats.request(conn.proto, kind, "aborted")
        else:
            detail = {"proto": conn.proto, "kind": kind, "request_in_connection": conn.requests,
                      "connection_age_s": round(time.monotonic() - conn.started, 3),
                      "waited_s": round(waited, 3), "error": repr(error), "client_port": conn.key[0],
                      "at_s": round(time.monotonic() - self.t_start, 3)}
            self.stats.request(conn.proto, kind, "lost", detail=detail)
            if isinstance(error, socket.timeout):
                self.stats.add("lost.no_answer_in_30s")

    def answered(self, conn, kind, expect, cmd, reply, latency):
        attributed = self.faults.killed_since(conn.key, conn.started)
        if conn.proto == "text":
            is_error = bool(TEXT_ERROR.search(reply))
            outcome = "answered_error" if is_error else "answered_ok"
            self.stats.request(conn.proto, kind, outcome, latency)
            if "the R session was lost" in reply:
                self.stats.add("session_lost_replies." + ("after_kill" if attributed else "unattributed"))
                if not attributed:
                    self.stats.unexpected("session_lost_without_kill", {"proto": "text", "kind": kind, "reply": reply[:300]})
                return False
            if reply.startswith("Error: rgate:"):
                # busy / no worker / shutting down: the server closes the connection.
                self.stats.add("rgate_refusals")
                self.stats.unexpected("rgate_refusal", {"kind": kind, "reply": reply[:300]})
                return False
            if kind == "quit":
                if "called q()" not in reply:
                    self.stats.unexpected("quit_reply", {"proto": "text", "reply": reply[:300]})
                return False
            if expect == "ok" and is_error or expect == "error" and not is_error:
                self.stats.unexpected(f"{kind}_{outcome}", {"proto": "text", "kind": kind, "reply": reply[:300]})
            elif kind in EXPECTED_TEXT and reply != EXPECTED_TEXT[kind]:
                self.stats.unexpected(f"{kind}_value", {"proto": "text", "kind": kind, "reply": reply[:300]})
            elif kind == "timeout" and "longer than the limit" not in reply:
                self.stats.unexpected("timeout_value", {"proto": "text", "reply": reply[:300]})
            return True
        ok = cmd == QAP_OK
        outcome = "answered_ok" if ok else "answered_error"
        self.stats.request(conn.proto, kind, outcome, latency)
        status = (cmd >> 24) & 0x7F
        if not ok and status == QAP_STATUS_BUSY:
            self.stats.add("rgate_refusals")
            self.stats.unexpected("rgate_refusal", {"proto": "qap1", "kind": kind, "cmd": hex(cmd)})
            return False
        if kind == "quit":
            self.stats.unexpected("quit_reply", {"proto": "qap1", "cmd": hex(cmd)})
            return False
        if expect == "ok" and not ok:
            # QAP1 reports a lost session as an R error (status 0x7f), then closes the connection.
            if attributed:
                self.stats.add("session_lost_replies.after_kill")
            else:
                self.stats.unexpected(f"{kind}_answered_error", {"proto": "qap1", "kind": kind, "cmd": hex(cmd)})
        elif expect == "error" and ok:
            self.stats.unexpected(f"{kind}_answered_ok", {"proto": "qap1", "kind": kind})
        elif kind == "fast" and not reply.endswith(struct.pack("<d", 2.0)):
            self.stats.unexpected("fast_value", {"proto": "qap1", "reply": reply[:64].hex()})
        return True

    # ------------------------------------------------------------------------------- killer

    def killer(self):
        rng = random.Random(self.args.seed * 7919)
        ports = {p for p in (self.text_port, self.qap_port) if p}
        while not self.stop_killer.wait(self.args.kill_interval):
            candidates = session_pids(self.supervisor)
            rng.shuffle(candidates)
            for pid in candidates:
                if self.stop_killer.is_set():
                    break
                if self.kill_one(pid, ports):
                    break
            else:
                self.faults.add("rounds_without_busy_session")

    def kill_one(self, pid, ports):
        """Freezes `pid`, finds the client connection it serves, records the fault, kills it.

        SIGSTOP first, so the process cannot receive a new client between the look-up and the
        kill: the fault is attributed to exactly the connection(s) that process held.
        """
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            return False
        self.stopped_pids.add(pid)
        try:
            state = wait_stopped(pid)
            if state != "stopped":
                self.faults.add("stop_" + state)
                return False
            inodes = socket_inodes(pid)
            keys = [(remote, local) for inode, (local, remote, _) in tcp_sockets().items()
                    if inode in inodes and local in ports and remote != 0]
            if not keys:
                self.faults.add("skipped_idle_spares")
                return False
            now = time.monotonic()
            self.faults.record_kill(keys, now)
            os.kill(pid, signal.SIGKILL)
            self.stopped_pids.discard(pid)
            self.faults.add("kills")
            return True
        except OSError:
            return False
        finally:
            if pid in self.stopped_pids:
                self.stopped_pids.discard(pid)
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass

    # ------------------------------------------------------------------------------- memory

    def sample(self):
        table = proc_table()
        tree = [self.supervisor] + descendants(self.supervisor, table)
        if self.server is not None:  # remembered for the clean-up
            for pid in tree:
                if pid in table:
                    self.started_tree.setdefault(pid, table[pid][2])
        sup = rss_kb(self.supervisor)
        tree_rss = sum(rss_kb(p) for p in tree)
        tree_pss = sum(pss_kb(p) for p in tree)
        r = self.rss
        r["samples"] += 1
        r["supervisor_max_kb"] = max(r.get("supervisor_max_kb", 0), sup)
        r["tree_rss_max_kb"] = max(r.get("tree_rss_max_kb", 0), tree_rss)
        r["tree_pss_max_kb"] = max(r.get("tree_pss_max_kb", 0), tree_pss)
        r["processes_max"] = max(r.get("processes_max", 0), len(tree))
        return {"supervisor_kb": sup, "tree_rss_kb": tree_rss, "tree_pss_kb": tree_pss, "processes": len(tree)}

    def sampler(self):
        last_mark = -1
        while not self.stop_sampler.wait(1.0):
            s = self.sample()
            mark = int((time.monotonic() - self.t_start) // 10)
            if mark != last_mark:
                last_mark = mark
                self.timeline.append([mark * 10, s["supervisor_kb"], s["tree_rss_kb"], s["processes"]])

    # ------------------------------------------------------------------------------- run

    def run(self):
        a = self.args
        if a.text_port is None and a.qap_port is None:
            self.start_server()
            mode = "started"
        else:
            self.text_port, self.qap_port = a.text_port, a.qap_port
            self.supervisor = a.server_pid or listening_pid(self.text_port or self.qap_port)
            if not self.supervisor:
                raise RuntimeError("cannot find the process listening on the given port; pass --server-pid")
            mode = "attached"
        time.sleep(a.settle)
        self.t_start = time.monotonic()
        start = self.sample()
        self.deadline = self.t_start + a.duration
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True, name=f"client{i}")
                   for i in range(a.clients)]
        killer = threading.Thread(target=self.killer, daemon=True, name="killer")
        sampler = threading.Thread(target=self.sampler, daemon=True, name="sampler")
        sampler.start()
        for t in threads:
            t.start()
        if a.kill_interval > 0:
            killer.start()
        try:
            while time.monotonic() < self.deadline:
                time.sleep(min(1.0, max(0.0, self.deadline - time.monotonic())))
            self.stop_killer.set()
            if killer.is_alive():
                killer.join(timeout=5)
            for t in threads:  # in-flight requests finish (at most ~eval timeout + grace)
                t.join(timeout=SOCKET_TIMEOUT + 10)
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop_killer.set()
            self.stop_clients.set()
            with self.live_lock:
                for s in list(self.live):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            for t in threads:
                t.join(timeout=2)
        elapsed = time.monotonic() - self.t_start
        time.sleep(0.5)  # let the last sessions exit before the final sample
        end = self.sample()
        self.stop_sampler.set()
        sampler.join(timeout=3)
        return self.summary(mode, elapsed, start, end)

    def summary(self, mode, elapsed, start, end):
        a, c, f = self.args, self.stats.c, self.faults.c
        sup_start, sup_end = start["supervisor_kb"], end["supervisor_kb"]
        growth = (sup_end - sup_start) / sup_start * 100 if sup_start else 0.0
        lost = c["lost"]
        failures = []
        if lost:
            failures.append(f"{lost} requests lost without a fault in their session")
        if growth > a.max_rss_growth:
            failures.append(f"supervisor RSS grew {growth:.1f}% (limit {a.max_rss_growth}%)")
        if self.server is not None and self.server.poll() is not None:
            failures.append(f"rgate exited during the run (status {self.server.returncode})")
        if c["connections.qap_handshake_failed"]:
            failures.append(f"{c['connections.qap_handshake_failed']} QAP1 handshakes failed without a fault")
        if self.interrupted:
            failures.append("interrupted")

        def pct(values, q):
            values = sorted(values)
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else None

        log_lost = None
        if self.server is not None:
            log_text = read_file(a.server_log) or ""
            log_lost = log_text.count("session lost")
        per_kind = {}
        for kind, counter in sorted(self.stats.by_kind.items()):
            lat = self.stats.latency.get(kind, [])
            per_kind[kind] = dict(counter, p50_ms=pct(lat, 0.5), p99_ms=pct(lat, 0.99), max_ms=pct(lat, 1.0))
        extra = {k: v for k, v in sorted(c.items()) if "." in k}
        return {
            "ok": not failures,
            "failures": failures,
            "mode": mode,
            "command": " ".join(sys.argv),
            "server_command": " ".join(self.server_cmd) if self.server is not None else None,
            "server_log": a.server_log if self.server is not None else None,
            "supervisor_pid": self.supervisor,
            "ports": {"text": self.text_port, "qap1": self.qap_port},
            "duration_s": round(elapsed, 1),
            "clients": a.clients,
            "kill_interval_s": a.kill_interval,
            "requests": {
                "sent": c["sent"],
                "answered_ok": c["answered_ok"],
                "answered_error": c["answered_error"],
                "lost_to_fault": c["lost_to_fault"],
                "lost": lost,
                "aborted_by_interrupt": c["aborted"],
                "requests_per_s": round(c["sent"] / elapsed, 1) if elapsed else None,
            },
            "faults": {
                "injected": f["kills"] + f["quits"],
                "kills": f["kills"],
                "quits": f["quits"],
                "killer_skipped_idle_spares": f["skipped_idle_spares"],
                "killer_rounds_without_busy_session": f["rounds_without_busy_session"],
                "server_log_session_lost": log_lost,
            },
            "rss": {
                "supervisor_start_kb": sup_start,
                "supervisor_end_kb": sup_end,
                "supervisor_max_kb": self.rss.get("supervisor_max_kb"),
                "supervisor_growth_pct": round(growth, 1),
                "tree_rss_start_kb": start["tree_rss_kb"],
                "tree_rss_end_kb": end["tree_rss_kb"],
                "tree_rss_max_kb": self.rss.get("tree_rss_max_kb"),
                "tree_pss_start_kb": start["tree_pss_kb"],
                "tree_pss_end_kb": end["tree_pss_kb"],
                "tree_pss_max_kb": self.rss.get("tree_pss_max_kb"),
                "processes_start": start["processes"],
                "processes_end": end["processes"],
                "processes_max": self.rss.get("processes_max"),
                "timeline_every_10s": "[t_s, supervisor_kb, tree_rss_kb, processes]",
                "timeline": self.timeline,
            },
            "by_protocol": {p: dict(v) for p, v in sorted(self.stats.by_proto.items())},
            "by_kind": per_kind,
            "details": extra,
            "lost_examples": self.stats.lost_examples,
            "unexpected_examples": self.stats.unexpected_examples,
        }


def recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def default_binary(repo):
    for rel in (".build-qapbench/release/rgate", ".build-bench/release/rgate", ".build/release/rgate", ".build/debug/rgate"):
        path = os.path.join(repo, rel)
        if os.access(path, os.X_OK):
            return path
    return None


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--bin", help="rgate binary (default: the first of .build-qapbench/release, .build-bench/release, "
                                 ".build/release, .build/debug that exists; check that it is current)")
    p.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    p.add_argument("--clients", type=int, default=12, help="client threads (default 12)")
    p.add_argument("--kill-interval", type=float, default=2, help="seconds between session kills; 0 = no kills (default 2)")
    p.add_argument("--fresh-share", type=float, default=0.4, help="share of connections that send one request (default 0.4)")
    p.add_argument("--no-timeouts", dest="timeouts", action="store_false", help="never send `repeat {}`")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--text-port", type=int, help="attach to a running server's text port instead of starting one")
    p.add_argument("--qap-port", type=int, help="attach to a running server's QAP1 port instead of starting one")
    p.add_argument("--server-pid", type=int, help="attach mode: the supervisor's pid (default: owner of the port)")
    p.add_argument("--workers", type=int, default=4, help="started server: --workers (default 4)")
    p.add_argument("--max-sessions", type=int, default=32, help="started server: --max-sessions (default 32)")
    p.add_argument("--eval-timeout", type=float, default=5, help="started server: --eval-timeout (default 5)")
    p.add_argument("--server-log", help="started server: where its stderr goes (default: a temp file)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait before the start sample (default 1)")
    p.add_argument("--max-rss-growth", type=float, default=50, help="fail above this supervisor RSS growth, %% (default 50)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    a = p.parse_args()
    if a.text_port is None and a.qap_port is None:
        a.bin = a.bin or default_binary(repo)
        if not a.bin:
            sys.exit("soak: no rgate binary found; build one (swift build) or pass --bin")
        if not a.server_log:
            fd, a.server_log = tempfile.mkstemp(prefix="rgate-soak-", suffix=".log")
            os.close(fd)

    soak = Soak(a)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        try:
            result = soak.run()
        except KeyboardInterrupt:
            soak.interrupted = True
            result = None
    except RuntimeError as e:
        print(f"soak: {e}", file=sys.stderr)
        result = "setup-failed"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.cleanup()
    if result == "setup-failed":
        sys.exit(2)
    if result is None:
        print("soak: interrupted during start-up", file=sys.stderr)
        sys.exit(1)
    result["cleanup_leftovers_killed"] = soak.stats.c["cleanup.killed_leftovers"]
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
