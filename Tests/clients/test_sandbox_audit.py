"""Audit log, login throttling, per-role limits, the text protocol for an anonymous role,
start-up refusals and the session sandbox, with real clients (pyRserve, raw QAP1, the seed's
text framing) against `rgate serve --config`.

One rgate serves most of the module (users made with `rgate user add`, an audit log in the
site directory, `login_delay: 0.01`):

- `ana`, `bea` (analyst), `root` (admin), `sam` (scorer: a caller allowed `add` and `score`
  from a sourced model.R), `slow` (slowpoke: an analyst with `eval_timeout: 1`), `lim`
  (limited: an analyst with `max_sessions: 2`), `net` (netanalyst: an analyst with
  `network: true`).

Tests that lock an address out, rotate the log, serve text or try to signal the supervisor
start private servers. Every wait has a deadline, so a hang fails.

Sandbox facts (as root, `session_uids` on): each session runs as uid 100000 + its pid in its
own temp directory (R's tempdir(), mode 0700, also its working directory). Sessions of roles
without `network: true` (analyst and caller by default) get a network namespace with nothing
but a loopback device that is down.
"""
from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyRserve.rexceptions import REvalError

import clientsupport as cs

pytestmark = pytest.mark.timeout(180)

# name -> (role, password). Passwords hold spaces and punctuation, never quotes or backslashes.
USERS = {
    "ana": ("analyst", "ana pw Audit-7x!31"),
    "bea": ("analyst", "bea pw Audit-4q#20"),
    "root": ("admin", "root pw Audit-Z9m%15"),
    "sam": ("scorer", "sam pw Audit-K2p#84"),
    "slow": ("slowpoke", "slow pw Audit-S1w&02"),
    "lim": ("limited", "lim pw Audit-L1m*77"),
    "net": ("netanalyst", "net pw Audit-N3t+55"),
}

ROLES = """\
roles:
  scorer:
    base: caller
    functions: ["add", "score"]
    source: ["{model}"]
  slowpoke:
    base: analyst
    eval_timeout: 1
  limited:
    base: analyst
    max_sessions: 2
  netanalyst:
    base: analyst
    network: true
"""

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
AUTH_FAILED = cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24)


def password(user: str) -> str:
    return USERS[user][1]


def sha256(code: str | bytes) -> str:
    return hashlib.sha256(code.encode() if isinstance(code, str) else code).hexdigest()


# ---------------------------------------------------------------------------------------
# Sites: a directory with a users file, model.R and rgate.yaml


@dataclass
class Site:
    root: Path  # world-readable: sessions run as unprivileged users when rgate runs as root
    users_file: Path
    model: Path
    config: Path
    audit: Path
    server: cs.ServerProcess | None = None
    listeners: dict | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port


def make_root() -> Path:
    return cs.make_shared_dir("rgate-audit-")


add_user = cs.add_user


def write_site(root: Path, users: dict[str, tuple[str, str]] | None, settings: list[str], roles: bool = True) -> Site:
    """settings: extra top-level YAML lines. users None: no users file at all."""
    model = root / "model.R"
    model.write_text("add <- function(a, b) a + b\nscore <- function(x) sum(x) * 2\n")
    model.chmod(0o644)
    users_file = root / "users"
    audit = root / "audit.log"
    lines = ["host: 127.0.0.1"]
    if users is not None:
        for name, (role, secret) in users.items():
            add_user(users_file, name, role, secret)
        lines.append(f'users_file: "{users_file}"')
    lines += settings
    text = "\n".join(lines) + "\n"
    if roles:
        text += ROLES.format(model=model)
    config = root / "rgate.yaml"
    config.write_text(text)
    config.chmod(0o644)
    return Site(root, users_file, model, config, audit)


@pytest.fixture
def servers(log_dir):
    """Private servers, stopped at teardown: servers(site, *extra_args) starts `rgate serve
    --config site.config --qap-port 0 [--text-port off] ...` and sets site.server/listeners."""
    started: list[cs.ServerProcess] = []

    def start(site: Site, *extra: str, name: str = "rgate-audit-private") -> Site:
        args = ("--config", str(site.config), "--qap-port", "0")
        if "--text-port" not in extra:
            args += ("--text-port", "off")
        server, listeners = cs.start_rgate_listeners(log_dir, args + tuple(extra), name=name)
        started.append(server)
        site.server, site.listeners = server, listeners
        return site

    yield start
    errors = [f"{s.name}: leaked {leaked}" for s in started if (leaked := s.stop())]
    assert not errors, errors


