"""RSclient (Debian r-cran-rsclient, unchanged) against rgate, from Rscript subprocesses.

Each test runs a small R script; the script prints one CHECK line per expectation (see
clientsupport.R_PRELUDE) and the Python side asserts all of them passed. The functional
tests run against both servers, so a real Rserve validates every expectation; the
differential test talks to both servers from one script and compares with identical()."""
from __future__ import annotations

import pytest

import clientsupport as cs

pytestmark = pytest.mark.usefixtures("rsclient_available")


def run_checks(tmp_path, body: str, *ports: int, expect_checks: int | None = None, request=None, server=None):
    script = cs.R_PRELUDE + "ports <- as.integer(commandArgs(TRUE))\n" + body
    result = cs.run_rscript(script, [str(p) for p in ports], tmp_path)
    checks = cs.parse_checks(result.stdout)
    failed = [c for c in checks if not c[1]]
    details = "\n".join(f"  {name}: got {got} want {want}" for name, _, got, want in failed)
    assert result.returncode == 0, (
        f"Rscript exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert not failed, f"{len(failed)} of {len(checks)} checks failed:\n{details}"
    if expect_checks is not None:
        assert len(checks) == expect_checks, f"expected {expect_checks} checks, saw {len(checks)}:\n{result.stdout}"
    return checks


def test_connect_eval_close(server, tmp_path):
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
check("class", inherits(c, "RserveConnection"), class(c))
same("scalar", RS.eval(c, 1 + 2), 3)
same("integer", RS.eval(c, 1:3 * 2L), c(2L, 4L, 6L))
same("na", RS.eval(c, c(1, NA, NaN)), c(1, NA, NaN))
check("na-is-na-not-nan", identical(is.nan(RS.eval(c, c(NA, NaN))), c(FALSE, TRUE)))
same("list", RS.eval(c, list(a = 1L, b = "x", c = NA)), list(a = 1L, b = "x", c = NA))
same("data.frame", RS.eval(c, data.frame(x = 1:2, y = c("a", NA))), data.frame(x = 1:2, y = c("a", NA)))
same("factor", RS.eval(c, factor(c("u", "v", "u"))), factor(c("u", "v", "u")))
same("utf8", RS.eval(c, "h\u00e9llo \u2713"), "h\u00e9llo \u2713")
same("utf8-nchar", RS.eval(c, nchar("h\u00e9llo \u2713")), 7L)
same("null", RS.eval(c, NULL), NULL)
same("state", { RS.eval(c, counter <- 41); RS.eval(c, counter + 1) }, 42)
same("function-result", { RS.eval(c, sq <- function(v) v^2); RS.eval(c, sq(1:3)) }, c(1, 4, 9))
big <- RS.eval(c, as.numeric(1:2e6))
check("large", length(big) == 2e6 && big[2e6] == 2e6 && sum(big) == sum(as.numeric(1:2e6)))
same("close", RS.close(c), NULL)
r <- try(RS.eval(c, 1), silent = TRUE)
check("closed-connection-errors", inherits(r, "try-error"), r)
''', server.port, expect_checks=16)


def test_eval_not_lazy(server, tmp_path):
    # lazy = FALSE: the argument is evaluated locally, and its value (a call) is sent.
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
cl <- quote(sum(1:4))
same("call-object", RS.eval(c, cl, lazy = FALSE), 10L)
same("built-call", RS.eval(c, call("paste", "a", "b"), lazy = FALSE), "a b")
local_v <- c(2, 3)
same("bquote", RS.eval(c, bquote(prod(.(local_v))), lazy = FALSE), 6)
same("value-evaluates-to-itself", RS.eval(c, 5 * 5, lazy = FALSE), 25)
RS.eval(c, x <- "remote")
x <- "local"
same("lazy-sees-remote", RS.eval(c, x), "remote")
same("not-lazy-sends-local", RS.eval(c, x, lazy = FALSE), "local")
RS.close(c)
''', server.port, expect_checks=6)


