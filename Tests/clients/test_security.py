"""Users, roles and the restricted `caller` role, with real clients (pyRserve, RSclient) and raw
QAP1 where no client can send the message (notes: /work/tmp/notes/security-spec.md).

One rgate serves the module (`rgate serve --config`, users made with `rgate user add`):

- `ana` (analyst: any R), `sam` (scorer: a caller allowed `score`, `add`, `stats::median`,
  defined by a sourced model.R), `root` (admin); `anonymous_role: none`, so every client must
  log in.
- The escape corpus: every attempt must be refused with the server's error text, must not have
  run (each one tries to create its own marker file, in a directory the sessions can write to,
  as proven by an analyst control test), and the same connection must still serve
  `add(1, 2)` and `score(1)` afterwards. The attempts marked live are checked against a real
  Rserve (no roles, the same functions defined): there they do create their marker, so a
  missing marker on rgate means the attempt did not run.

Tests that shut a server down, or change its users file, use private servers.

Client facts these tests rely on (pyRserve 1.0.4, RSclient 0.7-9):
- pyRserve has no login API: `cs.pyrserve_login` sends CMD_login on its socket. After any
  error answer with an R status (1-3, 127) pyRserve evaluates `geterrmessage()` to build the
  REvalError message, so a caller must be allowed `geterrmessage()`.
- pyRserve's `conn.r.name` sends `is.function(name)`, then `name` (a variable) or, for a call,
  setSEXP `arg_0_`, ... and `name(arg_0_, ..., key=kwarg_key_)`.
- RSclient's RS.eval/RS.assign use serEval/serAssign (refused for callers); RS.eval.qap sends
  CMD_eval with a DT_SEXP call; RS.login is RSA only (needs RS.authkey); the old API
  (RSconnect/RSlogin/RSeval/RSshutdown) logs in with plain CMD_login and sends CMD_shutdown.
  RS.server.shutdown sends the control command ctrlShutdown (0x44), which rgate does not
  support for anyone, so it proves nothing about roles.
"""
from __future__ import annotations

import base64
import math
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pyRserve.rexceptions import PyRserveError, REvalError, RResponseError

import clientsupport as cs

pytestmark = pytest.mark.timeout(180)

# name -> (role, password). Passwords hold spaces and punctuation, never quotes or backslashes.
USERS = {
    "ana": ("analyst", "ana pw Q7x!31"),
    "sam": ("scorer", "sam pw K2p#84"),
    "root": ("admin", "root pw Z9m%15"),
}

EVAL_REFUSED = re.compile(r"may only call")
COMMAND_REFUSED = re.compile(r"not allowed for role")
# The spec does not fix the wording for refused setSEXP; it must name the rule or the role.
ASSIGN_REFUSED = re.compile(r"may only|not allowed|scorer|caller")
# CMD_eval with a DT_SEXP, detachedVoidEval: either checked like text (may only call) or
# refused as a command (not allowed for role); the spec covers neither.
CALL_OR_COMMAND_REFUSED = re.compile(r"may only call|not allowed for role")

MB = 1 << 20


def password(user: str) -> str:
    return USERS[user][1]


# ---------------------------------------------------------------------------------------
# Server set-up


@dataclass
class Site:
    root: Path  # world-readable: sessions run as unprivileged users when rgate runs as root
    markers: Path  # world-writable (sticky): where escape attempts try to create files
    users_file: Path
    config: Path
    model: Path
    server: cs.ServerProcess | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port


def make_site_dir() -> Path:
    return cs.make_shared_dir("rgate-security-")


add_user = cs.add_user


def write_site(root: Path, users: dict[str, tuple[str, str]], roles: bool = True, anonymous_role: str | None = "none") -> Site:
    markers = root / "markers"
    markers.mkdir()
    markers.chmod(0o1777)
    model = root / "model.R"
    model.write_text(
        "score <- function(x) sum(x) * 2\n"
        "add <- function(a, b) a + b\n"
        "# defined by the role's source, but not in its functions: a caller may not call it\n"
        f"unlisted <- function() file.create(\"{markers / 'unlisted-sourced-function'}\")\n"
    )
    model.chmod(0o644)
    users_file = root / "users"
    for name, (role, secret) in users.items():
        add_user(users_file, name, role, secret)
    lines = ["host: 127.0.0.1", f'users_file: "{users_file}"']
    if anonymous_role is not None:
        lines.append(f"anonymous_role: {anonymous_role}")
    if roles:
        lines += [
            "roles:",
            "  scorer:",
            "    base: caller",
            '    functions: ["score", "add", "stats::median"]',
            f'    source: ["{model}"]',
            "    eval_timeout: 5",
            "    memory_limit: 512M",
            "    max_sessions: 64",
        ]
    config = root / "rgate.yaml"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o644)
    return Site(root, markers, users_file, config, model)


@pytest.fixture(scope="module")
def site(log_dir):
    root = make_site_dir()
    try:
        s = write_site(root, USERS)
        (root / "control").mkdir()
        (root / "control").chmod(0o1777)
        s.server = cs.start_rgate(log_dir, ("--config", str(s.config)), name="rgate-security")
        try:
            yield s
        finally:
            leaked = s.server.stop()
            assert not leaked, f"rgate-security: processes {leaked} outlived SIGTERM; log:\n{s.server.log_tail()}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_dir():
    root = make_site_dir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def login(site, connect):
    """pyRserve connections logged in as a user (closed at teardown): login(user)."""

    def make(user: str, port: int | None = None):
        conn = connect(port or site.port)
        resp = cs.pyrserve_login(conn, user, password(user))
        assert resp is not None and resp.cmd == cs.RESP_OK and resp.payload == b"", f"login as {user}: {resp}"
        return conn

    return make


