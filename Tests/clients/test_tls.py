"""QAP1 over TLS (Rserve's tls.port): RSclient's RS.connect(tls = TRUE) and Python's ssl module
against `rgate serve --tls-port`, with a CA, a server certificate and a client certificate
made here with openssl; plus the failures: plain TCP on the TLS port, a wrong CA, a missing
client certificate. The server must keep serving everyone else."""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

import clientsupport as cs

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make test certificates")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, both signed by it."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=rgate test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    # A second, unrelated CA: its certificates must not be accepted.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem",
             "-days", "2", "-subj", "/CN=someone else", cwd=d)
    return d


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, pki):
    log_dir = tmp_path_factory.mktemp("tls-logs")
    audit = log_dir / "audit.log"
    server, listeners = cs.start_rgate_listeners(
        log_dir,
        ("--text-port", "off", "--qap-port", "0", "--tls-port", "0",
         "--tls-cert-file", str(pki / "server.pem"), "--tls-key-file", str(pki / "server.key"),
         "--audit-log", str(audit)),
        name="rgate-tls",
    )
    try:
        yield server, listeners["qap1-tls"], audit
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory, pki):
    log_dir = tmp_path_factory.mktemp("mtls-logs")
    server, listeners = cs.start_rgate_listeners(
        log_dir,
        ("--text-port", "off", "--qap-port", "0", "--tls-port", "0",
         "--tls-cert-file", str(pki / "server.pem"), "--tls-key-file", str(pki / "server.key"),
         "--tls-client-ca-file", str(pki / "ca.pem")),
        name="rgate-mtls",
    )
    try:
        yield server, listeners["qap1-tls"]
    finally:
        server.stop()


def _tls_connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((cs.HOST, port), timeout=cs.IO_TIMEOUT)
    return context.wrap_socket(raw, server_hostname="localhost")


def _client_context(pki: Path, cert: bool = False, ca: str = "ca.pem") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / ca))
    if cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return context


def test_python_ssl_client_gets_the_id_string_and_evaluates(tls_server, pki):
    _, port, _ = tls_server
    with _tls_connect(port, _client_context(pki)) as sock:
        ident = cs.recv_exact(sock, 32)
        assert ident.startswith(b"Rsrv0103QAP1"), ident
        resp = cs.eval_on(sock, "Sys.getpid() > 0 && 6 * 7 == 42")
        assert resp is not None and resp.ok, resp
        resp = cs.eval_on(sock, "sum(1:10) * 1.0")
        assert resp.payload == cs.double_answer(55.0)


def test_large_results_cross_the_relay_intact(tls_server, pki):
    """A 16 MB result (more than any buffer on the way) arrives complete and in order."""
    _, port, _ = tls_server
    with _tls_connect(port, _client_context(pki)) as sock:
        cs.recv_exact(sock, 32)
        resp = cs.eval_on(sock, "as.double(seq_len(2e6))")
        assert resp is not None and resp.ok, resp
        import struct
        body = resp.payload
        values = struct.unpack_from("<2000000d", body, len(body) - 16_000_000)
        assert values[0] == 1.0 and values[-1] == 2e6 and values[123456] == 123457.0


def test_rsclient_connects_with_tls(tls_server, pki, tmp_path):
    _, port, _ = tls_server
    script = cs.R_PRELUDE + f'''
c <- RS.connect(port = {port}, tls = TRUE, ca = "{pki / 'ca.pem'}")
same("eval", RS.eval(c, 6 * 7), 42)
same("string", RS.eval(c, paste("a", "b")), "a b")
RS.close(c)
c <- RS.connect(port = {port}, tls = TRUE, verify = FALSE)
same("unverified", RS.eval(c, sum(1:10)), 55L)
RS.close(c)
r <- try(RS.connect(port = {port}, tls = TRUE, ca = "{pki / 'other.pem'}"), silent = TRUE)
check("wrong CA refused", inherits(r, "try-error"))
'''
    out = cs.run_rscript(script, [], tmp_path)
    checks = cs.parse_checks(out.stdout)
    assert checks, out.stdout + out.stderr
    failed = [c for c in checks if not c[1]]
    assert not failed, (failed, out.stderr)
    assert len(checks) == 4


