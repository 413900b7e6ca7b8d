"""Shared helpers for the client compatibility tests: starting and stopping servers,
raw QAP1 messages, pyRserve connections and value comparison.

Nothing here sleeps to synchronise: rgate announces readiness on stdout, Rserve is probed
with connect() (and a failed probe waits on the process itself, so that an early exit is
seen at once). pyRserve's own 0.2 s sleep after connect is the only fixed delay.
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
IO_TIMEOUT = 60.0  # seconds any single socket operation may take before a test fails

# ---------------------------------------------------------------------------------------
# QAP1 constants (notes §1.3-1.6)

CMD_LOGIN = 0x001
CMD_VOID_EVAL = 0x002
CMD_EVAL = 0x003
CMD_SHUTDOWN = 0x004
CMD_SET_SEXP = 0x020
CMD_DETACH_SESSION = 0x030
CMD_SER_EVAL = 0x0F5
RESP_OK = 0x10001
RESP_ERR = 0x10002
DT_INT = 1
DT_STRING = 4
DT_BYTESTREAM = 5
DT_SEXP = 10
DT_LARGE = 0x40

ERR_AUTH_FAILED = 0x41
ERR_INV_CMD = 0x43
ERR_INV_PAR = 0x44
ERR_UNSUPPORTED = 0x49
ERR_DATA_OVERFLOW = 0x4B
ERR_DISABLED = 0x61
STATUS_R_ERROR = 0x7F
STATUS_PARSE_INCOMPLETE = 2
STATUS_PARSE_ERROR = 3

ID_STRING = b"Rsrv0103QAP1\r\n\r\n--------------\r\n"


def header(cmd: int, length: int, msg_id: int = 0) -> bytes:
    return struct.pack("<IIII", cmd, length & 0xFFFFFFFF, msg_id, length >> 32)


def string_param(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    data += b"\0"
    data += b"\0" * (-len(data) % 4)
    return struct.pack("<I", DT_STRING | (len(data) << 8)) + data


def message(cmd: int, payload: bytes = b"") -> bytes:
    return header(cmd, len(payload)) + payload


@dataclass
class Response:
    cmd: int
    msg_id: int
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.cmd & 0xFFFFF == RESP_OK

    @property
    def error(self) -> bool:
        return self.cmd & 0xFFFFF == RESP_ERR

    @property
    def status(self) -> int:
        return (self.cmd >> 24) & 0x7F

    def __repr__(self) -> str:
        head = self.payload[:48].hex(" ")
        more = "..." if len(self.payload) > 48 else ""
        return f"Response(cmd=0x{self.cmd:08x}, msg_id={self.msg_id}, {len(self.payload)} bytes: {head}{more})"


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes, or fewer if the peer closed first (never more)."""
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> Response | None:
    """The next message, or None when the server closed the connection cleanly first."""
    head = recv_exact(sock, 16)
    if not head:
        return None
    assert len(head) == 16, f"connection closed inside a response header: {head.hex(' ')}"
    cmd, low, msg_id, high = struct.unpack("<IIII", head)
    length = low | (high << 32)
    payload = recv_exact(sock, length)
    assert len(payload) == length, f"connection closed after {len(payload)} of {length} payload bytes"
    return Response(cmd, msg_id, payload)


def open_qap(port: int, timeout: float = IO_TIMEOUT) -> tuple[socket.socket, bytes]:
    """A raw connection and the 32-byte ID string the server greeted it with."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    ident = recv_exact(sock, 32)
    return sock, ident


def raw_eval(port: int, code: str) -> Response:
    """One CMD_eval on a fresh raw connection."""
    sock, ident = open_qap(port)
    with sock:
        assert ident.startswith(b"Rsrv0103QAP1"), ident
        sock.sendall(message(CMD_EVAL, string_param(code)))
        resp = read_response(sock)
    assert resp is not None, f"server closed the connection instead of answering eval({code!r})"
    return resp


def assert_serving(port: int) -> None:
    """A new client still gets the ID string and a correct answer to eval(1+1)."""
    resp = raw_eval(port, "1+1")
    expected = bytes.fromhex("0a0c0000 21080000") + struct.pack("<d", 2.0)
    assert resp.cmd == RESP_OK and resp.payload == expected, resp


# ---------------------------------------------------------------------------------------
# pyRserve


def pyrserve_connect(port: int, **kwargs):
    import pyRserve

    conn = pyRserve.connect(host=HOST, port=port, **kwargs)
    # pyRserve itself never times out; a server that stops answering must fail the test.
    # Not sock.settimeout(): that makes the socket non-blocking inside Python, and pyRserve
    # writes requests with a single sock.send(), which then sends only part of a large
    # message (e.g. an 8 MB setSEXP) and hangs both Rserve and rgate. A kernel receive
    # timeout leaves send() blocking.
    seconds = int(IO_TIMEOUT)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))
    return conn


# ---------------------------------------------------------------------------------------
# Processes


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has already exited
        return None
    return fields[19]


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, sid) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def process_tree(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of root, its descendants, and everything in its process group or
    session (servers are started with setsid, so this finds orphans after root has exited)."""
    table = _proc_table()
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, pgid, sid) in table.items():
            if pid not in found and (ppid in found or pgid == root or sid == root):
                found.add(pid)
                changed = True
    result = []
    for pid in sorted(found):
        st = _start_time(pid)
        if st is not None:
            result.append((pid, st))
    return result