@pytest.fixture
def raw_login(site):
    """Raw QAP1 connections logged in as a user (closed at teardown): raw_login(user)."""
    opened: list[socket.socket] = []

    def make(user: str, port: int | None = None) -> socket.socket:
        sock, resp = cs.qap_login(port or site.port, user, password(user))
        opened.append(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK, f"login as {user}: {resp}"
        return sock

    yield make
    for sock in opened:
        sock.close()


def refused_eval(conn, code: str | bytes, pattern: re.Pattern = EVAL_REFUSED, void: bool = False) -> str:
    """Evaluates code through pyRserve; it must fail with an REvalError whose text matches."""
    try:
        value = conn.voidEval(code) if void else conn.eval(code)
    except REvalError as e:
        message = str(e)
    except RecursionError:
        pytest.fail(
            "pyRserve recursed: after an error it evaluates geterrmessage(), which the server refused "
            "to the caller too; a caller must be allowed geterrmessage()"
        )
    else:
        pytest.fail(f"not refused: {code[:200]!r} returned {value!r}")
    assert pattern.search(message), f"refusal of {code[:200]!r} does not say {pattern.pattern!r}: {message!r}"
    return message


def refusal_text(sock: socket.socket, resp: cs.Response | None) -> str:
    """resp must be an error; returns its payload and geterrmessage() on the same connection."""
    assert resp is not None, "the server closed the connection instead of refusing"
    assert resp.error, f"not refused: {resp}"
    text = resp.payload.decode("utf-8", "replace")
    msg = cs.eval_on(sock, "geterrmessage()")
    assert msg is not None, "the connection was closed after the refusal"
    if msg.ok:
        text += "\n" + msg.payload.decode("utf-8", "replace")
    return text


def assert_caller_serves(sock: socket.socket) -> None:
    resp = cs.eval_on(sock, "add(1, 2)")
    assert resp is not None and resp.payload == cs.double_answer(3.0), resp
    resp = cs.eval_on(sock, "score(1)")
    assert resp is not None and resp.payload == cs.double_answer(2.0), resp


def with_marker(code: str | bytes, marker: Path) -> str | bytes:
    if isinstance(code, bytes):
        return code.replace(b"MARK", str(marker).encode())
    return code.replace("MARK", str(marker)).replace("SPACES", " " * MB)


def run_r(tmp_path: Path, body: str, args: list[str], expect_checks: int) -> list:
    result = cs.run_rscript(cs.R_PRELUDE + "args <- commandArgs(TRUE)\n" + body, args, tmp_path, timeout=120)
    checks = cs.parse_checks(result.stdout)
    failed = [f"{name}: got {got}" for name, ok, got, _ in checks if not ok]
    assert result.returncode == 0, f"Rscript exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert not failed, "\n".join(failed)
    assert len(checks) == expect_checks, result.stdout
    return checks


# ---------------------------------------------------------------------------------------
# Users: the CLI and the users file


def test_user_list_shows_users_and_roles_but_no_secrets(site):
    r = cs.rgate_cli("user", "list", "--users-file", str(site.users_file))
    assert r.returncode == 0, r
    out = r.stdout.decode()
    for name, (role, secret) in USERS.items():
        lines = [line for line in out.splitlines() if re.search(rf"(^|\W){re.escape(name)}(\W|$)", line)]
        assert lines, f"user {name} missing from `rgate user list`:\n{out}"
        assert any(role in line for line in lines), f"role {role} of {name} missing:\n{out}"
        assert secret not in out
    stored = site.users_file.read_text()
    secrets = [
        token
        for line in stored.splitlines()
        if any(name in line for name in USERS)
        for token in re.split(r"[\s:,'\"{}\[\]]+", line)
        if len(token) >= 16
    ]
    assert secrets, f"no hash-like token found in the users file:\n{stored}"
    leaked = [t for t in secrets if t in out]
    assert not leaked and "$scrypt$" not in out, f"`rgate user list` shows stored hashes: {leaked}"


def test_users_file_holds_no_plaintext_password(site):
    data = site.users_file.read_bytes()
    for name, (_, secret) in USERS.items():
        raw = secret.encode()
        for form in (raw, raw.hex().encode(), base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")):
            assert form not in data, f"the users file holds {name}'s password ({form!r})"
        assert name.encode() in data


def test_users_file_is_private(site):
    mode = stat.S_IMODE(site.users_file.stat().st_mode)
    assert mode & 0o077 == 0, f"users file mode {oct(mode)}: password hashes readable by other users"


def test_user_remove_revokes_login(start_server, private_dir):
    users = {"keep": ("analyst", "keep pw 1"), "gone": ("analyst", "gone pw 2")}
    # No anonymous_role: with a users file the default is none.
    s = write_site(private_dir, users, roles=False, anonymous_role=None)
    server = start_server("rgate", "--config", str(s.config))

    sock, _ = cs.open_qap(server.port)
    with sock:
        resp = cs.eval_on(sock, "1+1")
        assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
        assert cs.connection_closed(sock)

    sock, resp = cs.qap_login(server.port, "gone", users["gone"][1])
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)

    r = cs.rgate_cli("user", "remove", "gone", "--users-file", str(s.users_file))
    assert r.returncode == 0, r
    listed = cs.rgate_cli("user", "list", "--users-file", str(s.users_file)).stdout.decode()
    assert "gone" not in listed and "keep" in listed, listed

    sock, resp = cs.qap_login(server.port, "gone", users["gone"][1])
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
        assert cs.connection_closed(sock)
    sock, resp = cs.qap_login(server.port, "keep", users["keep"][1])
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)


# ---------------------------------------------------------------------------------------
# Logging in


def test_id_string_requires_login_and_offers_no_crypt(site):
    """ARpt: plain-text login required. No ARuc: crypt() answers cannot be checked against
    scrypt hashes, and clients offered crypt use it (Java's RConnection does)."""
    sock, ident = cs.open_qap(site.port)
    sock.close()
    slots = [ident[i : i + 4] for i in range(16, 32, 4)]
    assert ident.startswith(b"Rsrv0103QAP1\r\n\r\n"), ident
    assert b"ARpt" in slots, ident
    assert b"ARuc" not in slots, ident


def test_no_login_is_refused(site, connect):
    sock, _ = cs.open_qap(site.port)
    with sock:
        resp = cs.eval_on(sock, "Sys.getpid()")
        assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
        assert cs.connection_closed(sock)
    conn = connect(site.port)
    with pytest.raises(RResponseError) as e:
        conn.eval("1+1")
    assert "auth" in str(e.value).lower(), str(e.value)