@pytest.fixture
def private_root():
    root = make_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def site(log_dir):
    root = make_root()
    try:
        s = write_site(root, USERS, [f'audit_log: "{root / "audit.log"}"', "anonymous_role: none", "login_delay: 0.01"])
        s.server, s.listeners = cs.start_rgate_listeners(
            log_dir, ("--config", str(s.config), "--qap-port", "0", "--text-port", "off"), name="rgate-audit"
        )
        try:
            yield s
        finally:
            leaked = s.server.stop()
            assert not leaked, f"rgate-audit: processes {leaked} outlived SIGTERM; log:\n{s.server.log_tail()}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def raw_login(site):
    """Raw QAP1 connections logged in (closed at teardown): raw_login(user[, port])."""
    opened: list[socket.socket] = []

    def make(user: str, port: int | None = None) -> socket.socket:
        sock, resp = cs.qap_login(port or site.port, user, password(user))
        opened.append(sock)
        assert resp is not None and resp.ok, f"login as {user}: {resp}"
        return sock

    yield make
    for sock in opened:
        sock.close()


@pytest.fixture
def login(site, connect):
    """pyRserve connections logged in (closed at teardown): login(user[, port])."""

    def make(user: str, port: int | None = None):
        conn = connect(port or site.port)
        resp = cs.pyrserve_login(conn, user, password(user))
        assert resp is not None and resp.ok and resp.payload == b"", f"login as {user}: {resp}"
        return conn

    return make


def local_peer(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def session_of(audit: Path, sock: socket.socket, timeout: float = 20) -> int:
    """The audit session id of the connection sock (from its "session start" line)."""
    peer = local_peer(sock)
    line = cs.wait_for_audit(audit, lambda l: l.get("event") == "session start" and l.get("peer") == peer,
                             timeout, f"event 'session start' for peer {peer}")
    return line["session"]


def r_string(conn, code: str) -> str:
    value = conn.eval(code)
    if not isinstance(value, str):
        value = "\n".join(map(str, list(value)))
    return value


# ---------------------------------------------------------------------------------------
# Audit log


def test_audit_session_login_request_and_end_lines(site, raw_login):
    marker = uuid.uuid4().hex
    code = f"sum(1:10) # audit probe {marker}"
    void_code = f"invisible(nchar('{marker}'))"
    sock = raw_login("ana")
    peer = local_peer(sock)
    resp = cs.eval_on(sock, code)
    assert resp is not None and resp.payload == bytes.fromhex("0a080000 20040000") + (55).to_bytes(4, "little"), resp
    resp = cs.command(sock, cs.CMD_VOID_EVAL, cs.string_param(void_code))
    assert resp is not None and resp.ok, resp
    session = session_of(site.audit, sock)
    sock.close()

    end = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "session end" and l.get("session") == session,
                            what=f"'session end' of session {session}")
    for sent in (code, void_code):
        cs.wait_for_audit(site.audit, lambda l: l.get("event") == "request" and l.get("code_sha256") == sha256(sent),
                          what=f"the request {sent!r}")
    lines = [l for l in cs.read_audit(site.audit) if l.get("session") == session]
    for line in lines:
        assert ISO_UTC.match(str(line.get("time"))), f"time is not ISO 8601 UTC: {line}"
        assert line.get("peer") == peer, f"peer should be {peer}: {line}"
    events = [l["event"] for l in lines]
    assert events[0] == "session start" and events[-1] == "session end", events

    start = lines[0]
    assert start.get("protocol") == "qap1", start
    assert "user" not in start, f"no one has logged in at session start: {start}"
    assert start.get("role") in (None, ""), f"anonymous_role is none: {start}"

    logins = [l for l in lines if l["event"] == "login"]
    assert len(logins) == 1, logins
    assert logins[0].get("user") == "ana" and logins[0].get("role") == "analyst" and logins[0].get("outcome") == "ok", logins

    requests = [l for l in lines if l["event"] == "request"]
    evals = [l for l in requests if l.get("code_sha256") == sha256(code)]
    assert len(evals) == 1, f"no request line with the SHA-256 of the code sent: {requests}"
    r = evals[0]
    assert r.get("command") == "eval" and r.get("outcome") == "ok", r
    assert r.get("code_bytes") == len(code.encode()), r
    assert r.get("user") == "ana" and r.get("role") == "analyst" and r.get("protocol") == "qap1", r
    assert isinstance(r.get("duration_ms"), (int, float)) and r["duration_ms"] >= 0, r
    assert "limit" not in r, r
    voids = [l for l in requests if l.get("code_sha256") == sha256(void_code)]
    assert len(voids) == 1 and voids[0].get("command") == "voidEval" and voids[0].get("outcome") == "ok", requests
    assert voids[0].get("code_bytes") == len(void_code.encode()), voids

    assert end.get("outcome") == "client closed" and end.get("user") == "ana", end

    text = site.audit.read_text()
    assert marker not in text, "the audit log holds the code itself (only its size and hash belong there)"
    mode = stat.S_IMODE(site.audit.stat().st_mode)
    assert mode & 0o077 == 0, f"audit log mode {oct(mode)}: readable by other users"


