"""Rserve's object-capability mode (qap.oc) on `--ocap-port`, driven by RSclient (the client that
speaks it): the capabilities are a caller role's allow-listed functions, calls take data only,
anything else is refused as Rserve does; with users, the only capability is login(user,
password), which returns the user's role's functions."""
from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path

import pytest

import clientsupport as cs

MODEL = """
score <- function(x) sum(x) * 2
add <- function(a, b) a + b
boom <- function() stop("boom from the role")
"""


def _site(tmp: Path, anonymous: str | None) -> Path:
    (tmp / "model.R").write_text(MODEL)
    users = tmp / "users"
    for name, role, pw in (("carol", "scorer", "carol pw"), ("ann", "analyst", "ann pw")):
        r = cs.rgate_cli("user", "add", name, "--role", role, "--users-file", str(users), stdin=f"{pw}\n".encode())
        assert r.returncode == 0, r
    lines = [
        "text_port: off", "qap_port: 0", "ocap_port: 0", f"users_file: {users}",
        f"anonymous_role: {anonymous or 'none'}", "login_delay: 0.01",
        "roles:", "  scorer:", "    base: caller", "    functions: [score, add, boom, stats::median]",
        f"    source: {tmp / 'model.R'}",
    ]
    config = tmp / "rgate.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ocap-open")
    server, listeners = cs.start_rgate_listeners(tmp / "logs", ("--config", str(_site(tmp, "scorer"))), name="rgate-ocap")
    try:
        yield server, listeners["ocap"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def login_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ocap-login")
    server, listeners = cs.start_rgate_listeners(tmp / "logs", ("--config", str(_site(tmp, None))), name="rgate-ocap-login")
    try:
        yield server, listeners["ocap"]
    finally:
        server.stop()


def _rsclient(script: str, tmp_path: Path) -> list[tuple[str, bool, str, str]]:
    out = cs.run_rscript(cs.R_PRELUDE + script, [], tmp_path)
    checks = cs.parse_checks(out.stdout)
    assert checks, out.stdout + out.stderr
    failed = [c for c in checks if not c[1]]
    assert not failed, (failed, out.stderr)
    return checks


def test_rsclient_gets_capabilities_and_calls_them(open_server, tmp_path):
    _, port = open_server
    checks = _rsclient(f'''
c <- RS.connect(port = {port})
caps <- attr(c, "capabilities")
same("names", names(caps), c("score", "add", "boom", "stats::median"))
check("OCref class", all(vapply(caps, inherits, NA, "OCref")))
same("add", RS.eval.qap(c, as.call(list(caps$add, 1, 2))), 3)
same("named", RS.eval.qap(c, as.call(list(caps$add, b = 10, a = 1L))), 11)
same("vector", RS.eval.qap(c, as.call(list(caps$score, c(1, 2, 3)))), 12)
same("namespaced", RS.eval.qap(c, as.call(list(caps[["stats::median"]], c(5, 1, 3)))), 3)
r <- try(RS.eval.qap(c, as.call(list(caps$boom))), silent = TRUE)
check("R error is status 0x7f", inherits(r, "try-error") && grepl("0x7f", r))
same("connection survives an R error", RS.eval.qap(c, as.call(list(caps$add, 2, 2))), 4)
r <- try(RS.eval.qap(c, as.call(list(caps$add, quote(Sys.getpid()), 0))), silent = TRUE)
check("a call as argument is refused", inherits(r, "try-error") && grepl("0x7f", r))
r <- try(RS.eval.qap(c, as.call(list(caps$add, function() 1, 0))), silent = TRUE)
check("a function as argument is refused", inherits(r, "try-error"))
same("still serving", RS.eval.qap(c, as.call(list(caps$add, 5, 5))), 10)
r <- try(RS.eval(c, file.create("/tmp/rgate-ocap-escape")), silent = TRUE)
check("serEval refused with 0x61", inherits(r, "try-error") && grepl("0x61", r))
check("no marker", !file.exists("/tmp/rgate-ocap-escape"))
''', tmp_path)
    assert len(checks) == 13


def test_tokens_are_per_connection_and_forged_ones_close(open_server, tmp_path):
    _, port = open_server
    _rsclient(f'''
a <- RS.connect(port = {port}); b <- RS.connect(port = {port})
ca <- attr(a, "capabilities"); cb <- attr(b, "capabilities")
check("fresh tokens", !identical(unclass(ca$add), unclass(cb$add)) && nchar(unclass(ca$add)) == 28)
r <- try(RS.eval.qap(b, as.call(list(ca$add, 1, 2))), silent = TRUE)
check("another connection's token is refused", inherits(r, "try-error"))
forged <- structure("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", class = "OCref")
r <- try(RS.eval.qap(a, as.call(list(forged, 1, 2))), silent = TRUE)
check("a forged token is refused", inherits(r, "try-error"))
''', tmp_path)


def test_raw_protocol_rules(open_server):
    """As Rserve: the first message is RsOC (no ID string); other commands get 0x61 and a
    close; replies echo the request's message id; a malformed call closes silently."""
    _, port = open_server
    with socket.create_connection((cs.HOST, port), timeout=30) as sock:
        head = cs.recv_exact(sock, 16)
        cmd, length, msg_id, _ = struct.unpack("<IIII", head)
        assert cmd == 0x434F7352 and msg_id == 0 and 16 <= length <= 65536, head
        cs.recv_exact(sock, length)
        sock.sendall(struct.pack("<IIII", cs.CMD_EVAL, 8, 0x55667788, 0) + cs.string_param("1+1"))
        reply = cs.recv_exact(sock, 16)
        assert reply == struct.pack("<IIII", 0x61000000 | 0x10002, 0, 0x55667788, 0), reply.hex()
        assert cs.connection_closed(sock)
    with socket.create_connection((cs.HOST, port), timeout=30) as sock:
        head = cs.recv_exact(sock, 16)
        cs.recv_exact(sock, struct.unpack("<IIII", head)[1])
        # DT_SEXP holding a list, not a call: closed without a reply.
        body = cs.sexp_param(cs.sexp_list(cs.sexp_doubles(1.0)))
        sock.sendall(struct.pack("<IIII", 0x00F, len(body), 7, 0) + body)
        assert cs.connection_closed(sock)


def test_login_capability(login_server, tmp_path):
    _, port = login_server
    _rsclient(f'''
c <- RS.connect(port = {port})
caps <- attr(c, "capabilities")
same("only login", names(caps), "login")
r <- try(RS.eval.qap(c, as.call(list(caps$login, "carol", "wrong"))), silent = TRUE)
check("wrong password refused", inherits(r, "try-error"))
fns <- RS.eval.qap(c, as.call(list(caps$login, "carol", "carol pw")))
same("role's functions", names(fns), c("score", "add", "boom", "stats::median"))
same("call after login", RS.eval.qap(c, as.call(list(fns$add, 20, 22))), 42)
r <- try(RS.eval.qap(c, as.call(list(caps$login, "carol", "carol pw"))), silent = TRUE)
check("login capability is spent", inherits(r, "try-error"))
RS.close(c)
c <- RS.connect(port = {port})
r <- try(RS.eval.qap(c, as.call(list(attr(c, "capabilities")$login, "ann", "ann pw"))), silent = TRUE)
check("an analyst gets no OCAP functions", inherits(r, "try-error"))
''', tmp_path)


@pytest.mark.parametrize("junk", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    struct.pack("<IIII", 0x00F, 0xFFFFFFF0, 0, 0x7FFFFFFF),  # a 2^63-byte OCcall
    struct.pack("<IIII", 0x12345678, 8, 0, 0) + b"\xff" * 8,  # an unknown command
    struct.pack("<IIII", 0x00F, 8, 0, 0) + b"\x0a\x04\x00\x00\xff\xff\xff\xff",  # DT_SEXP of an unknown XT
], ids=["http", "huge-length", "unknown-command", "bad-sexp"])
def test_garbage_on_the_ocap_port_closes_only_that_connection(open_server, tmp_path, junk):
    server, port = open_server
    with socket.create_connection((cs.HOST, port), timeout=30) as sock:
        head = cs.recv_exact(sock, 16)
        cs.recv_exact(sock, struct.unpack("<IIII", head)[1])
        try:
            sock.sendall(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # At most an error reply (0x4b, 0x61), then the end of the connection.
        sock.settimeout(15)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
        assert len(received) <= 16, received
        assert not received or struct.unpack("<I", received[:4])[0] & 0xFFFFFF == 0x10002, received
    # Everyone else is still served, on both ports.
    assert cs.raw_eval(server.port, "add(1, 1)").payload == cs.double_answer(2.0)
    _rsclient(f'''
c <- RS.connect(port = {port})
same("still serving", RS.eval.qap(c, as.call(list(attr(c, "capabilities")$add, 1, 1))), 2)
''', tmp_path)


def test_classed_arguments_are_refused(open_server, tmp_path):
    """S3 dispatch follows a class: only inert classes (data.frame, factor, Date...) may reach a
    capability; a class whose methods evaluate strings (lm, bibentry) is refused."""
    _, port = open_server
    _rsclient(f'''
c <- RS.connect(port = {port}); caps <- attr(c, "capabilities")
evil <- structure(list(terms = "~ file.create('/tmp/rgate-ocap-lm')"), class = "lm")
r <- try(RS.eval.qap(c, as.call(list(caps[["stats::median"]], evil))), silent = TRUE)
check("class lm refused", inherits(r, "try-error") && grepl("0x7f", r))
bib <- structure(list(doi = '1"); file.create("/tmp/rgate-ocap-bib"); ("'), class = "bibentry")
r <- try(RS.eval.qap(c, as.call(list(caps$add, bib, 1))), silent = TRUE)
check("class bibentry refused", inherits(r, "try-error"))
check("no markers", !file.exists("/tmp/rgate-ocap-lm") && !file.exists("/tmp/rgate-ocap-bib"))
same("plain data still passes", RS.eval.qap(c, as.call(list(caps$score, c(1, 2)))), 6)
''', tmp_path)