def test_pyrserve_analyst_logs_in_and_evaluates(site, login):
    conn = login("ana")
    assert conn.eval("1+1") == 2.0
    assert conn.eval("Sys.getpid()") > 0
    conn.r.v = np.array([1.5, 2.5])
    assert conn.eval("sum(v)") == 4.0
    assert conn.r.sum(np.array([1.0, 2.0])) == 3.0


def test_pyrserve_caller_logs_in_and_calls(site, login):
    conn = login("sam")
    assert conn.eval("add(1, 2)") == 3.0


@pytest.mark.parametrize(
    "user, secret",
    [("ana", "wrong"), ("nobody", USERS["ana"][1]), ("ana", ""), ("ana", USERS["sam"][1]), ("ana", USERS["ana"][1] + "x")],
    ids=["wrong-password", "unknown-user", "empty-password", "another-users-password", "password-prefix"],
)
def test_wrong_login_is_refused(site, connect, login, user, secret):
    conn = connect(site.port)
    resp = cs.pyrserve_login(conn, user, secret)
    assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
    with pytest.raises((PyRserveError, OSError)):
        conn.eval("1+1")
    # the server goes on serving (and a good login resets its failed-login count)
    assert login("ana").eval("2 * 21") == 42.0


@pytest.mark.usefixtures("rsclient_available")
def test_rsclient_logins(site, tmp_path):
    run_r(tmp_path, r'''
port <- as.integer(args[1]); user <- args[2]; pw <- args[3]
c <- RS.connect(port = port)
key <- RS.authkey(c)
check("authkey", is.raw(key) && length(key) > 300, length(key))
check("rsa login", isTRUE(RS.login(c, user, pw, authkey = key)))
same("rsa eval", RS.eval(c, 1 + 1), 2)
check("rsa arbitrary R", RS.eval(c, Sys.getpid()) > 0)
RS.close(c)
c <- RS.connect(port = port); key <- RS.authkey(c)
bad <- try(RS.login(c, user, paste0(pw, "x"), authkey = key), silent = TRUE)
check("rsa wrong password refused", inherits(bad, "try-error") && grepl("0x41|authentication", bad), bad)
RS.close(c)
c <- RSconnect(port = port)
check("plain login", isTRUE(RSlogin(c, user, pw)))
same("plain eval", RSeval(c, quote(1 + 1)), 2)
RSclose(c)
c <- RS.connect(port = port); key <- RS.authkey(c)
bad <- try(RS.login(c, "nobody", pw, authkey = key), silent = TRUE)
check("rsa unknown user refused", inherits(bad, "try-error") && grepl("0x41|authentication", bad), bad)
RS.close(c)
c <- RSconnect(port = port)
bad <- try(RSlogin(c, user, "wrong"), silent = TRUE)
check("plain wrong password refused", inherits(bad, "try-error") && grepl("error: 65", bad), bad)
RSclose(c)
c <- RS.connect(port = port)
r <- try(RS.eval(c, 1 + 1), silent = TRUE)
check("no login refused", inherits(r, "try-error") && grepl("0x41|authentication", r), r)
RS.close(c)
c <- RS.connect(port = port); key <- RS.authkey(c)
check("login after failures", isTRUE(RS.login(c, user, pw, authkey = key)))
same("eval after failures", RS.eval(c, 2L * 3L), 6L)
RS.close(c)
''', [str(site.port), "ana", password("ana")], expect_checks=12)


# ---------------------------------------------------------------------------------------
# Analyst and admin


def test_marker_control_sessions_can_write_markers(site, login):
    """The control for every marker assertion: R code that does run can create files in the
    marker directories, with both methods the escape attempts use."""
    conn = login("ana")
    for directory in (site.root / "control", site.markers):
        by_file = directory / "control-file-create"
        by_system = directory / "control-system-touch"
        assert conn.eval(f'file.create("{by_file}")') is True
        assert conn.eval(f'system("touch {by_system}")') == 0
        assert by_file.exists() and by_system.exists()
        by_file.unlink()
        by_system.unlink()


def test_analyst_may_use_file_commands(site, raw_login):
    sock = raw_login("ana")
    name = f"rgate-security-{os.getpid()}.txt"
    data = b"written by the analyst\n"
    assert cs.command(sock, cs.CMD_CREATE_FILE, cs.string_param(name)).ok
    assert cs.command(sock, cs.CMD_WRITE_FILE, struct.pack("<I", cs.DT_BYTESTREAM | (len(data) << 8)) + data).ok
    assert cs.command(sock, cs.CMD_CLOSE_FILE).ok
    resp = cs.eval_on(sock, f"readLines('{name}')")
    assert resp.ok and b"written by the analyst" in resp.payload, resp
    assert cs.command(sock, cs.CMD_REMOVE_FILE, cs.string_param(name)).ok


def test_shutdown_is_refused_for_analyst_and_caller(start_server, private_dir, tmp_path):
    """--allow-shutdown lets QAP1 shut the server down; only the admin role may use it."""
    s = write_site(private_dir, USERS)
    server = start_server("rgate", "--config", str(s.config), "--allow-shutdown")
    for user, check_code, answer in [("ana", "1+1", 2.0), ("sam", "add(1, 2)", 3.0)]:
        sock, resp = cs.qap_login(server.port, user, password(user))
        with sock:
            assert resp is not None and resp.ok, resp
            text = refusal_text(sock, cs.command(sock, cs.CMD_SHUTDOWN))
            assert COMMAND_REFUSED.search(text), text
            assert cs.eval_on(sock, check_code).payload == cs.double_answer(answer)
    # pyRserve's shutdown() sends CMD_shutdown and closes without reading the answer
    conn = cs.pyrserve_connect(server.port)
    assert cs.pyrserve_login(conn, "ana", password("ana")).ok
    conn.shutdown()
    if shutil.which("Rscript"):
        # RSclient's old API: RSshutdown sends CMD_shutdown (RS.server.shutdown sends ctrlShutdown)
        result = cs.run_rscript(cs.R_PRELUDE + r'''
args <- commandArgs(TRUE)
c <- RSconnect(port = as.integer(args[1]))
check("login", isTRUE(RSlogin(c, "ana", args[2])))
RSshutdown(c)
b <- readBin(c, "int", 4, endian = "little")
check("shutdown answered with an error", length(b) == 4 && b[1] %% 256L == 2L, b)
RSclose(c)
''', [str(server.port), password("ana")], tmp_path)
        if "there is no package called" not in result.stderr:  # else RSclient is not installed
            checks = cs.parse_checks(result.stdout)
            assert result.returncode == 0 and len(checks) == 2 and all(c[1] for c in checks), (result.stdout, result.stderr)
    with pytest.raises(subprocess.TimeoutExpired):
        server.proc.wait(timeout=3)
    sock, resp = cs.qap_login(server.port, "ana", password("ana"))
    with sock:
        assert resp is not None and resp.ok, resp
        assert cs.eval_on(sock, "1+1").payload == cs.double_answer(2.0)