def test_audit_failed_login_without_password(site, raw_login):
    wrong = f"wrong pw {uuid.uuid4().hex}"
    sock, resp = cs.qap_login(site.port, "ana", wrong)
    with sock:
        assert resp is not None and resp.cmd == AUTH_FAILED, resp
        session = session_of(site.audit, sock)
    failed = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "login" and l.get("session") == session,
                               what=f"'login' of session {session}")
    assert failed.get("outcome") == "failed" and failed.get("user") == "ana", failed
    assert failed.get("role") in (None, ""), f"a failed login has no role: {failed}"
    cs.wait_for_audit(site.audit, lambda l: l.get("event") == "session end" and l.get("session") == session,
                      what=f"'session end' of session {session}")
    # a good login after it (so that this test leaves no failures counted for 127.0.0.1)
    assert cs.eval_on(raw_login("ana"), "1+1").payload == cs.double_answer(2.0)
    data = site.audit.read_bytes()
    for secret in [wrong] + [pw for _, pw in USERS.values()]:
        assert secret.encode() not in data, f"the audit log holds a password: {secret!r}"
        assert secret.split()[-1].encode() not in data, f"the audit log holds part of a password: {secret!r}"


def test_user_added_later_with_an_undefined_role_cannot_log_in(site, raw_login):
    """`rgate user add` does not know the server's roles; a user given a role this server does not
    define is refused at login (and the audit says why), the others are unaffected."""
    secret = f"ghost pw {uuid.uuid4().hex}"
    cs.add_user(site.users_file, "ghost", "no_such_role", secret)
    sock, resp = cs.qap_login(site.port, "ghost", secret)
    with sock:
        assert resp is not None and resp.cmd == AUTH_FAILED, resp
        session = session_of(site.audit, sock)
    line = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "login" and l.get("session") == session,
                             what=f"'login' of session {session}")
    assert line.get("outcome") == "unknown role" and line.get("user") == "ghost", line
    assert cs.eval_on(raw_login("ana"), "1+1").payload == cs.double_answer(2.0)


def test_audit_refused_caller_request(site, raw_login):
    code = f'system("id") # {uuid.uuid4().hex}'
    sock = raw_login("sam")
    resp = cs.eval_on(sock, code)
    assert resp is not None and resp.error, resp
    assert cs.eval_on(sock, "add(1, 2)").payload == cs.double_answer(3.0)
    line = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "request" and l.get("code_sha256") == sha256(code),
                             what="the refused request's hash")
    assert line.get("outcome") == "refused", line
    assert line.get("command") == "eval" and line.get("code_bytes") == len(code.encode()), line
    assert line.get("user") == "sam" and line.get("role") == "scorer", line
    ok = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "request" and l.get("session") == line["session"]
                           and l.get("code_sha256") == sha256("add(1, 2)"), what="the allowed request")
    assert ok.get("outcome") == "ok", ok


def test_audit_refused_command(site, raw_login):
    """A command the caller role may not use (serEval) is a refused request too."""
    sock = raw_login("sam")
    resp = cs.command(sock, cs.CMD_SER_EVAL, cs.r_serialize("quote(add(1, 2))"))
    assert resp is not None and resp.error, resp
    session = session_of(site.audit, sock)
    line = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "request" and l.get("session") == session,
                             what=f"a request of session {session}")
    assert line.get("outcome") == "refused", line
    assert line.get("user") == "sam" and line.get("role") == "scorer", line


def test_audit_timeout_request(site, raw_login):
    code = f"Sys.sleep(5) # {uuid.uuid4().hex}"
    sock = raw_login("slow")
    resp = cs.eval_on(sock, code)
    assert resp is not None and resp.error, resp
    line = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "request" and l.get("code_sha256") == sha256(code),
                             what="the timed-out request")
    assert line.get("outcome") == "timeout" and line.get("limit") == "eval_timeout", line
    assert line.get("user") == "slow" and line.get("role") == "slowpoke", line
    assert 900 <= line.get("duration_ms", 0) < 4500, line