def alive(procs: list[tuple[int, str]]) -> list[int]:
    return [pid for pid, st in procs if _start_time(pid) == st]


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If pytest itself is killed, the server is killed too.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    leaked: list[int] = field(default_factory=list)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> list[int]:
        """Stops the server and everything it started; returns pids that outlived SIGTERM + grace."""
        # also after the server exited by itself (CMD_shutdown): its session id finds the rest
        procs = [p for p in process_tree(self.proc.pid) if p[0] != self.proc.pid or self.proc.poll() is None]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Children get the same grace: wait for them by pid (no fixed sleep).
        deadline = time.monotonic() + grace
        while alive(procs) and time.monotonic() < deadline:
            remaining = alive(procs)
            # a pidfd lets us block until the first survivor exits
            try:
                fd = os.pidfd_open(remaining[0])
            except (OSError, AttributeError):
                continue
            try:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(fd)
        leftovers = alive(procs)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.leaked = leftovers
        return leftovers


def rgate_binary() -> Path:
    return Path(os.environ.get("RGATE_BIN", "/work/main/.build/debug/rgate"))


def start_rgate(log_dir: Path, extra_args: tuple[str, ...] = (), name: str = "rgate") -> ServerProcess:
    binary = rgate_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"rgate binary {binary} not found (build with `swift build` or set RGATE_BIN)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
    log = open(log_path, "wb")
    args = [
        str(binary), "serve", "--text-port", "off", "--qap-port", "0", "--workers", "2",
        "--shutdown-grace", "2", "--exit-with-parent", *extra_args,
    ]
    deadline = time.monotonic() + 180
    while True:
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
            break
        except OSError as e:
            # ETXTBSY: `swift build` is writing the binary right now; wait for the build.
            if e.errno != errno.ETXTBSY or time.monotonic() > deadline:
                log.close()
                raise
            time.sleep(0.5)
    log.close()
    server = None
    try:
        port = _await_rgate_port(proc, timeout=120)
        server = ServerProcess(name, proc, port, log_path)
        return server
    finally:
        if server is None:
            ServerProcess(name, proc, 0, log_path).stop(grace=5)


