"""pyRserve 1.0.4 (unchanged, from PyPI) against rgate: values, errors, assignment, calls,
voidEval, OOB messages and session isolation. Where the expectation is a byte-level fact
about Rserve (status codes, golden bytes from notes §1.8) the test runs against both
servers, so that the real Rserve validates the test."""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from pyRserve.rexceptions import REvalError
from pyRserve.taggedContainers import AttrArray, TaggedArray, TaggedList

import clientsupport as cs

NA_REAL_BITS = 0x7FF00000000007A2
NAN_BITS = 0x7FF8000000000000
NA_INT = -(2**31)


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def is_r_na(x: float) -> bool:
    # R_IsNA: a NaN whose low word is 1954 (arithmetic may set the quiet bit)
    b = bits(x)
    return (b & 0x7FF0000000000000) == 0x7FF0000000000000 and (b & 0xFFFFFFFF) == 1954


# ---------------------------------------------------------------------------------------
# Handshake


def test_id_string_is_rserve_0103(server):
    sock, ident = cs.open_qap(server.port)
    sock.close()
    assert ident == cs.ID_STRING


# ---------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    "code, expected",
    [
        ("1L", 1),
        ("-7L", -7),
        ("2.5", 2.5),
        ("1e300", 1e300),
        ("TRUE", True),
        ("FALSE", False),
        ("'abc'", "abc"),
        ("''", ""),
        ("complex(real = 1, imaginary = -2)", 1 - 2j),
    ],
)
def test_scalars(conn, code, expected):
    value = conn.eval(code)
    assert value == expected and type(value) is type(expected), (code, value)


def test_integer_vector_with_na(conn):
    v = conn.eval("c(1L, NA, -3L, .Machine$integer.max)")
    assert isinstance(v, np.ndarray) and v.dtype == np.int32
    assert v.tolist() == [1, NA_INT, -3, 2**31 - 1]


def test_double_na_is_not_nan(conn):
    v = conn.eval("c(1.5, NA, NaN, Inf, -Inf, -0)")
    assert v.dtype == np.float64 and len(v) == 6
    assert v[0] == 1.5 and v[3] == np.inf and v[4] == -np.inf
    assert bits(v[1]) == NA_REAL_BITS, hex(bits(v[1]))
    assert bits(v[2]) == NAN_BITS, hex(bits(v[2]))
    assert is_r_na(v[1]) and not is_r_na(v[2])
    assert np.array_equal(np.isnan(v), [False, True, True, False, False, False])
    assert bits(v[5]) == 0x8000000000000000  # -0 keeps its sign


def test_arithmetic_na_keeps_its_payload(conn):
    # NA_real_ + 1 is still NA in R; the bits must pass through unchanged.
    v = conn.eval("c(NA_real_ + 1, NaN + 1, NA_real_ * 0)")
    assert [is_r_na(x) for x in v] == [True, False, True], [hex(bits(x)) for x in v]
    assert conn.eval("is.na(c(NA_real_ + 1, NaN + 1)) & !is.nan(c(NA_real_ + 1, NaN + 1))").tolist() == [True, False]


def test_logical_vector_with_na(conn):
    v = conn.eval("c(TRUE, NA, FALSE, TRUE)")
    assert list(v) == [True, None, False, True]


def test_string_vector_with_na_and_empty(conn):
    v = conn.eval("c('a', NA, '', 'héllo ✓', 'x y')")
    assert list(v) == ["a", None, "", "héllo ✓", "x y"]
    assert conn.eval("NA_character_") is None


def test_empty_vectors(conn):
    for code, dtype in [("integer(0)", np.int32), ("numeric(0)", np.float64)]:
        v = conn.eval(code)
        assert isinstance(v, np.ndarray) and v.dtype == dtype and len(v) == 0, (code, v)
    assert len(conn.eval("character(0)")) == 0
    assert conn.eval("list()") == []