def test_assign_then_use(server, tmp_path):
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
RS.assign(c, "y", 1:3)
same("sum", RS.eval(c, sum(y)), 6L)
df <- data.frame(a = c(1.5, NA), b = c("p", "q"))
RS.assign(c, "df", df)
same("df-roundtrip", RS.eval(c, df), df)
same("df-nrow", RS.eval(c, nrow(df)), 2L)
RS.assign(c, "s", "h\u00e9llo \u2713")
same("utf8", RS.eval(c, nchar(s)), 7L)
RS.assign(c, "big", as.numeric(1:3e6))
same("big", RS.eval(c, sum(big)), sum(as.numeric(1:3e6)))
RS.assign(c, "f", function(a) a + 100)
same("function", RS.eval(c, f(1)), 101)
RS.close(c)
''', server.port, expect_checks=6)


def test_eval_qap(server, tmp_path):
    # RS.eval.qap sends the call as a QAP1 DT_SEXP (CMD_eval), and decodes the QAP1 reply.
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
same("call", RS.eval.qap(c, quote(paste("a", "b"))), "a b")
same("nested-call", RS.eval.qap(c, quote(sum(seq_len(10)))), 55L)
same("named-args", RS.eval.qap(c, quote(round(x = 3.14159, digits = 2))), 3.14)
same("list", RS.eval.qap(c, quote(list(a = 1L, b = c(x = "y")))), list(a = 1L, b = c(x = "y")))
same("na", RS.eval.qap(c, quote(c(1L, NA))), c(1L, NA))
same("string-sexp", RS.eval.qap(c, "1+1"), "1+1")
same("utf8", RS.eval.qap(c, quote(toupper("h\u00e9llo"))), "H\u00c9LLO")
RS.eval(c, z <- 10)
same("sees-session", RS.eval.qap(c, quote(z * 2)), 20)
r <- try(RS.eval.qap(c, quote(stop("qq"))), silent = TRUE)
check("error", inherits(r, "try-error"), r)
check("errmsg", grepl("qq", RS.eval(c, geterrmessage())), RS.eval(c, geterrmessage()))
RS.close(c)
''', server.port, expect_checks=10)


def test_errors(server, tmp_path):
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
r <- try(RS.eval(c, stop("x")), silent = TRUE)
check("try-error", inherits(r, "try-error"), r)
check("status-message", grepl("command failed with status code", r), r)
msg <- RS.eval(c, geterrmessage())
check("geterrmessage", grepl("x", msg, fixed = TRUE) && startsWith(msg, "Error"), msg)
same("still-usable", RS.eval(c, 1L), 1L)
r <- try(RS.eval(c, (function() stop("inner"))()), silent = TRUE)
check("inner-error", inherits(r, "try-error"), r)
msg <- RS.eval(c, geterrmessage())
check("inner-message", grepl("inner", msg), msg)
r <- try(RS.eval(c, no_such_object), silent = TRUE)
check("missing-object", inherits(r, "try-error"), r)
check("missing-object-message", grepl("no_such_object", RS.eval(c, geterrmessage())), RS.eval(c, geterrmessage()))
same("try-inside", RS.eval(c, inherits(try(stop("quiet"), silent = TRUE), "try-error")), TRUE)
RS.close(c)
''', server.port, expect_checks=9)


def test_async_eval_and_collect(server, tmp_path):
    run_checks(tmp_path, r'''
c <- RS.connect(port = ports[1])
RS.eval(c, Sys.getpid() > 0, wait = FALSE)
same("collect", RS.collect(c, timeout = 30), TRUE)
RS.close(c)
''', server.port, expect_checks=1)


def test_sessions_are_isolated(rgate, tmp_path):
    run_checks(tmp_path, r'''
a <- RS.connect(port = ports[1])
b <- RS.connect(port = ports[1])
RS.eval(a, secret <- 1)
same("a-sees", RS.eval(a, exists("secret")), TRUE)
same("b-does-not", RS.eval(b, exists("secret")), FALSE)
check("different-processes", RS.eval(a, Sys.getpid()) != RS.eval(b, Sys.getpid()))
RS.close(a); RS.close(b)
''', rgate.port, expect_checks=3)


def test_eval_error_status_code(rgate, rserve, tmp_path, request):
    """RS.eval (CMD_serEval) of failing code: Rserve answers RESP_ERR with status 1 (R_tryEval's
    error flag, Rserv.c: SET_STAT(RESP_ERR, Rerr)), so RSclient says 'status code 0x1'."""
    run_checks(tmp_path, r'''