def _await_rgate_port(proc: subprocess.Popen, timeout: float) -> int:
    """Reads stdout until `rgate: listening qap1 HOST:PORT`; then keeps draining it."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while True:
        m = re.search(rb"rgate: listening qap1 [^\s]*:(\d+)\n", seen)
        if m:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"rgate did not announce a qap1 listener within {timeout}s; stdout: {seen!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(timeout=10)
                raise RuntimeError(f"rgate exited ({proc.returncode}) before listening; stdout: {seen!r}")
            seen += chunk

    def drain() -> None:
        while os.read(fd, 4096):
            pass

    threading.Thread(target=drain, daemon=True).start()
    return int(m.group(1))


def rserve_binary() -> Path | None:
    try:
        out = subprocess.run(
            ["Rscript", "--vanilla", "-e", 'cat(system.file("libs", "Rserve", package = "Rserve"))'],
            capture_output=True, text=True, timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out) if out and os.access(out, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_rserve(log_dir: Path, extra_settings: tuple[str, ...] = (), name: str = "rserve") -> ServerProcess:
    binary = rserve_binary()
    if binary is None:
        raise FileNotFoundError("Rserve is not installed (Debian: r-cran-rserve)")
    log_dir.mkdir(parents=True, exist_ok=True)
    workdir = log_dir / f"{name}-work-{os.getpid()}-{time.monotonic_ns()}"
    workdir.mkdir()
    last_error = ""
    for _ in range(5):  # a free port may be taken between free_port() and bind(): retry
        port = free_port()
        log_path = log_dir / f"{name}-{port}.log"
        settings = [
            "daemon=disable", "encoding=utf8", "oob=enable", f"workdir={workdir}", *extra_settings,
        ]
        args = ["R", "CMD", str(binary), "--RS-port", str(port)]
        for s in settings:
            args += ["--RS-set", s]
        args += ["--vanilla", "--no-save"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        server = ServerProcess(name, proc, port, log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                sock, ident = open_qap(port, timeout=10)
            except ConnectionRefusedError:
                try:  # not listening yet: wait on the process itself, so an exit is seen at once
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                break
            sock.close()
            if ident.startswith(b"Rsrv"):
                return server
            last_error = f"unexpected greeting {ident!r}"
            break
        last_error = last_error or f"Rserve exited ({proc.returncode}) or did not listen: {server.log_tail()}"
        server.stop(grace=5)
    raise RuntimeError(f"could not start Rserve: {last_error}")


# ---------------------------------------------------------------------------------------
# R scripts (RSclient)


def run_rscript(script: str, args: list[str], tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    path = tmp_path / "client.R"
    path.write_text(script)
    return subprocess.run(
        ["Rscript", "--vanilla", str(path), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


# R helpers prepended to every RSclient script: check() prints one tab-separated line per
# expectation, which the Python side parses (so failures show R's own deparse of both sides).
R_PRELUDE = r'''
suppressPackageStartupMessages(library(RSclient))
dp <- function(x) paste(deparse(x, control = c("keepNA", "keepInteger", "niceNames", "showAttributes")), collapse = " ")
check <- function(name, ok, got = NULL, want = NULL) {
  ok <- isTRUE(ok)
  cat("CHECK", name, if (ok) "PASS" else "FAIL", gsub("[\t\n]", " ", dp(got)), gsub("[\t\n]", " ", dp(want)), sep = "\t")
  cat("\n")
}
same <- function(name, got, want) check(name, identical(got, want), got, want)
'''


def parse_checks(out: str) -> list[tuple[str, bool, str, str]]:
    checks = []
    for line in out.splitlines():
        if line.startswith("CHECK\t"):
            parts = line.split("\t")
            parts += [""] * (5 - len(parts))
            checks.append((parts[1], parts[2] == "PASS", parts[3], parts[4]))
    return checks


# ---------------------------------------------------------------------------------------
# Comparing what pyRserve decoded


def _describe(v) -> str:
    r = repr(v)
    return r if len(r) < 300 else r[:300] + "..."


def diff_values(a, b, path: str = "value") -> list[str]:
    """Differences between two pyRserve-decoded values (empty list: equal).

    numpy arrays are compared by class, dtype, shape, attributes, names and content; float
    content bit-for-bit (so NA vs NaN, and NaN positions, count), object arrays element-wise
    (None = NA)."""
    from pyRserve.rparser import Closure, S4
    from pyRserve.taggedContainers import AttrArray, TaggedArray, TaggedList

    out: list[str] = []
    if type(a) is not type(b):
        return [f"{path}: type {type(a).__name__} vs {type(b).__name__}: {_describe(a)} vs {_describe(b)}"]
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return [f"{path}: dtype/shape {a.dtype}{a.shape} vs {b.dtype}{b.shape}: {_describe(a)} vs {_describe(b)}"]
        if isinstance(a, TaggedArray):  # its .attr is the list of names
            if list(a.keys()) != list(b.keys()):
                out.append(f"{path}: names {a.keys()} vs {b.keys()}")
        elif isinstance(a, AttrArray):
            aa, ba = getattr(a, "attr", {}) or {}, getattr(b, "attr", {}) or {}
            if set(aa) != set(ba):
                out.append(f"{path}: attributes {sorted(aa)} vs {sorted(ba)}")
            for k in set(aa) & set(ba):
                out += diff_values(aa[k], ba[k], f"{path}@{k}")
        av, bv = np.asarray(a), np.asarray(b)
        if av.dtype.kind == "f":
            if not np.array_equal(av.view(np.uint64), bv.view(np.uint64)):
                bad = np.flatnonzero(av.view(np.uint64).ravel() != bv.view(np.uint64).ravel())[:5]
                out.append(
                    f"{path}: double bits differ at {bad.tolist()}: "
                    + ", ".join(f"{av.ravel()[i].view(np.uint64):#018x} vs {bv.ravel()[i].view(np.uint64):#018x}" for i in bad)
                )
        elif av.dtype.kind == "c":
            if not np.array_equal(av.view(np.uint64), bv.view(np.uint64)):
                out.append(f"{path}: complex bits differ: {_describe(a)} vs {_describe(b)}")
        elif av.dtype.kind == "O":
            if [x for x in av.ravel()] != [x for x in bv.ravel()]:
                out.append(f"{path}: {_describe(a)} vs {_describe(b)}")
        elif not np.array_equal(av, bv):
            out.append(f"{path}: {_describe(a)} vs {_describe(b)}")
        return out
    if isinstance(a, TaggedList):
        if list(a.keys) != list(b.keys):
            out.append(f"{path}: names {a.keys} vs {b.keys}")
        if len(a.values) != len(b.values):
            return out + [f"{path}: length {len(a.values)} vs {len(b.values)}"]
        for i, (x, y) in enumerate(zip(a.values, b.values)):
            out += diff_values(x, y, f"{path}[{i}]")
        return out
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}: {_describe(a)} vs {_describe(b)}"]
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff_values(x, y, f"{path}[{i}]")
        return out
    if isinstance(a, Closure):
        return diff_values([a.aList1, a.aList2], [b.aList1, b.aList2], f"{path}<closure>")
    if isinstance(a, S4):
        return diff_values(sorted(a.items()), sorted(b.items()), f"{path}<S4>") + diff_values(
            a.classes, b.classes, f"{path}<S4 class>"
        )
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        for k in a:
            out += diff_values(a[k], b[k], f"{path}[{k!r}]")
        return out
    if isinstance(a, float):
        if struct.pack("<d", a) != struct.pack("<d", b):
            out.append(f"{path}: {a!r} ({struct.pack('<d', a).hex()}) vs {b!r} ({struct.pack('<d', b).hex()})")
        return out
    if a != b:
        out.append(f"{path}: {_describe(a)} vs {_describe(b)}")
    return out


# ---------------------------------------------------------------------------------------
# Expectation markers

import pytest  # noqa: E402

# RGATE_BUGS_FAIL=1 turns known rgate bugs back into failing tests.
BUGS_FAIL = os.environ.get("RGATE_BUGS_FAIL") == "1"




def known_bug(reason: str):
    """Something Rserve does (per the notes or a live Rserve) that rgate gets wrong today."""
    return pytest.mark.xfail(not BUGS_FAIL, reason=f"rgate bug: {reason}", strict=False)


def deviation(reason: str):
    """rgate differs from Rserve on purpose, but the difference is not documented as such."""
    return pytest.mark.xfail(not BUGS_FAIL, reason=f"rgate deviation: {reason}", strict=False)


def rgate_bug(request, server, reason: str) -> None:
    """known_bug for the rgate run of a test that also runs against Rserve."""
    if server.name.startswith("rgate") and not BUGS_FAIL:
        request.applymarker(pytest.mark.xfail(reason=f"rgate bug: {reason}", strict=False))


def missing_feature(reason: str):
    """A documented Rserve feature rgate does not implement yet."""
    return pytest.mark.xfail(reason=f"rgate lacks: {reason}", strict=False)


# ---------------------------------------------------------------------------------------
# Users, roles and logins (test_security.py)

CMD_SEC_LOGIN = 0x007
CMD_KEY_REQ = 0x006
CMD_OPEN_FILE = 0x010
CMD_CREATE_FILE = 0x011
CMD_CLOSE_FILE = 0x012
CMD_READ_FILE = 0x013
CMD_WRITE_FILE = 0x014
CMD_REMOVE_FILE = 0x015
CMD_ASSIGN_SEXP = 0x021
CMD_DETACHED_VOID_EVAL = 0x031
CMD_SER_ASSIGN = 0x0F6
CMD_SER_EE = 0x0F7

XT_SYMNAME = 19
XT_VECTOR = 16
XT_CLOS = 18
XT_LIST_TAG = 21
XT_LANG_NOTAG = 22
XT_VECTOR_EXP = 26
XT_ARRAY_DOUBLE = 33
XT_ARRAY_STR = 34
XT_HAS_ATTR = 0x80


def rgate_cli(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `rgate ARGS...` (the binary the servers use) with stdin from bytes; output as bytes."""
    return subprocess.run(
        [str(rgate_binary()), *args], input=stdin if stdin is not None else b"",
        capture_output=True, timeout=timeout,
    )


