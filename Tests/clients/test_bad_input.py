"""Bad and unusual input over a raw socket (no client library). rgate must answer as Rserve
does where Rserve answers (notes §1.4-1.6), never hang where Rserve would, and keep
serving new connections after each case. These run against a private rgate so a crash
cannot disturb the other modules; the byte-level expectations that Rserve also meets are
checked against both servers."""
from __future__ import annotations

import random
import socket
import struct
import time

import pytest

import clientsupport as cs

HANG_LIMIT = 15.0  # seconds: longer than this without an answer counts as a hang


@pytest.fixture(scope="module")
def victim(log_dir):
    server = cs.start_rgate(log_dir, name="rgate-bad-input")
    try:
        yield server
    finally:
        leaked = server.stop()
        assert not leaked, f"leaked processes {leaked}"


@pytest.fixture
def target(request, victim):
    """The private rgate, or Rserve for the parametrised byte-level cases."""
    return victim if getattr(request, "param", "rgate") == "rgate" else request.getfixturevalue("rserve")


both = pytest.mark.parametrize("target", ["rgate", "rserve"], indirect=True)


def responses_until_close(sock: socket.socket, limit: float = HANG_LIMIT) -> list[cs.Response]:
    """Reads responses until the server closes; fails if it neither answers nor closes in time."""
    sock.settimeout(limit)
    out = []
    try:
        while True:
            resp = cs.read_response(sock)
            if resp is None:
                return out
            out.append(resp)
    except socket.timeout:
        pytest.fail(f"server hung: no answer and no close within {limit}s (got {out})")
    except ConnectionResetError:
        return out


def exact_header(resp: cs.Response, cmd: int) -> None:
    assert (resp.cmd, resp.msg_id, resp.payload) == (cmd, 0, b""), resp


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", id="http-request"),
        pytest.param(bytes(random.Random(1).randrange(256) for _ in range(4096)), id="random-4k"),
        pytest.param(b"\xff" * 64, id="all-ones"),
        pytest.param(b"\x00" * 64, id="all-zeros"),
        pytest.param(b"hello", id="short"),
    ],
)
def test_garbage_after_id_string(victim, garbage):
    sock, ident = cs.open_qap(victim.port)
    with sock:
        assert ident == cs.ID_STRING
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        for resp in responses_until_close(sock):
            # whatever comes back must be a well-formed error answer
            assert resp.error or resp.ok, resp
    cs.assert_serving(victim.port)


def test_two_to_the_forty_bytes_announced(victim):
    """A header announcing 2^40 payload bytes gets ERR_data_overflow at once (Rserve would wait
    to drain a terabyte first), and other clients are served meanwhile."""
    sock, _ = cs.open_qap(victim.port)
    with sock:
        started = time.monotonic()
        sock.sendall(struct.pack("<IIII", cs.CMD_EVAL, 0, 0, 1 << 8))  # len = 0 | (0x100 << 32)
        sock.settimeout(HANG_LIMIT)
        try:
            resp = cs.read_response(sock)
        except socket.timeout:
            pytest.fail(f"no answer to a 2^40-byte header within {HANG_LIMIT}s")
        assert resp is not None, "connection closed instead of RESP_ERR|ERR_data_overflow"
        exact_header(resp, cs.RESP_ERR | (cs.ERR_DATA_OVERFLOW << 24))
        assert time.monotonic() - started < HANG_LIMIT
        # the server keeps serving others while this connection is still open
        cs.assert_serving(victim.port)
        sock.sendall(b"\0" * 65536)  # some of the "payload": nothing must break
        cs.assert_serving(victim.port)
    cs.assert_serving(victim.port)


def test_oversized_serialized_command(victim):
    """The same for a CMD_serEval header (Rserve exempts 0xf? commands from maxinbuf)."""
    sock, _ = cs.open_qap(victim.port)
    with sock:
        sock.sendall(struct.pack("<IIII", cs.CMD_SER_EVAL, 0, 0, 1 << 8))
        sock.settimeout(HANG_LIMIT)
        resp = cs.read_response(sock)
        assert resp is not None
        exact_header(resp, cs.RESP_ERR | (cs.ERR_DATA_OVERFLOW << 24))
    cs.assert_serving(victim.port)


def test_just_over_the_limit(victim):
    """257 MiB announced (> --max-qap-message-size 256M): refused before any payload arrives."""
    sock, _ = cs.open_qap(victim.port)
    with sock:
        sock.sendall(cs.header(cs.CMD_EVAL, 257 << 20))
        sock.settimeout(HANG_LIMIT)
        resp = cs.read_response(sock)
        assert resp is not None
        exact_header(resp, cs.RESP_ERR | (cs.ERR_DATA_OVERFLOW << 24))
    cs.assert_serving(victim.port)


@both
@pytest.mark.parametrize("cmd", [0x7777, 0xDEADBEEF, 0x0FF, 0x40001, 0x434F7352])
def test_unknown_command(target, cmd):
    sock, _ = cs.open_qap(target.port)
    with sock:
        sock.sendall(cs.message(cmd, cs.string_param("1")))
        exact_header(cs.read_response(sock), cs.RESP_ERR | (cs.ERR_INV_CMD << 24))
        # the connection stays usable
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("6 * 7")))
        assert cs.read_response(sock).payload == bytes.fromhex("0a0c0000 21080000") + struct.pack("<d", 42.0)
    cs.assert_serving(target.port)