def test_names(conn):
    v = conn.eval("c(a = 1, b = 2, 'c d' = NA)")
    assert isinstance(v, TaggedArray)
    assert v.keys() == ["a", "b", "c d"]
    assert v["a"] == 1.0 and v["b"] == 2.0 and is_r_na(v["c d"])
    li = conn.eval("list(x = 1L, 2L, z = 'q')")
    assert isinstance(li, TaggedList)
    assert li.keys == ["x", None, "z"] and li.values == [1, 2, "q"]  # pyRserve maps "" names to None


def test_factor(conn):
    v = conn.eval("factor(c('u', 'v', NA, 'u'), levels = c('v', 'u'))")
    assert isinstance(v, AttrArray)
    assert v.tolist() == [2, 1, NA_INT, 2]
    assert list(v.attr["levels"]) == ["v", "u"]
    assert list(v.attr["class"]) == ["factor"]


def test_matrix_is_column_major(conn):
    m = conn.eval("matrix(1:6, nrow = 2)")
    assert m.shape == (2, 3)
    assert m.tolist() == [[1, 3, 5], [2, 4, 6]]
    d = conn.eval("matrix(c(1.5, NA, 3, 4), 2, dimnames = list(c('r1', 'r2'), c('c1', 'c2')))")
    assert d.shape == (2, 2) and d[0, 1] == 3.0 and is_r_na(d[1, 0])
    dimnames = d.attr["dimnames"]
    assert [list(x) for x in dimnames] == [["r1", "r2"], ["c1", "c2"]]


def test_array_3d(conn):
    a = conn.eval("array(1:24, c(2, 3, 4))")
    assert a.shape == (2, 3, 4)
    for i, j, k in [(0, 0, 0), (1, 2, 3), (1, 0, 2), (0, 1, 1)]:
        assert a[i, j, k] == 1 + i + 2 * j + 6 * k
    assert conn.eval("array(1:24, c(2, 3, 4))[2, 3, 4]") == 24


def test_data_frame(conn):
    df = conn.eval("data.frame(x = 1:3, y = c('a', NA, 'c'), z = c(1.5, NA, 3), f = factor(c('p', 'q', 'p')))")
    assert isinstance(df, TaggedList)
    assert df.keys == ["x", "y", "z", "f"]
    assert df["x"].tolist() == [1, 2, 3]
    assert list(df["y"]) == ["a", None, "c"]
    assert df["z"][0] == 1.5 and is_r_na(df["z"][1])
    assert df["f"].tolist() == [1, 2, 1] and list(df["f"].attr["levels"]) == ["p", "q"]
    assert conn.eval("nrow(mtcars)") == 32
    cars = conn.eval("mtcars")
    assert len(cars.keys) == 11 and len(cars["mpg"]) == 32 and cars["mpg"][0] == 21.0


def test_nested_lists(conn):
    v = conn.eval("list(a = 1, b = list(c = 'x', d = list(e = TRUE, f = NULL)), 3:4)")
    assert v.keys == ["a", "b", None]  # pyRserve maps "" names to None
    inner = v["b"]
    assert inner.keys == ["c", "d"] and inner["c"] == "x"
    assert inner["d"].keys == ["e", "f"] and inner["d"]["e"] is True and inner["d"]["f"] is None
    assert v[2].tolist() == [3, 4]
    assert conn.eval("list(1L, 'x', NULL, list())") == [1, "x", None, []]


def test_null(conn):
    assert conn.eval("NULL") is None
    assert conn.eval("invisible(NULL)") is None
    assert conn.eval("list(NULL)") == [None]


def test_complex(conn):
    v = conn.eval("c(1+2i, -0.5-3i, complex(real = NA, imaginary = 0))")
    assert v.dtype == np.complex128
    assert v[0] == 1 + 2j and v[1] == -0.5 - 3j
    assert is_r_na(v[2].real)


def test_raw(conn):
    # pyRserve 1.0.4 returns the XT_RAW padding with the data, so compare the prefix, and a
    # length that needs no padding exactly.
    assert conn.eval("as.raw(c(1, 2, 255))")[:3] == b"\x01\x02\xff"
    assert conn.eval("as.raw(0:7)") == bytes(range(8))
    assert conn.eval("as.raw(c(0x41, 0x00, 0x42, 0xff))") == b"A\x00B\xff"