def test_admin_can_shut_down(start_server, private_dir):
    s = write_site(private_dir, USERS)
    server = start_server("rgate", "--config", str(s.config), "--allow-shutdown")
    survivor, resp = cs.qap_login(server.port, "ana", password("ana"))  # an existing session
    with survivor:
        assert resp is not None and resp.ok
        conn = cs.pyrserve_connect(server.port)
        assert cs.pyrserve_login(conn, "root", password("root")).ok
        assert conn.eval("Sys.getpid()") > 0  # admin runs arbitrary R too
        conn.shutdown()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("rgate still running 30 s after the admin's CMD_shutdown")
    with pytest.raises(OSError):
        cs.open_qap(server.port, timeout=5)


# ---------------------------------------------------------------------------------------
# Caller: what is allowed


def test_caller_calls_through_pyrserve_function_proxies(site, login):
    conn = login("sam")
    assert conn.r.score(np.array([1.0, 2.0])) == 6.0
    assert conn.r.add(1, 2) == 3
    assert conn.r.add(a=1, b=2) == 3
    assert conn.r.add(1.5, b=2) == 3.5


@pytest.mark.parametrize(
    "code, expected",
    [
        ("add(1, 2)", 3.0),
        ("add(a = 1, b = 2)", 3.0),
        ("add(b = 2, a = 10)", 12.0),
        ("add(a = 1, 2)", 3.0),
        ("add(1L, 2L)", 3),
        ("  add( 1 ,\t2 )  ", 3.0),
        ("add(1, 2)\n", 3.0),
        ("score (1)", 2.0),
        ("score(x = 1)", 2.0),
        ("score(-2.5)", -5.0),
        ("score(1e3)", 2000.0),
        ("score(.5)", 1.0),
        ("score(0x10)", 32.0),
        ("score(TRUE)", 2.0),
        ("score(FALSE)", 0.0),
        ("score(NULL)", 0.0),
        ("score(Inf)", math.inf),
        ("score(NaN)", "nan"),
        ("score(NA)", "nan"),
        ("score(c_)", 18.0),
        ("stats::median(c_)", 3.0),
        ("stats::median(x = c_)", 3.0),
        ("stats::median('b')", "b"),
        ("add(i_, 1L)", [3, 4]),
        ("c_", [1.0, 5.0, 3.0]),
        ("is.function(score)", True),
        ("is.function(add)", True),
        ("is.function(c_)", False),
    ],
)
def test_caller_allowed_forms(site, login, code, expected):
    conn = login("sam")
    conn.r.c_ = np.array([1.0, 5.0, 3.0])
    conn.r.i_ = np.array([2, 3], dtype=np.int32)
    value = conn.eval(code)
    if expected == "nan":
        assert isinstance(value, float) and math.isnan(value), value
    elif isinstance(expected, list):
        assert list(np.asarray(value)) == expected, value
    else:
        assert value == expected and type(value) is type(expected), (value, expected)


def test_caller_infinite_literal_is_allowed(site, login):
    """score(1e999): a valid number literal (Inf in R), not a refusal."""
    assert login("sam").eval("score(1e999)") == math.inf


def test_caller_variables_via_pyrserve(site, login):
    conn = login("sam")
    conn.r.c_ = np.array([1.0, 5.0, 3.0])
    assert list(conn.r.c_) == [1.0, 5.0, 3.0]  # is.function(c_) is FALSE, then `c_`
    assert conn.eval("stats::median(c_)") == 3.0
    assert conn.eval("score(c_)") == 18.0


def test_caller_r_errors_inside_allowed_functions_are_ordinary_errors(site, login):
    conn = login("sam")
    with pytest.raises(REvalError) as e:
        conn.eval("add('a', 1)")
    assert "non-numeric" in str(e.value) and not EVAL_REFUSED.search(str(e.value)), str(e.value)
    assert conn.eval("add(1, 2)") == 3.0


def test_caller_refusal_is_an_r_error_with_its_message(site, raw_login):
    """What pyRserve needs: an R status (not an Rserve error code, which pyRserve raises as
    RResponseError without a message), and geterrmessage() answered with the refusal."""
    sock = raw_login("sam")
    resp = cs.eval_on(sock, "mean(1)")
    assert resp is not None and resp.error and resp.status in (1, cs.STATUS_R_ERROR), resp
    msg = cs.eval_on(sock, "geterrmessage()")
    assert msg is not None and msg.ok and EVAL_REFUSED.search(msg.payload.decode("utf-8", "replace")), msg
    assert_caller_serves(sock)


def test_caller_is_function_never_reveals_other_functions(site, login):
    conn = login("sam")
    for name in ("system", "file.create", "eval", "unlisted", "mean"):
        try:
            value = conn.eval(f"is.function({name})")
        except REvalError:
            continue
        assert value is False, f"is.function({name}) gave {value!r} to a caller"
    with pytest.raises((NameError, REvalError)):
        conn.r.system  # pyRserve: is.function(system), then `system` itself