@pytest.mark.parametrize("how", ["inside", "outside"])
def test_audit_killed_worker_session_end(site, raw_login, how):
    sock = raw_login("ana")
    session = session_of(site.audit, sock)
    resp = cs.eval_on(sock, "Sys.getpid()")
    assert resp is not None and resp.ok, resp
    pid = int.from_bytes(resp.payload[-4:], "little")
    sock.settimeout(30)
    try:
        if how == "inside":
            resp = cs.eval_on(sock, "tools::pskill(Sys.getpid(), 9)")
        else:
            os.kill(pid, signal.SIGKILL)
            resp = cs.read_response(sock)
    except (ConnectionResetError, BrokenPipeError):
        resp = None
    assert resp is None or resp.error, f"a killed session answered: {resp}"
    end = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "session end" and l.get("session") == session,
                            what=f"'session end' of session {session}")
    assert str(end.get("outcome", "")).startswith("lost"), end
    assert end.get("user") == "ana", end
    assert cs.eval_on(raw_login("ana"), "1+1").payload == cs.double_answer(2.0)  # still serving


def test_audit_rotation(servers, private_root):
    s = write_site(private_root, None, [f'audit_log: "{private_root / "audit.log"}"', "audit_max_size: 2K", "audit_keep: 2"],
                   roles=False)
    servers(s)
    last = ""
    for i in range(6):  # sessions of an anonymous analyst: session start, requests, session end
        sock, ident = cs.open_qap(s.port)
        with sock:
            assert ident.startswith(b"Rsrv0103QAP1"), ident
            for j in range(6):
                last = f"{i} * {j} + {'0' * 40}"
                assert cs.eval_on(sock, last).ok
    cs.wait_for_audit(s.audit, lambda l: l.get("code_sha256") == sha256(last), what="the last request")
    rotated = private_root / "audit.log.1"
    assert rotated.exists(), f"no audit.log.1 with audit_max_size 2K: {sorted(p.name for p in private_root.iterdir())}"
    assert (private_root / "audit.log.2").exists(), "audit_keep: 2 should keep audit.log.2 after ~15K of lines"
    assert not (private_root / "audit.log.3").exists(), "audit_keep: 2 keeps two rotated files only"
    total = 0
    for path in [s.audit, rotated, private_root / "audit.log.2"]:
        size = path.stat().st_size
        assert 0 < size <= 2048, f"{path.name}: {size} bytes with audit_max_size 2K"
        lines = cs.read_audit(path)  # every line valid JSON
        assert all("event" in l and "session" in l for l in lines), lines
        assert path.read_bytes().endswith(b"\n"), f"{path.name} ends inside a line"
        total += len(lines)
    assert total >= 10, total


# ---------------------------------------------------------------------------------------
# Login throttling


def _login_answer(port: int, user: str, secret: str, source: str | None = None) -> cs.Response | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(cs.IO_TIMEOUT)
    with sock:
        if source:
            sock.bind((source, 0))
        sock.connect((cs.HOST, port))
        ident = cs.recv_exact(sock, 32)
        assert ident.startswith(b"Rsrv0103QAP1"), ident
        sock.sendall(cs.login_message(user, secret))
        resp = cs.read_response(sock)
        if resp is not None and resp.ok:
            assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)
        return resp


def test_login_lockout_after_max_failures(servers, private_root):
    users = {"ana": USERS["ana"]}
    s = write_site(private_root, users, [
        f'audit_log: "{private_root / "audit.log"}"', "anonymous_role: none",
        "login_max_failures: 3", "login_lockout: 4", "login_delay: 0.01",
    ], roles=False)
    servers(s)
    good = password("ana")
    assert _login_answer(s.port, "ana", good).ok  # control: the password works

    first = time.monotonic()
    for i in range(3):
        resp = _login_answer(s.port, "ana", f"bad {i}")
        assert resp is not None and resp.cmd == AUTH_FAILED, resp
    resp = _login_answer(s.port, "ana", good)
    locked_at = time.monotonic()
    assert locked_at - first < 3.5, f"the logins took {locked_at - first:.1f} s: too slow to test a 4 s lockout"
    assert resp is not None and resp.cmd == AUTH_FAILED, f"the right password after 3 failures: {resp}"
    cs.wait_for_audit(s.audit, lambda l: l.get("event") == "login" and l.get("outcome") == "locked out",
                      what="outcome 'locked out'")
    assert s.server.proc.poll() is None

    # another address is not locked out
    resp = _login_answer(s.port, "ana", good, source="127.0.0.2")
    assert resp is not None and resp.ok, f"login from 127.0.0.2 while 127.0.0.1 is locked out: {resp}"

    # after login_lockout (4 s from the first failure), the address may log in again
    time.sleep(max(0.0, first + 4.3 - time.monotonic()))
    deadline = first + 12
    while True:
        resp = _login_answer(s.port, "ana", good)
        if resp is not None and resp.ok:
            break
        assert time.monotonic() < deadline, f"still locked out {time.monotonic() - first:.1f} s after the first failure: {resp}"
        time.sleep(0.3)