msgs <- sapply(ports, function(p) {
  c <- RS.connect(port = p)
  on.exit(RS.close(c))
  conditionMessage(attr(try(RS.eval(c, stop("x")), silent = TRUE), "condition"))
})
same("same-error", msgs[2], msgs[1])
''', rserve.port, rgate.port, expect_checks=1)


# Expressions for the RSclient differential: evaluated through RS.eval (R serialization) and
# RS.eval.qap (QAP1 encoding, decoded by RSclient's C code) against both servers.
DIFF_EXPRESSIONS = [
    "1L", "c(1L, NA, -5L)", "c(1.5, NA, NaN, Inf, -Inf)", "c(TRUE, FALSE, NA)",
    "c('a', NA, '', 'h\\u00e9llo \\u2713')", "NA_character_", "NULL", "list(1L, 'x', NULL)",
    "list(a = 1, b = list(c = 'x', d = 2:3))", "c(a = 1, b = 2)", "factor(c('u', 'v', 'u', NA))",
    "matrix(1:6, 2)", "matrix(c(1.5, NA, 3, 4), 2, dimnames = list(c('r1', 'r2'), c('c1', 'c2')))",
    "array(1:24, c(2, 3, 4))", "data.frame(x = 1:3, y = c('a', 'b', NA), stringsAsFactors = TRUE)",
    "head(mtcars, 3)", "complex(real = c(1, NA), imaginary = c(-2, 0))", "as.raw(c(1, 2, 255))",
    "character(0)", "integer(0)", "list()", "quote(f(x, y = 1))", "as.name('foo')",
    "as.Date('2024-01-02')", "as.POSIXct('2024-01-02 03:04:05', tz = 'UTC')",
    "structure(1:3, myattr = 'hello', class = 'myclass')", "table(c('a', 'b', 'a'))",
    "summary(c(1, 5, 9))", "letters", "seq(0, 1, by = 0.25)", "c('\\u043a\\u043b\\u044e\\u0447' = 1L)",
    "1:1e6", "ls(all.names = TRUE)",
]


def test_differential_rsclient(rgate, rserve, tmp_path, differences):
    """Note: through RS.eval (serEval) a result that is a call or a symbol fails on *both*
    servers: Rserve builds `serialize(<result>, NULL)` as a call with the result inlined, so R
    evaluates the result again (rgate reproduces this). Such cases compare equal as errors."""
    exprs = ", ".join(f'"{e}"' for e in DIFF_EXPRESSIONS)
    body = r'''
exprs <- c(EXPRS)
cr <- RS.connect(port = ports[1])  # Rserve
cg <- RS.connect(port = ports[2])  # rgate
for (code in exprs) {
  e <- parse(text = code, keep.source = FALSE)[[1]]
  for (path in c("serEval", "qap")) {
    # errors compare by message, with the status code masked: that difference has its own
    # test (test_eval_error_status_code)
    get <- function(conn) tryCatch(
      if (path == "serEval") RS.eval(conn, e, lazy = FALSE) else RS.eval.qap(conn, e),
      error = function(err) structure(sub("status code 0x[0-9a-f]+", "status code ?", conditionMessage(err)),
                                      class = "client-error"))
    want <- get(cr)
    got <- get(cg)
    check(paste(path, code), identical(got, want), got, want)
  }
}
RS.close(cr); RS.close(cg)
'''.replace("EXPRS", exprs)
    script = cs.R_PRELUDE + "ports <- as.integer(commandArgs(TRUE))\n" + body
    result = cs.run_rscript(script, [str(rserve.port), str(rgate.port)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checks = cs.parse_checks(result.stdout)
    assert len(checks) == 2 * len(DIFF_EXPRESSIONS), result.stdout[-3000:]
    failed = [c for c in checks if not c[1]]
    for name, _, got, want in failed:
        differences.append((f"RSclient {name.split(' ', 1)[0]}", name.split(" ", 1)[1], [f"Rserve: {want}  rgate: {got}"]))
    assert not failed, "\n".join(f"{n}: Rserve {w}  rgate {g}" for n, _, g, w in failed)