def login_message(user: str, password: str) -> bytes:
    """CMD_login with Rserve's plain-text credentials "user\\npassword"."""
    return message(CMD_LOGIN, string_param(f"{user}\n{password}"))


def qap_login(port: int, user: str, password: str) -> tuple[socket.socket, Response | None]:
    """A raw connection after CMD_login, and the login's answer (None: closed without one)."""
    sock, ident = open_qap(port)
    assert ident.startswith(b"Rsrv0103QAP1"), ident
    sock.sendall(login_message(user, password))
    return sock, read_response(sock)


def pyrserve_login(conn, user: str, password: str) -> Response | None:
    """pyRserve 1.0.4 has no login API: sends CMD_login on its socket and returns the answer."""
    conn.sock.sendall(login_message(user, password))
    return read_response(conn.sock)


def command(sock: socket.socket, cmd: int, payload: bytes = b"") -> Response | None:
    sock.sendall(message(cmd, payload))
    return read_response(sock)


def eval_on(sock: socket.socket, code: str | bytes) -> Response | None:
    """CMD_eval of code (a DT_STRING) on an open connection."""
    return command(sock, CMD_EVAL, string_param(code))


def double_answer(value: float) -> bytes:
    """The CMD_eval answer payload of one double (a plain numeric(1))."""
    return bytes.fromhex("0a0c0000 21080000") + struct.pack("<d", value)