def test_utf8_strings(conn):
    assert conn.eval("'héllo ✓'") == "héllo ✓"
    assert conn.eval("nchar('héllo ✓')") == 7
    assert conn.eval("'日本語 😀'") == "日本語 😀"
    assert conn.eval("nchar('日本語 😀', type = 'chars')") == 5
    v = conn.eval("c('ключ' = 1)")
    assert v.keys() == ["ключ"]
    conn.r.s = "héllo ✓"
    assert conn.eval("nchar(s)") == 7
    assert conn.eval("Encoding(s) %in% c('UTF-8', 'unknown') && validUTF8(s)") is True
    assert conn.eval("paste0(s, '!')") == "héllo ✓!"


def test_long_double_vector_over_16_mib(conn):
    started = time.monotonic()
    v = conn.eval("as.numeric(1:1e7)")
    elapsed = time.monotonic() - started
    assert isinstance(v, np.ndarray) and v.dtype == np.float64
    assert len(v) == 10_000_000
    assert v[0] == 1.0 and v[12345] == 12346.0 and v[-1] == 1e7
    assert float(v.sum()) == 1e7 * (1e7 + 1) / 2
    # Real Rserve: ~0.15 s here. The debug build of rgate needs several seconds (reported).
    assert elapsed < 60, f"80 MB result took {elapsed:.1f}s"


def test_long_integer_vector_and_upload(conn):
    v = conn.eval("1:5e6")  # 20 MB: DT_LARGE and XT_LARGE headers
    assert v.dtype == np.int32 and len(v) == 5_000_000 and v[-1] == 5_000_000
    big = np.arange(3_000_000, dtype=np.float64)  # 24 MB upload through setSEXP
    conn.r.big = big
    assert conn.eval("length(big)") == 3_000_000
    assert conn.eval("sum(big)") == float(big.sum())
    assert conn.eval("big[2999999]") == 2_999_998.0


def test_multiple_expressions_return_the_last(conn):
    assert conn.eval("a <- 1; b <- 2\na + b") == 3.0
    assert conn.eval("1 + 1") == 2.0




@pytest.mark.parametrize("code", ["", "  \n", "# only a comment\n"])
def test_empty_code_is_an_empty_expression(server, request, code):
    resp = cs.raw_eval(server.port, code)
    assert resp.cmd == cs.RESP_OK and resp.payload == bytes.fromhex("0a040000 1a000000"), resp


def test_language_objects(conn):
    assert conn.eval("quote(f(x))") == ["f", "x"]
    assert conn.eval("as.name('foo')") == "foo"


# ---------------------------------------------------------------------------------------
# Errors


def test_r_error_message(conn):
    with pytest.raises(REvalError) as e:
        conn.eval("stop('boom')")
    assert "boom" in str(e.value)
    assert str(e.value).startswith("Error")
    assert conn.eval("1 + 1") == 2.0  # the connection survives


def test_error_inside_a_function(conn):
    conn.voidEval("f <- function() stop('inner failure')")
    with pytest.raises(REvalError) as e:
        conn.eval("f()")
    assert str(e.value) == "Error in f() : inner failure"


def test_geterrmessage_after_error(conn):
    with pytest.raises(REvalError):
        conn.eval("stop('boom2')")
    assert conn.eval("geterrmessage()") == "Error: boom2\n"
    conn.eval("invisible(try(stop('quiet'), silent = TRUE))")
    assert "quiet" in conn.eval("geterrmessage()")


def test_error_status_is_127(server):
    resp = cs.raw_eval(server.port, "stop('boom')")
    assert resp.cmd == 0x7F010002 and resp.payload == b"", resp