def test_login_lockout_lasts_the_window(servers, private_root):
    """With the default lockout (600 s), a locked-out address stays locked out (several tries,
    a few seconds apart), and a fresh server accepts it again."""
    users = {"ana": USERS["ana"]}
    s = write_site(private_root, users, ["anonymous_role: none", "login_max_failures: 3", "login_delay: 0.01"], roles=False)
    servers(s)
    for i in range(3):
        assert _login_answer(s.port, "ana", f"bad {i}").cmd == AUTH_FAILED
    for _ in range(3):
        resp = _login_answer(s.port, "ana", password("ana"))
        assert resp is not None and resp.cmd == AUTH_FAILED, resp
        time.sleep(1)
    s.server.stop()
    servers(s)
    assert _login_answer(s.port, "ana", password("ana")).ok


def test_failed_login_delay_doubles(servers, private_root):
    users = {"ana": USERS["ana"]}
    s = write_site(private_root, users, ["anonymous_role: none", "login_max_failures: 10", "login_delay: 0.2"], roles=False)
    servers(s)
    times = []
    for i in range(3):
        t = time.monotonic()
        assert _login_answer(s.port, "ana", f"bad {i}").cmd == AUTH_FAILED
        times.append(time.monotonic() - t)
    # 0.2 s, 0.4 s, 0.8 s (plus the hash check)
    assert times[0] >= 0.19 and times[1] >= 0.39 and times[2] >= 0.79, times
    assert times[2] < 5, times


# ---------------------------------------------------------------------------------------
# Per-role limits


def test_role_max_sessions(site, raw_login):
    a = raw_login("lim")
    b = raw_login("lim")
    for sock in (a, b):
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)
    sock, resp = cs.qap_login(site.port, "lim", password("lim"))
    with sock:
        assert resp is not None and resp.cmd == AUTH_FAILED, f"third session of a role with max_sessions 2: {resp}"
        session = session_of(site.audit, sock)
    line = cs.wait_for_audit(site.audit, lambda l: l.get("event") == "login" and l.get("session") == session,
                             what=f"'login' of session {session}")
    assert line.get("outcome") == "role session limit" and line.get("user") == "lim", line
    # other roles are not limited by it
    assert cs.eval_on(raw_login("ana"), "1+1").payload == cs.double_answer(2.0)
    # both sessions still serve
    assert cs.eval_on(a, "2+2").payload == cs.double_answer(4.0)
    a.close()
    deadline = time.monotonic() + 20
    while True:
        sock, resp = cs.qap_login(site.port, "lim", password("lim"))
        with sock:
            if resp is not None and resp.ok:
                assert cs.eval_on(sock, "3+3").payload == cs.double_answer(6.0)
                break
        assert time.monotonic() < deadline, f"no lim session 20 s after one of two ended: {resp}"
        time.sleep(0.2)
    assert cs.eval_on(b, "2+2").payload == cs.double_answer(4.0)


def test_role_max_sessions_failed_logins_do_not_count(site, raw_login):
    """Refused logins (wrong password) of a limited user take no slot."""
    for _ in range(3):
        sock, resp = cs.qap_login(site.port, "lim", "wrong")
        sock.close()
        assert resp is not None and resp.cmd == AUTH_FAILED
    a = raw_login("lim")
    b = raw_login("lim")
    assert cs.eval_on(a, "1").ok and cs.eval_on(b, "1").ok


def test_role_eval_timeout(site, login):
    conn = login("slow")
    t = time.monotonic()
    with pytest.raises(REvalError) as e:
        conn.eval("Sys.sleep(5)")
    took = time.monotonic() - t
    assert took < 4, f"eval_timeout: 1 stopped Sys.sleep(5) only after {took:.1f} s"
    assert re.search(r"limit", str(e.value)), str(e.value)
    assert conn.eval("1+1") == 2.0  # the session goes on
    # another role has the server's limit (300 s), not slowpoke's 1 s
    other = login("ana")
    t = time.monotonic()
    assert other.eval("Sys.sleep(2); 42") == 42.0
    assert time.monotonic() - t >= 1.9


def test_role_eval_timeout_raw_status(site, raw_login):
    sock = raw_login("slow")
    t = time.monotonic()
    resp = cs.eval_on(sock, "Sys.sleep(5)")
    assert time.monotonic() - t < 4
    assert resp is not None and resp.error and resp.status == cs.STATUS_R_ERROR, resp
    msg = cs.eval_on(sock, "geterrmessage()")
    assert msg is not None and msg.ok and b"limit" in msg.payload, msg


# ---------------------------------------------------------------------------------------
# The text protocol and the anonymous role


