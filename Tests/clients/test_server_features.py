"""Rserve features beyond eval: password login, shutdown, detach/attach, RSA key request,
control commands, encodings, files; and rgate's own limits. Each feature test runs against
rgate and a real Rserve configured the same way (the Rserve run validates the test).
Servers are private (started per test) where a test stops or reconfigures them."""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import socket
import struct
import subprocess
import time

import pytest

import clientsupport as cs

USER, PASSWORD = "alice", "s3cret pass"


def _crypt(password: str, salt: str) -> str:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), salt.encode())
    assert out and not out.startswith(b"*"), f"crypt() refused salt {salt!r}"
    return out.decode()


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "passwords"
    path.write_text(
        "# comment line\n"
        f"{USER} {PASSWORD}\n"
        f"bob ${hashlib.sha1(b'bobpw').hexdigest()}\n"
        f"carol ${hashlib.md5(b'carolpw').hexdigest()}\n"
    )
    return path


@pytest.fixture(params=["rgate", "rserve"])
def auth_server(request, start_server, password_file):
    if request.param == "rgate":
        return start_server("rgate", "--qap-password-file", str(password_file))
    return start_server("rserve", "auth=required", "plaintext=enable", f"pwdfile={password_file}")


def _login(port: int, user: str, secret: str) -> tuple[socket.socket, bytes, cs.Response | None]:
    sock, ident = cs.open_qap(port)
    sock.sendall(cs.message(cs.CMD_LOGIN, cs.string_param(f"{user}\n{secret}")))
    return sock, ident, cs.read_response(sock)


def _eval_works(sock: socket.socket) -> bool:
    sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("1L")))
    resp = cs.read_response(sock)
    return resp is not None and resp.payload == bytes.fromhex("0a080000 20040000 01000000")


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# ---------------------------------------------------------------------------------------
# Password login (notes §1.2, §1.10)


def test_id_string_announces_authentication(auth_server):
    sock, ident = cs.open_qap(auth_server.port)
    sock.close()
    assert ident[:16] == b"Rsrv0103QAP1\r\n\r\n"
    slots = [ident[i : i + 4] for i in range(16, 32, 4)]
    assert b"ARpt" in slots, ident
    if b"ARuc" in slots:  # crypt offered: the next slot carries K + 2 salt characters
        k = slots[slots.index(b"ARuc") + 1]
        assert k[:1] == b"K" and len(k) == 4, ident
    assert ident.endswith(b"\r\n")


def test_commands_before_login_are_refused(auth_server):
    sock, _ = cs.open_qap(auth_server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("Sys.getpid()")))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
        assert _closed(sock)


@pytest.mark.parametrize("user, secret", [(USER, "wrong"), ("mallory", PASSWORD), (USER, ""), ("bob", "carolpw")])
def test_wrong_login_is_refused_and_closed(auth_server, user, secret):
    sock, _, resp = _login(auth_server.port, user, secret)
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_ERR | (cs.ERR_AUTH_FAILED << 24), resp
        assert _closed(sock)
    sock, _, resp = _login(auth_server.port, USER, PASSWORD)  # the server still serves others
    with sock:
        assert resp is not None and resp.ok and _eval_works(sock), resp


@pytest.mark.parametrize(
    "cmd, param, rserve_status",
    [(0x005, "TLS", cs.ERR_DISABLED), (0x006, "rsa-authkey", None)],
    ids=["switch-TLS", "keyReq"],
)
def test_pre_auth_commands_keep_the_connection(auth_server, request, cmd, param, rserve_status):
    """CMD_switch and CMD_keyReq are processed before authentication (notes §1.2, §1.5): the
    client gets their own answer (TLS not enabled: 0x61; keyReq: the key, or 0x62 without
    RSA) and can still log in on the same connection."""
    sock, _ = cs.open_qap(auth_server.port)
    with sock:
        sock.sendall(cs.message(cmd, cs.string_param(param)))
        resp = cs.read_response(sock)
        assert resp is not None, "connection closed"
        assert resp.status != cs.ERR_AUTH_FAILED, resp
        if rserve_status is not None:
            assert resp.cmd == cs.RESP_ERR | (rserve_status << 24), resp
        else:
            assert resp.ok or resp.cmd == cs.RESP_ERR | (0x62 << 24), resp
        sock.sendall(cs.message(cs.CMD_LOGIN, cs.string_param(f"{USER}\n{PASSWORD}")))
        resp = cs.read_response(sock)
        assert resp is not None and resp.ok, resp
        assert _eval_works(sock)