@pytest.mark.parametrize("code, status", [("x y", cs.STATUS_PARSE_ERROR), ("1+", cs.STATUS_PARSE_INCOMPLETE)])
def test_parse_error_status(server, code, status):
    resp = cs.raw_eval(server.port, code)
    assert resp.error and resp.status == status, resp


def test_parse_errors_raise(conn):
    for code in ["x y", "1 +", "f(", "'unterminated"]:
        with pytest.raises(REvalError):
            conn.eval(code)
        assert conn.eval("2 * 21") == 42.0


def test_warnings_are_not_errors(conn):
    assert np.isnan(conn.eval("suppressWarnings(log(-1))"))
    assert np.isnan(conn.eval("log(-1)"))
    assert conn.eval("as.integer('x')") == NA_INT


# ---------------------------------------------------------------------------------------
# Assignment from the client (CMD_setSEXP)


def test_assign_numpy_arrays(conn):
    conn.r.x = np.array([1.5, 2.5, np.nan])
    assert conn.eval("class(x)") == "numeric"
    assert conn.eval("sum(x, na.rm = TRUE)") == 4.0
    assert conn.eval("is.nan(x[3])") is True
    conn.r.i = np.array([1, 2, 3], dtype=np.int32)
    assert conn.eval("class(i)") == "integer" and conn.eval("sum(i)") == 6
    conn.r.b = np.array([True, False, True])
    assert conn.eval("class(b)") == "logical" and conn.eval("sum(b)") == 2
    conn.r.m = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert conn.eval("dim(m)").tolist() == [2, 3]
    assert conn.eval("m[2, 1]") == 4.0 and conn.eval("m[1, 3]") == 3.0


def test_assign_list_string_and_scalars(conn):
    conn.r.li = [1, "a", 2.5]
    assert conn.eval("class(li)") == "list" and conn.eval("length(li)") == 3
    assert conn.eval("li[[2]]") == "a"
    conn.r.s = "some text"
    assert conn.eval("toupper(s)") == "SOME TEXT"
    conn.r.n = 42
    assert conn.eval("n * 2") == 84
    conn.r.f = 0.25
    assert conn.eval("f * 4") == 1.0
    conn.r.t = True
    assert conn.eval("isTRUE(t)") is True
    conn.r.strs = np.array(["a", "b", "ü"])
    assert conn.eval("paste(strs, collapse = '')") == "abü"
    conn.r.tl = TaggedList([("k", 1), ("v", "x")])
    assert conn.eval("names(tl)").tolist() == ["k", "v"] and conn.eval("tl$v") == "x"


# ---------------------------------------------------------------------------------------
# Function calls through conn.r.fname(...)


def test_function_calls(conn):
    assert conn.r.sum(np.array([1.0, 2.0, 3.0])) == 6.0
    assert conn.r.paste("a", "b", sep="-") == "a-b"
    assert conn.r.rep("x", 3).tolist() == ["x", "x", "x"]
    assert conn.r.nchar("héllo ✓") == 7


def test_user_defined_function(conn):
    conn.voidEval("scale2 <- function(a, b = 2) a * b")
    assert conn.r.scale2(3) == 6.0
    assert conn.r.scale2(3, b=4) == 12.0
    assert conn.r.scale2(np.array([1.0, 2.0])).tolist() == [2.0, 4.0]
    conn.voidEval("fails <- function() stop('from a function')")
    with pytest.raises(REvalError) as e:
        conn.r.fails()
    assert "from a function" in str(e.value)


# ---------------------------------------------------------------------------------------
# voidEval


def test_void_eval(conn):
    assert conn.voidEval("z <- 40 + 2") is None
    assert conn.eval("z") == 42.0
    with pytest.raises(REvalError) as e:
        conn.voidEval("stop('void boom')")
    assert "void boom" in str(e.value)


def test_void_eval_reply_is_empty(server):
    sock, _ = cs.open_qap(server.port)
    with sock:
        sock.sendall(cs.message(cs.CMD_VOID_EVAL, cs.string_param("x <- 1:10")))
        resp = cs.read_response(sock)
        assert resp is not None and resp.cmd == cs.RESP_OK and resp.payload == b"" and resp.msg_id == 0, resp
        sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param("sum(x)")))
        resp = cs.read_response(sock)
        assert resp.cmd == cs.RESP_OK and resp.payload == bytes.fromhex("0a080000 20040000 37000000"), resp