@both
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="no-params"),
        pytest.param(struct.pack("<Ii", cs.DT_INT | (4 << 8), 5), id="int-param"),
        pytest.param(struct.pack("<I", cs.DT_BYTESTREAM | (4 << 8)) + b"1+1\0", id="bytestream-param"),
    ],
)
def test_eval_with_invalid_params(target, payload):
    sock, _ = cs.open_qap(target.port)
    with sock:
        for cmd in (cs.CMD_EVAL, cs.CMD_VOID_EVAL):
            sock.sendall(cs.message(cmd, payload))
            exact_header(cs.read_response(sock), cs.RESP_ERR | (cs.ERR_INV_PAR << 24))
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("1L")))
        assert cs.read_response(sock).payload == bytes.fromhex("0a080000 20040000 01000000")
    cs.assert_serving(target.port)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(cs.header(cs.CMD_EVAL, 100) + b"\x04\x10\x00", id="payload-cut"),
        pytest.param(cs.header(cs.CMD_EVAL, 12)[:9], id="header-cut"),
        pytest.param(cs.header(cs.CMD_SET_SEXP, 1 << 20) + b"\x04" * 70000, id="large-payload-cut"),
        pytest.param(cs.header(cs.CMD_SER_EVAL, 64) + b"X\n", id="serialized-cut"),
    ],
)
def test_truncated_frame_then_close(victim, frame):
    sock, _ = cs.open_qap(victim.port)
    sock.sendall(frame)
    sock.close()
    cs.assert_serving(victim.port)


def test_truncated_frame_then_half_close_gets_no_hang(victim):
    sock, _ = cs.open_qap(victim.port)
    with sock:
        sock.sendall(cs.header(cs.CMD_EVAL, 100) + b"\x04\x10")
        sock.shutdown(socket.SHUT_WR)
        responses_until_close(sock)  # an error answer or a close, but no hang
    cs.assert_serving(victim.port)


def test_many_abrupt_clients(victim):
    """Connect-and-vanish clients (incl. RST instead of FIN) must not exhaust the server."""
    for i in range(20):
        sock, _ = cs.open_qap(victim.port)
        if i % 2:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("Sys.getpid()"))[: 5 + i])
        sock.close()
    cs.assert_serving(victim.port)


def test_undecodable_sexp(victim):
    """setSEXP / eval with a SEXP of an unknown XT type or inconsistent lengths: ERR_inv_par."""
    bad_sexps = [
        struct.pack("<I", 0x3F | (4 << 8)) + b"\0\0\0\0",  # XT type 63
        struct.pack("<I", 0x20 | (8 << 8)) + b"\1\0\0\0",  # XT_ARRAY_INT claiming 8 bytes, 4 present
        struct.pack("<I", 0x10 | (8 << 8)) + struct.pack("<I", 0x20 | (400 << 8)) + b"\0\0\0\0",  # nested overrun
    ]
    sock, _ = cs.open_qap(victim.port)
    with sock:
        for sexp in bad_sexps:
            param = struct.pack("<I", cs.DT_SEXP | (len(sexp) << 8)) + sexp
            sock.sendall(cs.message(cs.CMD_SET_SEXP, cs.string_param("v") + param))
            resp = cs.read_response(sock)
            assert resp is not None and resp.error and resp.status == cs.ERR_INV_PAR, (sexp.hex(), resp)
            sock.sendall(cs.message(cs.CMD_EVAL, param))
            resp = cs.read_response(sock)
            assert resp is not None and resp.error and resp.status == cs.ERR_INV_PAR, (sexp.hex(), resp)
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("exists('v')")))
        assert cs.read_response(sock).payload == bytes.fromhex("0a0c0000 24080000 01000000 00ffffff")
    cs.assert_serving(victim.port)


def test_garbage_serialized_eval_gets_an_answer(victim):
    """Rserve sends no response when unserialize() fails, hanging the client (notes §1.14);
    rgate answers with an error and the connection stays usable."""
    sock, _ = cs.open_qap(victim.port)
    with sock:
        sock.settimeout(HANG_LIMIT)
        sock.sendall(cs.message(cs.CMD_SER_EVAL, b"this is not R serialization"))
        resp = cs.read_response(sock)
        assert resp is not None and resp.error, resp
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("1L")))
        assert cs.read_response(sock).ok
    cs.assert_serving(victim.port)


# ---------------------------------------------------------------------------------------
# Parser tolerances that real clients rely on (notes §1.4): checked on both servers.


@both
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(struct.pack("<I", cs.DT_STRING | (3 << 8)) + b"1+1", id="no-nul-unaligned"),
        pytest.param(struct.pack("<I", cs.DT_STRING | (4 << 8)) + b"1+1\0" + b"\0", id="java-extra-byte"),
        pytest.param(struct.pack("<II", cs.DT_STRING | cs.DT_LARGE | (4 << 8), 0) + b"1+1\0", id="large-header"),
        pytest.param(struct.pack("<I", cs.DT_STRING | (8 << 8)) + b"1+1\0zzz\0", id="stops-at-nul"),
        pytest.param(struct.pack("<I", cs.DT_STRING | (4 << 8)) + b"1+1\0" + b"\0\0\0\0" + b"junk", id="zero-header-ends-params"),
    ],
)
def test_parameter_tolerance(target, payload):
    sock, _ = cs.open_qap(target.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_EVAL, payload))
        resp = cs.read_response(sock)
        assert resp.cmd == cs.RESP_OK and resp.payload == bytes.fromhex("0a0c0000 21080000") + struct.pack("<d", 2.0), resp


@both
def test_msg_id_is_not_echoed(target):
    sock, _ = cs.open_qap(target.port)
    with sock:
        sock.sendall(cs.header(cs.CMD_EVAL, 8, msg_id=1234) + cs.string_param("1L"))
        resp = cs.read_response(sock)
        assert resp.msg_id == 0 and resp.ok, resp
