"""Differential: the same expressions through pyRserve against a real Rserve and against
rgate must decode to equal Python values (numpy class, dtype, shape, attributes, names,
float bits incl. NA vs NaN positions). Differences are listed at the end of the run
(see conftest.pytest_terminal_summary) and fail their test unless marked below."""
from __future__ import annotations

import numpy as np
import pytest
from pyRserve.rexceptions import REvalError, RResponseError

import clientsupport as cs


DEVIATION_INTERACTIVE = (
    "deliberate deviation (README, QAP1 differences table): rgate runs R with R_Interactive = FALSE (REngine's 'safe "
    "settings'), Rserve defaults to `interactive yes` (notes §2.1/§2.2), so interactive() and everything "
    "that depends on it (options('keep.source'), srcrefs on functions, menu()/readline() behaviour) differ"
)


# (id, R code, marks)
EXPRESSIONS = [
    ("int", "1L", ()),
    ("int-na", "c(1L, NA, -5L, .Machine$integer.max)", ()),
    ("double-na-nan", "c(1.5, NA, NaN, Inf, -Inf, -0)", ()),
    ("double-arith-na", "c(NA_real_ + 1, NaN * 2, NA_real_ * 0)", ()),
    ("logical-na", "c(TRUE, FALSE, NA)", ()),
    ("string-na", "c('a', NA, '', 'héllo ✓', '日本語 😀')", ()),
    ("string-na-scalar", "NA_character_", ()),
    ("null", "NULL", ()),
    ("list-unnamed", "list(1L, 'x', NULL, list())", ()),
    ("list-nested", "list(a = 1, b = list(c = 'x', d = 2:3, e = list(f = TRUE)))", ()),
    ("list-null-member", "list(a = NULL)", ()),
    ("named-double", "c(a = 1, b = 2, 'c d' = NA)", ()),
    ("factor", "factor(c('u', 'v', 'u', NA))", ()),
    ("matrix-int", "matrix(1:6, 2)", ()),
    ("matrix-dimnames", "matrix(c(1.5, NA, 3, 4), 2, dimnames = list(c('r1', 'r2'), c('c1', 'c2')))", ()),
    ("array-3d", "array(1:24, c(2, 3, 4))", ()),
    ("data-frame", "data.frame(x = 1:3, y = c('a', 'b', NA), z = c(1.5, NA, 3), stringsAsFactors = TRUE)", ()),
    ("data-frame-mtcars", "head(mtcars, 3)", ()),
    ("complex", "complex(real = c(1, NA, -0.5), imaginary = c(-2, 0, 3))", ()),
    ("raw", "as.raw(c(0:6, 255))", ()),
    ("empty-character", "character(0)", ()),
    ("empty-integer", "integer(0)", ()),
    ("empty-list", "list()", ()),
    ("call", "quote(f(x, y = 1))", ()),
    ("symbol", "as.name('foo')", ()),
    ("expression", "expression(1 + 2)", ()),
    ("formula", "y ~ x + z", ()),
    ("date", "as.Date('2024-01-02')", ()),
    ("posixct", "as.POSIXct('2024-01-02 03:04:05', tz = 'UTC')", ()),
    ("attributes-class", "structure(1:3, myattr = 'hello', class = 'myclass')", ()),
    ("table", "table(c('a', 'b', 'a'))", ()),
    ("pairlist", "pairlist(a = 1, 2)", ()),
    ("closure", "function(x, y = 2) x + y", ()),
    ("environment", "new.env()", ()),
    ("builtin", "sum", ()),
    ("summary", "summary(c(1, 5, 9))", ()),
    ("s4", "{ setClass('P', representation(x = 'numeric')); new('P', x = 1) }", ()),
    ("letters", "letters", ()),
    ("utf8-names", "c('ключ' = 1L, 'é' = 2L)", ()),
    ("fresh-globalenv", "ls(all.names = TRUE)", ()),
    ("fresh-geterrmessage", "geterrmessage()", ()),
    ("fresh-last-warning", "names(warnings())", ()),
    ("interactive", "interactive()", (cs.deviation(DEVIATION_INTERACTIVE),)),
    ("keep-source", "getOption('keep.source')", (cs.deviation(DEVIATION_INTERACTIVE),)),
    ("utf8-locale", "l10n_info()[['UTF-8']]", ()),
    ("multi-expression", "a <- 1; b <- 2\na + b", ()),
    ("empty-code", "", ()),
    ("comment-only", "# nothing\n", ()),
    ("print-returns-value", "print(1:3)", ()),
    ("invisible", "invisible(5)", ()),
    ("warning-then-value", "warning('careful'); 7", ()),
    ("message-cat-then-value", "message('to stderr'); cat('to stdout\\n'); 8", ()),
    ("last-warning-kept", "f <- function() { warning('w1'); 1 }; f(); names(warnings())", ()),
    ("large-int", "1:2e6", ()),
    ("large-double-over-16MiB", "as.numeric(1:2.2e6) / 3", ()),
    ("large-list", "list(a = 1:5e6, b = 'x')", ()),
]