def connection_closed(sock: socket.socket, timeout: float = 10) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


# QAP1 encoding of language objects and data (what pyRserve cannot send).


def _pad4(data: bytes, fill: bytes = b"\0") -> bytes:
    return data + fill * (-len(data) % 4)


def sexp(xt: int, body: bytes, attributes: bytes | None = None) -> bytes:
    """One QAP1 object: header (XT type, length; XT_LARGE when needed) + [attributes] + body."""
    if attributes is not None:
        xt |= XT_HAS_ATTR
        body = attributes + body
    n = len(body)
    if n > 0xFFFFFF:
        return struct.pack("<II", xt | 0x40 | ((n & 0xFFFFFF) << 8), n >> 24) + body
    return struct.pack("<I", xt | (n << 8)) + body


def sexp_symbol(name: str) -> bytes:
    return sexp(XT_SYMNAME, _pad4(name.encode() + b"\0"))


def sexp_strings(*values: str) -> bytes:
    return sexp(XT_ARRAY_STR, _pad4(b"".join(v.encode() + b"\0" for v in values), b"\x01"))


def sexp_doubles(*values: float, attributes: bytes | None = None) -> bytes:
    return sexp(XT_ARRAY_DOUBLE, struct.pack(f"<{len(values)}d", *values), attributes)


def sexp_call(function: bytes, *arguments: bytes, attributes: bytes | None = None) -> bytes:
    """A call (XT_LANG_NOTAG): function (usually sexp_symbol) then the arguments."""
    return sexp(XT_LANG_NOTAG, function + b"".join(arguments), attributes)


def sexp_list(*items: bytes) -> bytes:
    return sexp(XT_VECTOR, b"".join(items))


def sexp_expression(*items: bytes) -> bytes:
    return sexp(XT_VECTOR_EXP, b"".join(items))


def sexp_tagged(pairs: list[tuple[bytes, str]]) -> bytes:
    """A tagged pairlist (XT_LIST_TAG): value, tag symbol, ...; used for attributes."""
    return sexp(XT_LIST_TAG, b"".join(value + sexp_symbol(tag) for value, tag in pairs))


def sexp_param(obj: bytes) -> bytes:
    """A DT_SEXP parameter holding obj."""
    n = len(obj)
    if n > 0xFFFFFF:
        return struct.pack("<II", DT_SEXP | DT_LARGE | ((n & 0xFFFFFF) << 8), n >> 24) + obj
    return struct.pack("<I", DT_SEXP | (n << 8)) + obj


def set_sexp_payload(name: str, obj: bytes) -> bytes:
    return string_param(name) + sexp_param(obj)