def test_caller_data_named_like_a_function_does_not_shadow_it(site, login):
    conn = login("sam")
    for name in ("score", "add", "sum"):
        try:
            conn.setRexp(name, 100.0)
        except PyRserveError:
            pass  # refusing the name is fine too
    assert conn.eval("score(1)") == 2.0
    assert conn.eval("add(1, 2)") == 3.0
    assert conn.eval("is.function(score)") is True


def test_caller_T_shadowing(site, login):
    conn = login("sam")
    try:
        conn.r.T = 0.0
        assigned = True
    except PyRserveError:
        assigned = False
    assert conn.eval("add(TRUE, 1)") == 2.0  # the literal, not the variable
    if assigned:
        assert conn.eval("add(T, 1)") == 1.0  # an identifier names a session variable


def test_caller_void_eval_is_checked(site, login):
    conn = login("sam")
    marker = site.markers / "void-eval"
    refused_eval(conn, f'file.create("{marker}")', void=True)
    refused_eval(conn, f'score(1); file.create("{marker}")', void=True)
    assert conn.voidEval("add(1, 2)") is None
    assert conn.eval("add(1, 2)") == 3.0
    assert not marker.exists()


def test_caller_nul_byte_ends_the_request(site, login):
    """QAP1 strings end at the first NUL (as in Rserve): what follows is never evaluated."""
    conn = login("sam")
    marker = site.markers / "nul-after-allowed-call"
    try:
        value = conn.eval(f"score(1)\0; file.create('{marker}')")
    except REvalError as e:
        assert EVAL_REFUSED.search(str(e)), str(e)
    else:
        assert value == 2.0
    assert conn.eval("add(1, 2)") == 3.0
    assert not marker.exists()


def test_caller_string_sexp_is_never_parsed(site, raw_login):
    """CMD_eval with a DT_SEXP string: Rserve evaluates the object, a string is itself."""
    sock = raw_login("sam")
    marker = site.markers / "string-sexp"
    resp = cs.command(sock, cs.CMD_EVAL, cs.sexp_param(cs.sexp_strings(f"file.create('{marker}')")))
    assert resp is not None, "connection closed"
    if resp.error:
        refusal_text(sock, resp)
    else:
        assert f"file.create('{marker}')".encode() in resp.payload, resp
    assert_caller_serves(sock)
    assert not marker.exists()


def test_caller_detached_session_keeps_its_role(site, raw_login):
    sock = raw_login("sam")
    marker = site.markers / "after-attach"
    resp = cs.command(sock, cs.CMD_DETACH_SESSION)
    assert resp is not None, "connection closed"
    if resp.error:  # refusing to detach is fine
        refusal_text(sock, resp)
        assert_caller_serves(sock)
        return
    payload = resp.payload
    assert len(payload) == 44, payload.hex(" ")
    port = struct.unpack("<I", payload[4:8])[0]
    attached = socket.create_connection((cs.HOST, port), timeout=cs.IO_TIMEOUT)
    with attached:
        attached.sendall(payload[12:])
        hello = cs.read_response(attached)
        assert hello is not None and hello.cmd == cs.RESP_OK, hello
        text = refusal_text(attached, cs.eval_on(attached, f'file.create("{marker}")'))
        assert EVAL_REFUSED.search(text), text
        assert_caller_serves(attached)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# Caller: escape attempts in the code text (pyRserve CMD_eval)
#
# MARK is replaced by the case's own marker path, SPACES by 1 MiB of spaces. Cases in LIVE
# create their marker when evaluated by plain R (test_live_escapes_run_on_an_unrestricted_rserve);
# the others are forms that must be refused although R would not write a file for them.