def test_text_protocol_for_anonymous_caller(servers, private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, [
        f'audit_log: "{private_root / "audit.log"}"', "anonymous_role: scorer",
    ])
    servers(s, "--text-port", "0")
    assert "text" in s.listeners, f"no text listener with anonymous_role: scorer: {s.listeners}"
    sock = socket.create_connection((cs.HOST, s.listeners["text"]), timeout=cs.IO_TIMEOUT)
    with sock:
        assert cs.text_request(sock, "add(1, 2)").strip() == "[1] 3"
        refused = cs.text_request(sock, 'system("id")')
        assert refused is not None and "may only call" in refused, refused
        assert "uid=" not in refused, refused
        assert cs.text_request(sock, "score(3)").strip() == "[1] 6"
        session = session_of(s.audit, sock)
    # request lines come from the session process over its control socket: wait for them
    cs.wait_for_audit(s.audit, lambda l: l.get("event") == "session end" and l.get("session") == session,
                      what=f"'session end' of session {session}")
    for code in ('system("id")', "add(1, 2)"):
        cs.wait_for_audit(s.audit, lambda l: l.get("event") == "request" and l.get("code_sha256") == sha256(code),
                          what=f"the request {code}")
    lines = [l for l in cs.read_audit(s.audit) if l.get("session") == session]
    start = lines[0]
    assert start["event"] == "session start" and start.get("protocol") == "text" and start.get("role") == "scorer", start
    by_hash = {l.get("code_sha256"): l for l in lines if l.get("event") == "request"}
    refused_line = by_hash.get(sha256('system("id")'))
    assert refused_line is not None and refused_line.get("outcome") == "refused", lines
    assert refused_line.get("command") == "text" and refused_line.get("protocol") == "text", refused_line
    assert by_hash.get(sha256("add(1, 2)"), {}).get("outcome") == "ok", lines
    # the anonymous caller's QAP1 sessions have the same role
    sock, _ = cs.open_qap(s.port)
    with sock:
        assert cs.eval_on(sock, "add(1, 2)").payload == cs.double_answer(3.0)
        resp = cs.eval_on(sock, 'system("id")')
        assert resp is not None and resp.error, resp


def test_text_protocol_not_served_without_anonymous_role(servers, private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, [], roles=False)  # users, no anonymous_role
    servers(s, "--text-port", "0")
    assert "text" not in s.listeners, f"text protocol served although every client must log in: {s.listeners}"
    s2 = write_site(make_root_in(private_root), {"ana": USERS["ana"]}, ["anonymous_role: none"], roles=False)
    servers(s2, "--text-port", "0")
    assert "text" not in s2.listeners, s2.listeners
    sock, resp = cs.qap_login(s2.port, "ana", password("ana"))
    with sock:
        assert resp is not None and resp.ok
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)


def make_root_in(parent: Path) -> Path:
    root = parent / f"sub-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    root.chmod(0o755)
    return root


# ---------------------------------------------------------------------------------------
# Start-up refusals


def _refused(site: Site, *extra: str) -> str:
    code, out, err = cs.rgate_serve_exit(("--config", str(site.config), "--text-port", "0", "--qap-port", "0", *extra))
    assert code is not None, f"rgate serve still running after 20 s (it should refuse to start); stderr:\n{err[-3000:]}"
    assert code == 78, f"rgate serve exited {code}, not 78 (EX_CONFIG); stdout {out!r} stderr {err!r}"
    assert err.startswith("rgate: cannot start: "), f"exit {code} without the reason on stderr; stdout {out!r} stderr {err!r}"
    assert "Usage:" not in err, err  # a bad setting is not a command-line mistake
    assert "listening" not in out, out
    return err


def test_refuses_remote_host_with_anonymous_role(private_root):
    s = write_site(private_root, None, [], roles=False)  # no users: anonymous analyst
    err = _refused(s, "--host", "0.0.0.0")
    assert "0.0.0.0" in err and re.search(r"loopback|allow_remote_without_auth", err), err