def test_second_login_is_an_invalid_command(auth_server):
    sock, _, resp = _login(auth_server.port, USER, PASSWORD)
    with sock:
        assert resp.ok
        sock.sendall(cs.message(cs.CMD_LOGIN, cs.string_param(f"{USER}\n{PASSWORD}")))
        resp = cs.read_response(sock)
        assert resp.cmd == cs.RESP_ERR | (cs.ERR_INV_CMD << 24), resp
        assert _eval_works(sock)


@pytest.mark.parametrize("user, secret", [(USER, PASSWORD), ("bob", "bobpw"), ("carol", "carolpw"), (USER, PASSWORD + "\n")])
def test_plain_login(auth_server, user, secret):
    sock, _, resp = _login(auth_server.port, user, secret)
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_OK and resp.payload == b"", resp
        assert _eval_works(sock)


def test_crypt_login(auth_server, request):
    if auth_server.name.startswith("rserve"):
        request.applymarker(pytest.mark.xfail(
            reason="Rserve 1.8-11 (Debian 12) bug: passes the salt with a trailing space to crypt(), "
            "which libxcrypt rejects (notes §1.10; fixed in Rserve 1.8-12)", strict=False))
    sock, ident = cs.open_qap(auth_server.port)
    with sock:
        slots = [ident[i : i + 4] for i in range(16, 32, 4)]
        if b"ARuc" not in slots:
            pytest.skip("server does not offer crypt login")
        salt = slots[slots.index(b"ARuc") + 1][1:3].decode()
        sock.sendall(cs.message(cs.CMD_LOGIN, cs.string_param(f"{USER}\n{_crypt(PASSWORD, salt)}")))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
        assert _eval_works(sock)


def test_login_without_password_file_always_succeeds(server):
    sock, _, resp = _login(server.port, "anyone", "anything")
    with sock:
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
        assert _eval_works(sock)


def test_pyrserve_against_auth_server_gets_a_clear_error(auth_server):
    """pyRserve cannot log in (pyRserve#4): it must get an error, not a hang."""
    from pyRserve.rexceptions import PyRserveError

    conn = cs.pyrserve_connect(auth_server.port)
    try:
        with pytest.raises((PyRserveError, OSError)):
            conn.eval("1")
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# RSA secure login (RSclient's RS.login; notes §1.10)


@pytest.mark.usefixtures("rsclient_available")
def test_rsclient_rsa_login(auth_server, tmp_path, request):
    script = cs.R_PRELUDE + f'''
c <- RS.connect(port = {auth_server.port})
key <- RS.authkey(c)
check("authkey", is.raw(key) && length(key) > 300, length(key))
ok <- RS.login(c, "{USER}", "{PASSWORD}", authkey = key)
check("login", isTRUE(ok) || is.null(ok), ok)
same("eval", RS.eval(c, 1 + 1), 2)
RS.close(c)
c <- RS.connect(port = {auth_server.port})
key <- RS.authkey(c)
bad <- try(RS.login(c, "{USER}", "not-the-password", authkey = key), silent = TRUE)
check("wrong password refused", inherits(bad, "try-error"), class(bad))
'''
    result = cs.run_rscript(script, [], tmp_path)
    checks = cs.parse_checks(result.stdout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(checks) == 4 and all(c[1] for c in checks), checks


# ---------------------------------------------------------------------------------------
# Shutdown (notes §1.5, §2.1.5)


def test_shutdown_disabled_by_default(rgate):
    """rgate refuses CMD_shutdown unless --allow-shutdown (Rserve's `shutdown disable` answer)."""
    sock, _ = cs.open_qap(rgate.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_SHUTDOWN))
        resp = cs.read_response(sock)
        assert resp.cmd == cs.RESP_ERR | (cs.ERR_DISABLED << 24), resp
        assert _eval_works(sock)
    cs.assert_serving(rgate.port)