TEXT_ESCAPES: list[tuple[str, str | bytes]] = [
    ("system", 'system("touch MARK")'),
    ("system2", 'system2("touch", "MARK")'),
    ("file-create", 'file.create("MARK")'),
    ("get-system", 'get("system")("touch MARK")'),
    ("do-call-system", 'do.call("system", list("touch MARK"))'),
    ("do-call-listed-function", 'do.call("score", list(file.create("MARK")))'),
    ("base-double-colon", 'base::system("touch MARK")'),
    ("base-triple-colon", 'base:::system("touch MARK")'),
    ("internal", '.Internal(file.create("MARK", TRUE))'),
    ("primitive", '.Primitive("(")(file.create("MARK"))'),
    ("eval-parse", 'eval(parse(text = "file.create(\'MARK\')"))'),
    ("evalq", 'evalq(file.create("MARK"))'),
    ("local", 'local(file.create("MARK"))'),
    ("try-catch", 'tryCatch(file.create("MARK"))'),
    ("nested-call", 'score(file.create("MARK"))'),
    ("nested-system", 'score(system("touch MARK"))'),
    ("nested-assignment", 'score(x <- file.create("MARK"))'),
    ("nested-named-argument", 'add(a = 1, b = file.create("MARK"))'),
    ("nested-in-namespaced-call", 'stats::median(file.create("MARK"))'),
    ("named-argument-call", 'score(x = file.create("MARK"))'),
    ("assign-arrow", 'x <- file.create("MARK")'),
    ("assign-equals", 'x = file.create("MARK")'),
    ("assign-right", 'file.create("MARK") -> x'),
    ("assign-super", 'score <<- function(x) file.create("MARK")'),
    ("assign-function", 'assign("x", file.create("MARK"))'),
    ("parenthesised-callee", "(score)(1)"),
    ("parenthesised-callee-call", '(score)(file.create("MARK"))'),
    ("parenthesised-call", '(file.create("MARK"))'),
    ("index-function", "score[[1]]"),
    ("index-then-call", 'score[[1]](file.create("MARK"))'),
    ("dollar", "score$x"),
    ("call-result-called", 'score(1)(file.create("MARK"))'),
    ("index-result", "score(1)[1]"),
    ("semicolon", 'score(1); file.create("MARK")'),
    ("newline", 'score(1)\nfile.create("MARK")'),
    ("crlf", 'score(1)\r\nfile.create("MARK")'),
    ("carriage-return", 'score(1)\rfile.create("MARK")'),
    ("comment-then-newline", 'score(1) #\nfile.create("MARK")'),
    ("comment-inside-call", 'add(1, # )\nfile.create("MARK"))'),
    ("hash-in-string", 'stats::median("#"); file.create("MARK")'),
    ("braces", '{score(1); file.create("MARK")}'),
    ("binary-operator", 'score(1) + file.create("MARK")'),
    ("arithmetic-argument", "score(1 + 1)"),
    ("unary-minus-call", 'score(-file.create("MARK"))'),
    ("if-statement", 'if (TRUE) file.create("MARK")'),
    ("native-pipe", '"MARK" |> file.create() |> score()'),
    ("function-argument", 'score(function() file.create("MARK"))'),
    ("lambda-argument", 'score(\\(x) file.create("MARK"))'),
    ("immediate-function", '(function() file.create("MARK"))()'),
    ("quote-argument", 'score(quote(file.create("MARK")))'),
    ("formula-argument", 'score(~file.create("MARK"))'),
    ("formula", 'y ~ file.create("MARK")'),
    ("dots", "score(...)"),
    ("dot-dot-1", "score(..1)"),
    ("backquoted-system", '`system`("touch MARK")'),
    ("backquoted-argument-call", 'score(`file.create`("MARK"))'),
    ("backquoted-assignment-operator", '`<-`(x, file.create("MARK"))'),
    ("homoglyph-cyrillic-s", "\u0455core(1)"),
    ("fullwidth-parentheses", "score\uff081\uff09"),
    ("zero-width-space", "score\u200b(1)"),
    ("environment-replacement", "environment(score) <- globalenv()"),
    ("body-replacement", 'body(score) <- quote(file.create("MARK"))'),
    ("formals-replacement", 'formals(add) <- alist(a = file.create("MARK"), b = 1)'),
    ("match-fun", 'match.fun("system")("touch MARK")'),
    ("recall", 'Recall(file.create("MARK"))'),
    ("sys-function", "sys.function()"),
    ("sys-function-argument", "score(sys.function())"),
    ("on-exit", 'on.exit(file.create("MARK"))'),
    ("library", "library(parallel)"),
    ("source-connection", 'source(textConnection("file.create(\'MARK\')"))'),
    ("sys-setenv", 'Sys.setenv(R_LIBS_USER = "MARK")'),
    ("options-error-handler", 'options(error = function() file.create("MARK"))'),
    ("setwd", 'setwd("/")'),
    ("quit", 'q("no")'),
    ("sapply-system", 'sapply("touch MARK", system)'),
    ("reg-finalizer", 'reg.finalizer(environment(), function(e) file.create("MARK"), TRUE)'),
    ("delayed-assign", 'delayedAssign("score", file.create("MARK"))'),
    ("active-binding", 'makeActiveBinding("v", function() file.create("MARK"), environment())'),
    ("trace", 'trace("score", quote(file.create("MARK")), print = FALSE)'),
    ("attach", 'attach(list(score = function(x) file.create("MARK")))'),
    ("is-function-of-call", 'is.function(file.create("MARK"))'),
    ("is-function-extra-argument", 'is.function(score, file.create("MARK"))'),
    ("not-listed-mean", "mean(1)"),
    ("not-listed-sys-getpid", "Sys.getpid()"),
    ("not-listed-stats-sd", "stats::sd(1)"),
    ("triple-colon-median", "stats:::median(1)"),
    ("bare-median", "median(1)"),
    ("other-namespace", "utils::median(1)"),
    ("namespaced-function-value", "stats::median"),
    ("unlisted-sourced-function", "unlisted()"),
    ("long-prefix", 'SPACESfile.create("MARK")'),
    ("long-gap-before-second-statement", 'score(1)SPACES; file.create("MARK")'),
    ("nul-before-allowed-call", 'file.create("MARK")\0score(1)'),
    ("invalid-utf8-argument", b"score(\xff)"),
    ("overlong-utf8-semicolon", b'score(1)\xc0\xbb file.create("MARK")'),
    ("invalid-hex-escape", "score('\\x')"),
    ("escaped-backslash-before-quote", "stats::median('\\\\'); file.create(\"MARK\"); #')"),
    ("quote-inside-other-quotes", "stats::median(\"'\"); file.create(\"MARK\"); #\")"),
    ("raw-string", "stats::median(r\"(')\"); file.create(\"MARK\"); #\")"),
]

# Cases that create their marker in unrestricted R (with the role's functions defined, and
# followed by the same add(1, 2) and score(1) the rgate test sends).
LIVE = frozenset({
    "system", "system2", "file-create", "get-system", "do-call-system", "do-call-listed-function",
    "base-double-colon", "base-triple-colon", "internal", "primitive", "eval-parse", "evalq", "local",
    "try-catch", "nested-call", "nested-system", "nested-assignment", "nested-named-argument",
    "nested-in-namespaced-call", "named-argument-call", "assign-arrow", "assign-equals", "assign-right",
    "assign-super", "assign-function", "parenthesised-callee-call", "parenthesised-call", "semicolon",
    "newline", "comment-then-newline", "comment-inside-call", "hash-in-string", "braces",
    "binary-operator", "unary-minus-call", "if-statement", "native-pipe", "immediate-function",
    "backquoted-system", "backquoted-argument-call", "backquoted-assignment-operator",
    "body-replacement", "match-fun", "source-connection", "sapply-system", "delayed-assign", "trace",
    "is-function-of-call", "is-function-extra-argument", "unlisted-sourced-function", "long-prefix",
    "long-gap-before-second-statement", "nul-before-allowed-call", "escaped-backslash-before-quote",
    "quote-inside-other-quotes", "raw-string",
})


@pytest.mark.parametrize("case, code", [pytest.param(c, code, id=c) for c, code in TEXT_ESCAPES])
def test_caller_escape_is_refused(site, login, case, code):
    conn = login("sam")
    marker = site.markers / case
    refused_eval(conn, with_marker(code, marker))
    assert conn.eval("add(1, 2)") == 3.0  # the same connection still serves
    assert conn.eval("score(1)") == 2.0  # with the role's own function
    assert not marker.exists(), f"{case}: the attempt ran (created {marker})"