ERRORS = [
    ("stop", "stop('boom')"),
    ("stop-in-function", "f <- function() stop('inner failure'); f()"),
    ("missing-object", "no_such_object"),
    ("missing-function", "no_such_function(1)"),
    ("bad-arg", "log('a')"),
    ("long-message", "g <- function(argument) stop('a long message that is wider than the console so R may wrap it')\ng(1)"),
    ("warning-as-error", "options(warn = 2); as.integer('x')"),
]

PARSE_ERRORS = ["x y", "1 +", "f(", "'unterminated"]


def _raw_all(port: int) -> dict[str, cs.Response]:
    results = {}
    sock, _ = cs.open_qap(port)
    with sock:
        for name, code, _ in EXPRESSIONS:
            if name.startswith("fresh-"):
                results[name] = cs.raw_eval(port, code)
                continue
            sock.sendall(cs.message(cs.CMD_EVAL, cs.string_param(code)))
            results[name] = cs.read_response(sock)
    return results


@pytest.fixture(scope="module")
def both_raw(rgate, rserve):
    return _raw_all(rserve.port), _raw_all(rgate.port)


@pytest.mark.parametrize(
    "name, code", [pytest.param(n, c, id=n, marks=m) for n, c, m in EXPRESSIONS]
)
def test_same_bytes(both_raw, name, code):
    """Byte-for-byte: the whole eval response (header and DT_SEXP payload) must be identical."""
    expected, actual = both_raw[0][name], both_raw[1][name]
    assert expected is not None and actual is not None
    if (expected.cmd, expected.payload) != (actual.cmd, actual.payload):
        a, b = expected.payload, actual.payload
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        pytest.fail(
            f"{code!r}: cmd 0x{expected.cmd:08x} vs 0x{actual.cmd:08x}, {len(a)} vs {len(b)} bytes, first "
            f"difference at byte {i}:\n  Rserve {a[max(0, i - 8):i + 24].hex(' ')}\n  rgate  {b[max(0, i - 8):i + 24].hex(' ')}"
        )


def _evaluate_all(port: int) -> dict[str, object]:
    results: dict[str, object] = {}
    conn = cs.pyrserve_connect(port)
    try:
        for name, code, _ in EXPRESSIONS:
            # the fresh-session probes go first on a connection of their own
            if name.startswith("fresh-"):
                fresh = cs.pyrserve_connect(port)
                try:
                    results[name] = fresh.eval(code)
                finally:
                    fresh.close()
                continue
            try:
                results[name] = conn.eval(code)
            except (REvalError, RResponseError) as e:
                results[name] = e
            except Exception as e:  # decoding failure or broken connection: record, reconnect
                results[name] = e
                conn.close()
                conn = cs.pyrserve_connect(port)
    finally:
        if not conn.isClosed:
            conn.close()
    return results