@pytest.mark.parametrize("kind", ["rgate", "rserve"])
def test_shutdown_with_pyrserve(start_server, kind):
    server = start_server("rgate", "--allow-shutdown") if kind == "rgate" else start_server("rserve")
    survivor = cs.pyrserve_connect(server.port)  # an existing session
    conn = cs.pyrserve_connect(server.port)
    conn.shutdown()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind} still running 30 s after CMD_shutdown")
    with pytest.raises(OSError):
        cs.open_qap(server.port, timeout=5)
    if not survivor.isClosed:
        survivor.close()


@pytest.mark.parametrize("kind", ["rgate", "rserve"])
def test_shutdown_answer(start_server, kind):
    server = start_server("rgate", "--allow-shutdown") if kind == "rgate" else start_server("rserve")
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_SHUTDOWN))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
    server.proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------
# Detach / attach (notes §1.13)


def _attach(detach_payload: bytes) -> socket.socket:
    assert len(detach_payload) == 44, detach_payload.hex(" ")
    (h1, port, h2) = struct.unpack("<III", detach_payload[:12])
    key = detach_payload[12:]
    assert h1 == cs.DT_INT | (4 << 8) and h2 == cs.DT_BYTESTREAM | (32 << 8), detach_payload.hex(" ")
    sock = socket.create_connection((cs.HOST, port), timeout=cs.IO_TIMEOUT)
    sock.sendall(key)
    return sock


def test_detach_and_attach(server):
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_VOID_EVAL, cs.string_param("kept <- 'still here'; pid <- Sys.getpid()")))
        assert cs.read_response(sock).ok
        sock.sendall(cs.message(cs.CMD_DETACH_SESSION))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
        assert _closed(sock)
    attached = _attach(resp.payload)
    with attached:
        hello = cs.read_response(attached)  # RESP_OK, no ID string
        assert hello is not None and hello.cmd == cs.RESP_OK and hello.payload == b"", hello
        attached.sendall(cs.message(cs.CMD_EVAL, cs.string_param("paste(kept, pid == Sys.getpid())")))
        resp = cs.read_response(attached)
        assert resp.ok and b"still here TRUE" in resp.payload, resp


def test_attach_with_wrong_key_is_refused(server):
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_DETACH_SESSION))
        resp = cs.read_response(sock)
        assert resp is not None and resp.ok, resp
    bad = bytearray(resp.payload)
    bad[20] ^= 0xFF
    wrong = _attach(bytes(bad))
    with wrong:
        wrong.settimeout(10)
        try:
            assert wrong.recv(16) == b"", "a wrong key must not attach"
        except (ConnectionResetError, socket.timeout):
            pass
    right = _attach(resp.payload)  # the right key still works afterwards... or the session is gone
    with right:
        right.settimeout(10)
        try:
            hello = cs.read_response(right)
        except (ConnectionResetError, socket.timeout):
            hello = None
        if hello is not None:
            assert hello.cmd == cs.RESP_OK


def test_detached_void_eval(server):
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(0x031, cs.string_param("answer <- 6 * 7")))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK, resp
    attached = _attach(resp.payload)
    with attached:
        result = cs.read_response(attached)  # the eval's own RESP_OK
        assert result is not None and result.cmd == cs.RESP_OK, result
        attached.sendall(cs.message(cs.CMD_EVAL, cs.string_param("answer")))
        resp = cs.read_response(attached)
        assert resp.payload == bytes.fromhex("0a0c0000 21080000") + struct.pack("<d", 42.0), resp


@pytest.mark.parametrize("code", ["q('no')", "quit(save = 'no', status = 3)"])
def test_quit_ends_only_that_session(server, code):
    """q() in a session: the client sees the connection close, without an answer; the
    server goes on serving."""
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param(code)))
        sock.settimeout(15)
        assert cs.read_response(sock) is None
    cs.assert_serving(server.port)