def test_live_escapes_run_on_an_unrestricted_rserve(rserve, tmp_path):
    """Validates the corpus: each LIVE attempt creates its marker on a server without roles."""
    codes = dict(TEXT_ESCAPES)
    assert LIVE <= set(codes), LIVE - set(codes)
    setup = (
        "score <- function(x) sum(x) * 2; add <- function(a, b) a + b; "
        f"unlisted <- function() file.create('{tmp_path / 'unlisted-sourced-function'}')"
    )
    missing = []
    for case in sorted(LIVE):
        marker = tmp_path / case
        sock, _ = cs.open_qap(rserve.port)
        with sock:
            assert cs.eval_on(sock, setup).ok
            if cs.eval_on(sock, with_marker(codes[case], marker)) is not None:
                cs.eval_on(sock, "add(1, 2)")
                cs.eval_on(sock, "score(1)")
        if not marker.exists():
            missing.append(case)
    assert not missing, f"these attempts do not run even without roles: {missing}"


# ---------------------------------------------------------------------------------------
# Caller: escape attempts through other QAP1 messages (raw: no client sends these)


def _file_create(marker: Path) -> bytes:
    return cs.sexp_call(cs.sexp_symbol("file.create"), cs.sexp_strings(str(marker)))


def _set(name: str, value: bytes) -> tuple[int, bytes]:
    return cs.CMD_SET_SEXP, cs.set_sexp_payload(name, value)


# case -> (expected refusal text, builds (command, payload) from the marker path, R code sent
# after the refusal that would trigger a stored payload)
PROTOCOL_ESCAPES = {
    "void-eval-file-create": (EVAL_REFUSED, lambda m: (cs.CMD_VOID_EVAL, cs.string_param(f'file.create("{m}")')), []),
    "void-eval-second-statement": (
        EVAL_REFUSED, lambda m: (cs.CMD_VOID_EVAL, cs.string_param(f'add(1, 2); file.create("{m}")')), []),
    "sexp-eval-call": (CALL_OR_COMMAND_REFUSED, lambda m: (cs.CMD_EVAL, cs.sexp_param(_file_create(m))), []),
    "sexp-eval-nested-call": (
        CALL_OR_COMMAND_REFUSED, lambda m: (cs.CMD_EVAL, cs.sexp_param(cs.sexp_call(cs.sexp_symbol("score"), _file_create(m)))), []),
    "sexp-eval-expression-vector": (
        CALL_OR_COMMAND_REFUSED, lambda m: (cs.CMD_EVAL, cs.sexp_param(cs.sexp_expression(_file_create(m)))), []),
    "detached-void-eval": (
        CALL_OR_COMMAND_REFUSED, lambda m: (cs.CMD_DETACHED_VOID_EVAL, cs.string_param(f'file.create("{m}")')), []),
    "assign-sexp-replacement-target": (
        ASSIGN_REFUSED, lambda m: (cs.CMD_ASSIGN_SEXP, cs.set_sexp_payload(f'x[file.create("{m}")]', cs.sexp_doubles(1.0))), []),
    "assign-sexp-body-of-score": (
        ASSIGN_REFUSED, lambda m: (cs.CMD_ASSIGN_SEXP, cs.set_sexp_payload("body(score)", _file_create(m))), []),
    "set-sexp-call-value": (ASSIGN_REFUSED, lambda m: _set("x", _file_create(m)), ["x", "score(x)"]),
    "set-sexp-symbol-value": (ASSIGN_REFUSED, lambda m: _set("x", cs.sexp_symbol("system")), ["x", "score(x)"]),
    "set-sexp-list-holding-a-call": (
        ASSIGN_REFUSED, lambda m: _set("x", cs.sexp_list(cs.sexp_doubles(1.0), _file_create(m))), ["x", "score(x)"]),
    "set-sexp-attribute-holding-a-call": (
        ASSIGN_REFUSED, lambda m: _set("x", cs.sexp_doubles(1.0, attributes=cs.sexp_tagged([(_file_create(m), "a")]))),
        ["x", "score(x)"]),
    "set-sexp-formula": (
        ASSIGN_REFUSED,
        lambda m: _set("x", cs.sexp_call(cs.sexp_symbol("~"), _file_create(m),
                                         attributes=cs.sexp_tagged([(cs.sexp_strings("formula"), "class")]))),
        ["x", "score(x)"]),
    # S3 dispatch on a class reaches that class's methods: predict.lm -> model.frame evaluates a
    # formula string; format.bibentry -> Rd macros paste fields into code. Only inert classes pass.
    "set-sexp-lm-class": (
        ASSIGN_REFUSED,
        lambda m: _set("x", cs.sexp(
            cs.XT_VECTOR, cs.sexp_strings(f"~ file.create('{m}')"),
            cs.sexp_tagged([(cs.sexp_strings("terms"), "names"), (cs.sexp_strings("lm"), "class")]))),
        ["x", "stats::median(x)"]),
    "set-sexp-bibentry-class": (
        ASSIGN_REFUSED,
        lambda m: _set("x", cs.sexp(
            cs.XT_VECTOR, cs.sexp_strings(f'1"); file.create("{m}"); ("'),
            cs.sexp_tagged([(cs.sexp_strings("doi"), "names"), (cs.sexp_strings("bibentry"), "class")]))),
        ["x", "stats::median(x)"]),
    "set-sexp-unknown-attribute": (
        ASSIGN_REFUSED,
        lambda m: _set("x", cs.sexp_doubles(1.0, attributes=cs.sexp_tagged([(cs.sexp_strings(str(m)), "srcref")]))),
        ["x", "score(x)"]),
    "set-sexp-expression-vector": (ASSIGN_REFUSED, lambda m: _set("x", cs.sexp_expression(_file_create(m))), ["x", "score(x)"]),
    "set-sexp-closure": (
        ASSIGN_REFUSED, lambda m: _set("x", cs.sexp(cs.XT_CLOS, cs.sexp(cs.XT_LIST_TAG, b"") + _file_create(m))), ["x", "score(x)"]),
    "set-sexp-dot-Last": (ASSIGN_REFUSED, lambda m: _set(".Last", cs.sexp_strings(f"file.create('{m}')")), []),
    "set-sexp-dot-First": (ASSIGN_REFUSED, lambda m: _set(".First", cs.sexp_strings(f"file.create('{m}')")), []),
    "set-sexp-name-with-code": (ASSIGN_REFUSED, lambda m: _set(f'x; file.create("{m}")', cs.sexp_doubles(1.0)), []),
    "set-sexp-replacement-name": (ASSIGN_REFUSED, lambda m: _set("body(score)", cs.sexp_doubles(1.0)), []),
    "ser-eval": (COMMAND_REFUSED, lambda m: (cs.CMD_SER_EVAL, cs.r_serialize(f'quote(file.create("{m}"))')), []),
    "ser-eval-allowed-call": (COMMAND_REFUSED, lambda m: (cs.CMD_SER_EVAL, cs.r_serialize("quote(add(1, 2))")), []),
    "ser-assign": (
        COMMAND_REFUSED, lambda m: (cs.CMD_SER_ASSIGN, cs.r_serialize(f'list("x", quote(file.create("{m}")))')), ["x", "score(x)"]),
    "ser-ee": (COMMAND_REFUSED, lambda m: (cs.CMD_SER_EE, cs.r_serialize(f'quote(file.create("{m}"))')), []),
    "file-create": (COMMAND_REFUSED, lambda m: (cs.CMD_CREATE_FILE, cs.string_param(m.name)), []),
    "file-open": (COMMAND_REFUSED, lambda m: (cs.CMD_OPEN_FILE, cs.string_param("model.R")), []),
    "file-read": (COMMAND_REFUSED, lambda m: (cs.CMD_READ_FILE, b""), []),
    "file-write": (COMMAND_REFUSED, lambda m: (cs.CMD_WRITE_FILE, struct.pack("<I", cs.DT_BYTESTREAM | (4 << 8)) + b"data"), []),
    "file-close": (COMMAND_REFUSED, lambda m: (cs.CMD_CLOSE_FILE, b""), []),
    "file-remove": (COMMAND_REFUSED, lambda m: (cs.CMD_REMOVE_FILE, cs.string_param(m.name)), []),
}