# ---------------------------------------------------------------------------------------
# Out-of-band messages (self.oobSend / self.oobMessage, notes §1.11)


def test_oob_send_and_message(rgate, connect):
    received = []

    def callback(data, code=0):
        received.append((data, code))
        return ["reply", data]

    conn = connect(rgate.port, oobCallback=callback)
    assert conn.eval("self.oobSend(list('note', 1L)); 5") == 5.0
    assert received == [(["note", 1], 0)]
    received.clear()

    reply = conn.eval("self.oobMessage('question', 7L)")
    assert reply == ["reply", "question"]
    assert received == [("question", 7)]
    received.clear()

    # several OOB messages during one eval, the reply used by R code
    value = conn.eval(
        "for (i in 1:3) self.oobSend(i, 2L); r <- self.oobMessage(c(a = 1)); paste(class(r), length(r))"
    )
    assert value == "list 2"
    assert [(d, c) for d, c in received[:3]] == [(1, 2), (2, 2), (3, 2)]
    assert isinstance(received[3][0], TaggedArray) and received[3][0].keys() == ["a"]


def test_oob_message_with_default_callback(rgate, connect):
    conn = connect(rgate.port)
    assert conn.eval("is.null(self.oobMessage('x'))") is True


def test_oob_via_rserve_namespace(server, connect, request):
    received = []
    conn = connect(server.port, oobCallback=lambda data, code=0: received.append(data) or "ok")
    assert conn.eval("Rserve::self.oobSend(list('note', 1L)); 5") == 5.0
    assert conn.eval("Rserve::self.oobMessage('q')") == "ok"
    assert received == [["note", 1], "q"]
    # the other common form: library(Rserve) first, then the bare names
    assert conn.eval("suppressWarnings(library(Rserve)); self.oobSend('after library'); 6") == 6.0
    assert received[-1] == "after library"


def test_oob_callback_context_manager(rgate, connect):
    """pyRserve 1.0.4 also registers OOB handlers with `with OOBCallback(conn, fn):`."""
    from pyRserve.rconn import OOBCallback

    conn = connect(rgate.port)
    seen = []
    with OOBCallback(conn, lambda data, code=0: seen.append((data, code)) or data * 2):
        assert conn.eval("self.oobMessage(21L, 3L)") == 42
    assert seen == [(21, 3)]
    assert conn.eval("is.null(self.oobMessage('default handler again'))") is True


def test_sessions_run_concurrently(rgate, connect):
    """A long evaluation in one session does not hold up another session."""
    import threading

    slow, fast = connect(rgate.port), connect(rgate.port)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("slow", slow.eval("Sys.sleep(3); 'slow done'")))
    started = time.monotonic()
    t.start()
    assert fast.eval("'fast'") == "fast"
    assert time.monotonic() - started < 2.5
    t.join(timeout=30)
    assert result.get("slow") == "slow done"


# ---------------------------------------------------------------------------------------
# Sessions


def test_sessions_are_isolated(rgate, connect):
    a = connect(rgate.port)
    b = connect(rgate.port)
    a.voidEval("secret <- 'only in a'; library(stats4)")
    assert a.eval("exists('secret')") is True
    assert b.eval("exists('secret')") is False
    assert b.eval("'package:stats4' %in% search()") is False
    assert a.eval("Sys.getpid()") != b.eval("Sys.getpid()")
    c = connect(rgate.port)  # a later connection starts fresh too
    assert c.eval("exists('secret')") is False
    assert a.eval("secret") == "only in a"


def test_connection_state_persists(conn):
    conn.voidEval("counter <- 0")
    for _ in range(5):
        conn.voidEval("counter <- counter + 1")
    assert conn.eval("counter") == 5.0