def test_plain_tcp_on_the_tls_port_gets_no_session(tls_server, pki):
    server, port, _ = tls_server
    with socket.create_connection((cs.HOST, port), timeout=cs.IO_TIMEOUT) as sock:
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("1+1")))
        sock.settimeout(10)
        data = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"Rsrv" not in data, data  # no plaintext ID string, no session
    cs.assert_serving(server.port)
    with _tls_connect(port, _client_context(pki)) as sock:  # TLS still fine
        cs.recv_exact(sock, 32)
        assert cs.eval_on(sock, "1").ok


def test_client_certificate_is_required_when_configured(mtls_server, pki):
    _, port = mtls_server
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError)):
        with _tls_connect(port, _client_context(pki)) as sock:
            # TLS 1.3 reports the missing certificate on the first read.
            sock.settimeout(10)
            assert cs.recv_exact(sock, 32) == b""
    with _tls_connect(port, _client_context(pki, cert=True)) as sock:
        assert cs.recv_exact(sock, 32).startswith(b"Rsrv")
        assert cs.eval_on(sock, "2 + 2").payload == cs.double_answer(4.0)


def test_tls_sessions_are_audited_with_the_client_address(tls_server, pki):
    _, port, audit = tls_server
    with _tls_connect(port, _client_context(pki)) as sock:
        local_port = sock.getsockname()[1]
        cs.recv_exact(sock, 32)
        assert cs.eval_on(sock, "1+1").ok
    line = cs.wait_for_audit(audit, lambda l: l.get("event") == "session end" and l.get("peer") == f"127.0.0.1:{local_port}")
    assert line["protocol"] == "qap1"
    start = [l for l in cs.read_audit(audit) if l.get("event") == "session start" and l.get("peer") == f"127.0.0.1:{local_port}"]
    assert start, "no session start line with the TLS client's address"


def _switch(port: int, pki: Path) -> ssl.SSLSocket:
    """Connects in clear, asks for CMD_switch "TLS", and continues inside TLS (as Rserve's
    switch.qap.tls): the reply to the switch is a clear RESP_OK, then the handshake."""
    sock = socket.create_connection((cs.HOST, port), timeout=cs.IO_TIMEOUT)
    ident = cs.recv_exact(sock, 32)
    assert b"TLS\n" in ident[16:], ident  # switching is announced in the ID string
    sock.sendall(cs.message(0x005, cs.string_param("TLS")))
    resp = cs.read_response(sock)
    assert resp is not None and resp.cmd == cs.RESP_OK and not resp.payload, resp
    return _client_context(pki).wrap_socket(sock, server_hostname="localhost")


def test_in_band_switch_to_tls(tls_server, pki):
    server, _, _ = tls_server
    with _switch(server.port, pki) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert cs.eval_on(tls, "6 * 7").payload == cs.double_answer(42.0)
        # A second switch inside TLS is refused; the session goes on.
        tls.sendall(cs.message(0x005, cs.string_param("TLS")))
        resp = cs.read_response(tls)
        assert resp.cmd == cs.RESP_ERR | (cs.ERR_DISABLED << 24), resp
        assert cs.eval_on(tls, "1 + 1").payload == cs.double_answer(2.0)


def test_switch_errors_keep_the_connection(tls_server):
    server, _, _ = tls_server
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(0x005, cs.string_param("tls")))  # case-sensitive, as Rserve
        assert cs.read_response(sock).cmd == cs.RESP_ERR | (0x49 << 24)
        sock.sendall(cs.message(0x005))
        assert cs.read_response(sock).cmd == cs.RESP_ERR | (0x44 << 24)
        assert cs.eval_on(sock, "3").payload == cs.double_answer(3.0)


def test_rsclient_switch(tls_server, pki, tmp_path):
    """Debian's RS.switch() passes too few arguments to its C function (it crashes); the C
    entry point itself is what RSclient users call."""
    server, _, _ = tls_server
    checks = _rsclient_checks(f'''
c <- RS.connect(port = {server.port})
.Call(RSclient:::RS_switch, c, "TLS", TRUE, NULL, NULL, "{pki / 'ca.pem'}")
same("eval inside TLS", RS.eval(c, 6 * 7), 42)
RS.close(c)
''', tmp_path)
    assert len(checks) == 1


def _rsclient_checks(script: str, tmp_path: Path) -> list:
    out = cs.run_rscript(cs.R_PRELUDE + script, [], tmp_path)
    checks = cs.parse_checks(out.stdout)
    assert checks and all(c[1] for c in checks), (checks, out.stdout, out.stderr)
    return checks