@pytest.mark.parametrize("case", list(PROTOCOL_ESCAPES))
def test_caller_protocol_escape_is_refused(site, raw_login, case):
    pattern, build, followups = PROTOCOL_ESCAPES[case]
    marker = site.markers / f"protocol-{case}"
    sock = raw_login("sam")
    cmd, payload = build(marker)
    text = refusal_text(sock, cs.command(sock, cmd, payload))
    assert pattern.search(text), f"{case}: refusal does not say {pattern.pattern!r}: {text!r}"
    for code in followups:  # whatever a stored payload would trigger: it must not run
        assert cs.eval_on(sock, code) is not None, f"connection closed after {code!r}"
    assert_caller_serves(sock)
    assert not marker.exists(), f"{case}: the attempt ran (created {marker})"


def test_caller_inert_classes_are_data(site, raw_login):
    """Data frames, factors and dates keep their classes (their methods treat values as data)."""
    sock = raw_login("sam")
    frame = cs.sexp(
        cs.XT_VECTOR, cs.sexp_doubles(1.0, 2.0, 3.0),
        cs.sexp_tagged([
            (cs.sexp_strings("v"), "names"), (cs.sexp_strings("data.frame"), "class"),
            (cs.sexp_strings("a", "b", "c"), "row.names"),
        ]))
    resp = cs.command(sock, 0x020, cs.set_sexp_payload("df", frame))
    assert resp is not None and resp.ok, (resp, refusal_text(sock, resp) if resp is not None and resp.error else "")
    assert cs.eval_on(sock, "df").ok


# ---------------------------------------------------------------------------------------
# Caller: RSclient


@pytest.mark.usefixtures("rsclient_available")
def test_rsclient_caller(site, tmp_path):
    markers = [site.markers / f"rsclient-{i}" for i in range(1, 6)]
    run_r(tmp_path, r'''
port <- as.integer(args[1]); user <- args[2]; pw <- args[3]; m <- args[4:8]
c <- RS.connect(port = port); key <- RS.authkey(c)
check("rsa login", isTRUE(RS.login(c, user, pw, authkey = key)))
r <- try(RS.eval(c, bquote(file.create(.(m[1]))), lazy = FALSE), silent = TRUE)
check("RS.eval (serEval) refused", inherits(r, "try-error"), r)
r <- try(RS.eval(c, add(1, 2)), silent = TRUE)
check("RS.eval (serEval) refused for an allowed call too", inherits(r, "try-error"), r)
r <- try(RS.assign(c, "x", 1), silent = TRUE)
check("RS.assign (serAssign) refused", inherits(r, "try-error"), r)
r <- try(RS.eval.qap(c, bquote(file.create(.(m[2])))), silent = TRUE)
check("RS.eval.qap of a call not listed refused", inherits(r, "try-error"), r)
r <- try(RS.eval.qap(c, bquote(score(system(.(paste("touch", m[3])))))), silent = TRUE)
check("RS.eval.qap of a nested call refused", inherits(r, "try-error"), r)
r <- tryCatch(RS.eval.qap(c, quote(add(1, 2))), error = function(e) e)
check("RS.eval.qap of an allowed call: 3 or refused", identical(r, 3) || inherits(r, "error"), r)
r <- tryCatch(RS.eval.qap(c, paste0("file.create('", m[4], "')")), error = function(e) e)
check("RS.eval.qap of a string: not parsed", is.character(r) || inherits(r, "error"), r)
RS.close(c)
c <- RSconnect(port = port)
check("plain login", isTRUE(RSlogin(c, user, pw)))
r <- try(RSeval(c, bquote(file.create(.(m[5])))), silent = TRUE)
check("RSeval refused", inherits(r, "try-error"), r)
RSclose(c)
''', [str(site.port), "sam", password("sam"), *map(str, markers)], expect_checks=10)
    ran = [m.name for m in markers if m.exists()]
    assert not ran, f"RSclient attempts ran: {ran}"