# ---------------------------------------------------------------------------------------
# Small commands (notes §1.5)


def _command(port: int, cmd: int, payload: bytes = b"") -> cs.Response:
    sock, _ = cs.open_qap(port)
    with sock:
        sock.sendall(cs.message(cmd, payload))
        resp = cs.read_response(sock)
        assert _eval_works(sock)
    return resp


@pytest.mark.parametrize("cmd", [0x042, 0x045, 0x044])
def test_control_commands_are_unsupported(server, cmd):
    resp = _command(server.port, cmd, cs.string_param("1") if cmd != 0x044 else b"")
    assert resp.cmd == cs.RESP_ERR | (cs.ERR_UNSUPPORTED << 24), resp


@pytest.mark.parametrize("name, ok", [("utf8", True), ("latin1", True), ("native", True), ("klingon", False)])
def test_set_encoding(server, name, ok):
    resp = _command(server.port, 0x082, cs.string_param(name))
    assert resp.cmd == (cs.RESP_OK if ok else cs.RESP_ERR | (cs.ERR_INV_PAR << 24)), resp


def test_set_buffer_size(server):
    resp = _command(server.port, 0x081, struct.pack("<Ii", cs.DT_INT | (4 << 8), 1 << 20))
    assert resp.cmd == cs.RESP_OK, resp


def test_file_commands(server):
    sock, _ = cs.open_qap(server.port)
    with sock:
        def cmd(c, payload=b""):
            sock.sendall(cs.message(c, payload))
            return cs.read_response(sock)

        assert cmd(0x011, cs.string_param("f.txt")).ok  # createFile
        data = b"line one\nline two\n\x00\xff"
        assert cmd(0x014, struct.pack("<I", cs.DT_BYTESTREAM | (len(data) << 8)) + data).ok  # writeFile
        assert cmd(0x012).ok  # closeFile
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("readLines('f.txt', 2)")))
        assert b"line two" in cs.read_response(sock).payload
        assert cmd(0x010, cs.string_param("f.txt")).ok  # openFile
        got = cmd(0x013, struct.pack("<Ii", cs.DT_INT | (4 << 8), 5))  # readFile 5 bytes, raw payload
        assert got.ok and got.payload == data[:5], got
        got = cmd(0x013)
        assert got.ok and got.payload == data[5:], got
        got = cmd(0x013)
        assert got.ok and got.payload == b"", got  # EOF
        assert cmd(0x012).ok
        resp = cmd(0x013)
        assert resp.cmd == cs.RESP_ERR | (0x47 << 24), resp  # not open
        assert cmd(0x010, cs.string_param("no-such-file")).cmd == cs.RESP_ERR | (0x46 << 24)
        assert cmd(0x015, cs.string_param("f.txt")).ok  # removeFile
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("file.exists('f.txt')")))
        assert cs.read_response(sock).payload == bytes.fromhex("0a0c0000 24080000 01000000 00ffffff")


# ---------------------------------------------------------------------------------------
# rgate's own limits (improvements over Rserve, README "Security model")


def test_eval_timeout(start_server, connect):
    from pyRserve.rexceptions import REvalError

    server = start_server("rgate", "--eval-timeout", "1")
    conn = connect(server.port)
    started = time.monotonic()
    with pytest.raises(REvalError) as e:
        conn.eval("Sys.sleep(30); 1")
    assert time.monotonic() - started < 15
    assert "limit of 1 s" in str(e.value) or "time" in str(e.value).lower(), str(e.value)
    assert conn.eval("2L") == 2  # the session survives an interrupted evaluation


def test_idle_timeout_closes_quiet_connections(start_server):
    server = start_server("rgate", "--idle-timeout", "1")
    sock, _ = cs.open_qap(server.port)
    with sock:
        assert _closed(sock)  # closed by the server after ~1 s of silence
    cs.assert_serving(server.port)