def r_serialize(expression: str, timeout: float = 60) -> bytes:
    """serialize(<expression>, NULL) as computed by R (the payload of serEval/serAssign/serEE)."""
    r = subprocess.run(
        ["Rscript", "--vanilla", "-e", f"cat(as.character(serialize({expression}, NULL)), sep = '')"],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    return bytes.fromhex(r.stdout.strip())


# ---------------------------------------------------------------------------------------
# Audit log, text protocol, start-up refusals (test_sandbox_audit.py)


def start_rgate_listeners(
    log_dir: Path, args: tuple[str, ...], name: str = "rgate-audit"
) -> tuple[ServerProcess, dict[str, int]]:
    """Starts `rgate serve ARGS...` (ports come from ARGS, unlike start_rgate) and returns the
    server and its listeners, {"text": port, "qap1": port}, from the `rgate: listening` lines
    (all are printed together; the qap1 line must be among them)."""
    binary = rgate_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"rgate binary {binary} not found (build with `swift build` or set RGATE_BIN)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
    argv = [str(binary), "serve", "--workers", "2", "--shutdown-grace", "2", "--exit-with-parent", *args]
    deadline = time.monotonic() + 180
    with open(log_path, "wb") as log:
        while True:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                    start_new_session=True, preexec_fn=_die_with_parent,
                )
                break
            except OSError as e:
                if e.errno != errno.ETXTBSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    server = ServerProcess(name, proc, 0, log_path)
    ok = False
    try:
        fd = proc.stdout.fileno()
        seen = b""
        deadline = time.monotonic() + 120
        while not re.search(rb"rgate: listening qap1 \S*:\d+\n", seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"rgate did not announce a qap1 listener within 120 s; stdout: {seen!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    proc.wait(timeout=10)
                    raise RuntimeError(
                        f"rgate exited ({proc.returncode}) before listening; stdout: {seen!r}; log: {server.log_tail()}"
                    )
                seen += chunk
        listeners = {m.group(1).decode(): int(m.group(2)) for m in re.finditer(rb"rgate: listening (\S+) \S*:(\d+)\n", seen)}

        def drain() -> None:
            while os.read(fd, 4096):
                pass

        threading.Thread(target=drain, daemon=True).start()
        server.port = listeners["qap1"]
        ok = True
        return server, listeners
    finally:
        if not ok:
            server.stop(grace=5)


def rgate_serve_exit(args: tuple[str, ...], timeout: float = 20) -> tuple[int | None, str, str]:
    """Runs `rgate serve ARGS...`, which is expected to refuse to start: (exit code, stdout,
    stderr). The exit code is None when it was still running after `timeout` seconds (it is
    then killed with everything it started)."""
    proc = subprocess.Popen(
        [str(rgate_binary()), "serve", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        ServerProcess("rgate-refusal", proc, 0, Path("/dev/null")).stop(grace=5)
        out, err = proc.communicate(timeout=30)
        code = None
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def text_request(sock: socket.socket, code: str | bytes, encoding: str = "UTF-8") -> str | None:
    """One request of the seed's text protocol on an open connection: the reply's text, or
    None when the server closed the connection instead of answering."""
    data = code.encode() if isinstance(code, str) else code
    sock.sendall(encoding.encode() + b"\n" + struct.pack("<Q", len(data)) + data)
    head = recv_exact(sock, 8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    body = recv_exact(sock, n)
    assert len(body) == n, f"text reply cut after {len(body)} of {n} bytes"
    return body.decode("utf-8", "replace")


def read_audit(path: Path) -> list[dict]:
    """The audit lines of one file, each parsed as JSON (a line that is not JSON fails)."""
    import json

    lines = []
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for i, line in enumerate(text.splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"{path}:{i}: not JSON ({e}): {line!r}") from None
        assert isinstance(value, dict), f"{path}:{i}: not a JSON object: {line!r}"
        lines.append(value)
    return lines


def wait_for_audit(path: Path, predicate, timeout: float = 20, what: str = "a matching line") -> dict:
    """Polls the audit file until a line satisfies predicate; returns it (fails with the
    file's lines after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_audit(path)
        for line in lines:
            if predicate(line):
                return line
        if time.monotonic() > deadline:
            shown = "\n".join(map(str, lines[-30:]))
            raise AssertionError(f"no audit line with {what} within {timeout} s in {path}; last lines:\n{shown}")
        time.sleep(0.05)


def make_shared_dir(prefix: str) -> Path:
    """A fresh directory under /tmp, mode 0755 (not under pytest's tmp_path: its parents are mode
    0700, closed to rgate's session users)."""
    import tempfile
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    return root


def add_user(users_file: Path, name: str, role: str, secret: str) -> None:
    """`rgate user add NAME --role ROLE --users-file FILE`, the password on stdin."""
    r = rgate_cli("user", "add", name, "--role", role, "--users-file", str(users_file), stdin=f"{secret}\n".encode())
    assert r.returncode == 0, f"rgate user add {name} --role {role}: exit {r.returncode}\n{r.stdout!r}\n{r.stderr!r}"