@pytest.fixture(scope="module")
def both(rgate, rserve):
    return _evaluate_all(rserve.port), _evaluate_all(rgate.port)


@pytest.mark.parametrize(
    "name, code", [pytest.param(n, c, id=n, marks=m) for n, c, m in EXPRESSIONS]
)
def test_same_value(both, name, code, differences):
    expected, actual = both[0][name], both[1][name]
    if isinstance(expected, Exception) or isinstance(actual, Exception):
        diffs = [] if repr(expected) == repr(actual) else [f"Rserve: {expected!r}  rgate: {actual!r}"]
    else:
        diffs = cs.diff_values(expected, actual)
    if diffs:
        differences.append((name, code, diffs))
    assert not diffs, f"{code!r} decodes differently (Rserve vs rgate):\n  " + "\n  ".join(diffs)


@pytest.mark.parametrize("name, code", ERRORS, ids=[n for n, _ in ERRORS])
def test_same_error_message(rgate, rserve, name, code, differences):
    messages = []
    for server in (rserve, rgate):
        conn = cs.pyrserve_connect(server.port)
        try:
            with pytest.raises(REvalError) as e:
                conn.eval(code)
            messages.append(str(e.value))
            assert conn.eval("1L") == 1  # still usable
        finally:
            conn.close()
    if messages[0] != messages[1]:
        differences.append((name, code, [f"Rserve: {messages[0]!r}  rgate: {messages[1]!r}"]))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("code", PARSE_ERRORS)
def test_parse_errors(rgate, rserve, code):
    """Both raise REvalError with the same status; the message differs by design: Rserve does
    not set geterrmessage() for parse errors (pyRserve shows a stale message), rgate
    sets R's parse error text (an improvement clients cannot be hurt by)."""
    statuses = []
    for server in (rserve, rgate):
        statuses.append(cs.raw_eval(server.port, code).cmd)
        conn = cs.pyrserve_connect(server.port)
        try:
            with pytest.raises(REvalError) as e:
                conn.eval(code)
            if server is rgate:
                assert str(e.value).startswith("Error: "), str(e.value)
                assert "unexpected" in str(e.value) or "incomplete" in str(e.value) or "unfinished" in str(e.value)
        finally:
            conn.close()
    assert statuses[0] == statuses[1], [hex(s) for s in statuses]


def _assignment_values():
    from pyRserve.taggedContainers import TaggedList

    return [
        ("double-array", np.array([1.5, np.nan, -np.inf])),
        ("int-array", np.array([1, -2, 3], dtype=np.int32)),
        ("int64-array", np.array([1, 2, 3], dtype=np.int64)),
        ("bool-array", np.array([True, False, True])),
        ("matrix", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])),
        ("string", "héllo ✓"),
        ("string-array", np.array(["a", "b", "ü"])),
        ("int", 42),
        ("float", 0.25),
        ("bool", True),
        ("complex", 1 - 2j),
        ("list", [1, "a", 2.5, [True, None]]),
        ("none", None),
        ("tagged-list", TaggedList([("k", 1), ("v", "x")])),
    ]


@pytest.mark.parametrize("name, value", _assignment_values(), ids=[n for n, _ in _assignment_values()])
def test_same_assignment(rgate, rserve, name, value, differences):
    """conn.r.x = value (CMD_setSEXP with pyRserve's encoding) then R's view of x."""
    seen = []
    for server in (rserve, rgate):
        conn = cs.pyrserve_connect(server.port)
        try:
            conn.r.x = value
            seen.append(conn.eval("paste(c(typeof(x), deparse(x, control = c('keepNA', 'keepInteger', 'showAttributes'))), collapse = ' ')"))
        finally:
            conn.close()
    if seen[0] != seen[1]:
        differences.append((f"assign {name}", repr(value), [f"Rserve: {seen[0]!r}  rgate: {seen[1]!r}"]))
    assert seen[0] == seen[1]