def test_refuses_remote_host_with_anonymous_caller(private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: scorer"])
    err = _refused(s, "--host", "0.0.0.0")
    assert "0.0.0.0" in err and re.search(r"loopback|allow_remote_without_auth", err), err


def test_remote_host_with_logins_only_starts(servers, private_root):
    """Control for the refusals above: the same non-loopback host is fine when every client
    must log in (anonymous_role: none)."""
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: none"], roles=False)
    servers(s, "--host", "0.0.0.0")
    sock, resp = cs.qap_login(s.port, "ana", password("ana"))
    with sock:
        assert resp is not None and resp.ok, resp


@pytest.mark.parametrize("function", ["eval", "do.call", "system", "base::system", "get"])
def test_refuses_caller_allowing_dangerous_function(private_root, function):
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: none"])
    s.config.write_text(s.config.read_text().replace('functions: ["add", "score"]', f'functions: ["add", "{function}"]'))
    err = _refused(s)
    assert "scorer" in err and function.split("::")[-1] in err, err


def test_refuses_unknown_role_base(private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: none"])
    text = s.config.read_text().replace("    base: analyst\n    eval_timeout: 1", "    base: superuser\n    eval_timeout: 1")
    s.config.write_text(text)
    line = text.splitlines().index("    base: superuser") + 1
    err = _refused(s)
    assert "superuser" in err and re.search(rf"{re.escape(str(s.config))}:{line}\b", err), (line, err)


def test_refuses_unknown_role_setting(private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: none"])
    text = s.config.read_text().replace("    max_sessions: 2\n", "    max_sessions: 2\n    colour: blue\n")
    s.config.write_text(text)
    line = text.splitlines().index("    colour: blue") + 1
    err = _refused(s)
    assert "colour" in err and re.search(rf"{re.escape(str(s.config))}:{line}\b", err), (line, err)


def test_refuses_plaintext_password_in_users_file(private_root):
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: none"])
    plain = "hunter2-plain-secret"
    with open(s.users_file, "a") as f:
        f.write(f"bob:analyst:{plain}\n")
    line = s.users_file.read_text().splitlines().index(f"bob:analyst:{plain}") + 1
    err = _refused(s)
    assert re.search(rf"{re.escape(str(s.users_file))}:{line}\b", err), (line, err)
    assert plain not in err, f"the refusal repeats the plaintext password: {err}"


def test_refusal_controls_start(servers, private_root):
    """The site the refusal tests break starts as written (so each refusal is its fault)."""
    s = write_site(private_root, {"ana": USERS["ana"]}, ["anonymous_role: scorer"])
    servers(s, "--text-port", "0")
    assert "text" in s.listeners


# ---------------------------------------------------------------------------------------
# The sandbox, seen from inside sessions


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sessions are sandboxed only when rgate runs as root")


@needs_root
def test_session_cannot_read_shadow(site, login):
    assert Path("/etc/shadow").exists() and os.access("/etc/shadow", os.R_OK)  # control: root can
    conn = login("ana")
    got = conn.eval(
        "tryCatch(length(readLines('/etc/shadow')), error = function(e) conditionMessage(e), "
        "warning = function(w) conditionMessage(w))"
    )
    assert isinstance(got, str) and re.search(r"denied|cannot open", got), f"a session read /etc/shadow: {got!r}"
    assert conn.eval("file.access('/etc/shadow', 4)") == -1
    assert conn.eval("system('cat /etc/shadow > /dev/null 2>&1')") != 0


@needs_root
def test_session_cannot_reach_another_sessions_tempdir(site, login):
    a, b = login("ana"), login("bea")
    secret = uuid.uuid4().hex
    td = a.eval(f"td <- tempdir(); writeLines('{secret}', file.path(td, 'secret.txt')); td")
    assert isinstance(td, str) and td.startswith("/"), td
    assert a.eval("readLines(file.path(tempdir(), 'secret.txt'))") == secret  # control
    info = os.stat(td)
    assert stat.S_IMODE(info.st_mode) == 0o700, f"{td}: mode {oct(stat.S_IMODE(info.st_mode))}"
    a_uid = int(r_string(a, "system('id -u', intern = TRUE)"))
    assert info.st_uid == a_uid, f"{td} is owned by {info.st_uid}, session A is uid {a_uid}"

    assert b.eval("tempdir()") != td
    listed = b.eval(f"tryCatch(length(list.files('{td}', all.files = TRUE, no.. = TRUE)), error = function(e) -1L)")
    assert listed in (0, -1), f"session B lists {listed} files in session A's tempdir"
    assert b.eval(f"file.exists('{td}/secret.txt')") is False
    got = b.eval(f"tryCatch(readLines('{td}/secret.txt'), error = function(e) 'refused', warning = function(w) 'refused')")
    assert got == "refused" and secret not in str(got), got
    out = r_string(b, f"paste(c('', system('cat {td}/secret.txt 2>/dev/null', intern = TRUE)), collapse = ' ')")
    assert secret not in out, f"session B's shell read session A's file: {out!r}"
    out = r_string(b, f"paste(c('', system('ls -a {td} 2>/dev/null', intern = TRUE)), collapse = ' ')")
    assert "secret.txt" not in out, f"session B's shell lists session A's tempdir: {out!r}"
    wrote = b.eval(f"tryCatch(file.create('{td}/from-b'), warning = function(w) FALSE, error = function(e) FALSE)")
    assert wrote is False and not Path(td, "from-b").exists()


@needs_root
def test_session_cannot_signal_supervisor_or_other_processes(servers, private_root, log_dir):
    s = write_site(private_root, {"ana": USERS["ana"], "bea": USERS["bea"]}, ["anonymous_role: none"], roles=False)
    servers(s)
    supervisor = s.server.proc.pid
    a = cs.pyrserve_connect(s.port)
    b = cs.pyrserve_connect(s.port)
    try:
        assert cs.pyrserve_login(a, "ana", password("ana")).ok
        assert cs.pyrserve_login(b, "bea", password("bea")).ok
        a_pid = int(a.eval("Sys.getpid()"))
        b_pid = int(b.eval("Sys.getpid()"))
        assert b.eval(f"tools::pskill({supervisor}, 15)") is False
        assert b.eval(f"system('kill -TERM {supervisor} 2>/dev/null')") != 0
        assert b.eval(f"tools::pskill({a_pid}, 9)") is False  # another session
        # nothing else in the server's process tree may be signalled either (kill(pid, 0))
        others = [pid for pid, _ in cs.process_tree(supervisor) if pid != b_pid and _ppid(pid) != b_pid]
        assert supervisor in others and a_pid in others, others
        reachable = [pid for pid in others if b.eval(f"tools::pskill({pid}, 0)") is not False]
        assert not reachable, f"session B (pid {b_pid}) may signal {reachable} (server tree: {others})"
        assert s.server.proc.poll() is None, "the supervisor died"
        assert a.eval("1+1") == 2.0  # session A was not killed
    finally:
        a.close()
        b.close()
    with pytest.raises(subprocess.TimeoutExpired):
        s.server.proc.wait(timeout=1)
    sock, resp = cs.qap_login(s.port, "ana", password("ana"))
    with sock:
        assert resp is not None and resp.ok
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[1])
    except (OSError, ValueError):
        return -1


@needs_root
def test_sessions_have_own_pids_and_unprivileged_uids(site, login):
    conns = [login("ana"), login("ana"), login("bea")]
    seen = []
    for conn in conns:
        pid = int(conn.eval("Sys.getpid()"))
        ids = r_string(conn, "paste(system('id -u; id -g; id -G', intern = TRUE), collapse = ' ')").split()
        uid, gid, groups = int(ids[0]), int(ids[1]), [int(g) for g in ids[2:]]
        assert uid != 0 and gid != 0 and 0 not in groups, ids
        assert uid == 100000 + pid, f"session pid {pid} runs as uid {uid}"
        seen.append((pid, uid))
    assert len({p for p, _ in seen}) == 3, seen
    assert len({u for _, u in seen}) == 3, seen


def _listener() -> socket.socket:
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind((cs.HOST, 0))
    lst.listen(16)
    return lst


def _connections(lst: socket.socket, wait: float = 0.5) -> int:
    """How many connections reached the listener (completed handshakes, accepted or not)."""
    n = 0
    while select.select([lst], [], [], wait)[0]:
        conn, _ = lst.accept()
        conn.close()
        n += 1
        wait = 0.1
    return n


def _try_connect(conn, port: int) -> tuple[str, str]:
    """(R socketConnection result, shell /dev/tcp result) of a session connecting to port."""
    r = conn.eval(
        f"tryCatch({{ con <- socketConnection('127.0.0.1', port = {port}, blocking = TRUE, open = 'r+b', timeout = 3); "
        "close(con); 'connected' }, error = function(e) paste('error:', conditionMessage(e)), "
        "warning = function(w) paste('warning:', conditionMessage(w)))"
    )
    sh = r_string(conn, f"paste(system(\"timeout 5 bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' >/dev/null 2>&1 "
                        "&& echo connected || echo failed\", intern = TRUE), collapse = ' ')")
    return str(r), sh.strip()


@needs_root
def test_analyst_has_no_network(site, login):
    lst = _listener()
    with lst:
        port = lst.getsockname()[1]
        conn = login("ana")
        r, sh = _try_connect(conn, port)
        reached = _connections(lst)
        assert r != "connected" and sh == "failed" and reached == 0, (
            f"an analyst session reached a TCP listener on 127.0.0.1: R {r!r}, shell {sh!r}, {reached} connections"
        )
        assert conn.eval("1+1") == 2.0  # the session still works


@needs_root
@pytest.mark.parametrize("user", ["root", "net"])
def test_admin_and_network_role_can_connect(site, login, user):
    lst = _listener()
    with lst:
        port = lst.getsockname()[1]
        conn = login(user)
        r, sh = _try_connect(conn, port)
        reached = _connections(lst)
        assert r == "connected" and sh == "connected" and reached == 2, (r, sh, reached)
