// rshim.c: embedded R behind a small, longjmp-safe C API. See include/rshim.h.
#define _GNU_SOURCE
#define R_INTERFACE_PTRS 1
#define CSTACK_DEFNS 1
#include <Rinternals.h>
#include <Rembedded.h>
#include <Rinterface.h>
#include <R_ext/Parse.h>
#include "rshim.h"

#include <langinfo.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/stat.h>

// Not in the public headers, but exported by libR (checked with nm -D on Debian's r-base-core).
extern char R_ParseErrorMsg[256];
extern char R_ParseContext[256];
extern int R_ParseContextLast;
extern int R_interrupts_pending;
extern Rboolean R_Visible;
extern int R_wait_usec;
extern void R_CleanTempDir(void);
extern char *R_TempDir;
extern void R_reInitTempDir(int);
extern int R_CStackDir;
extern void SET_SYMVALUE(SEXP, SEXP);

#define PARSE_CONTEXT_SIZE 256

static int is_ascii_bytes(SEXP s) {
    const unsigned char *p = (const unsigned char *)CHAR(s);
    for (int k = 0; k < LENGTH(s); k++) if (p[k] >= 0x80) return 0;
    return 1;
}
#define IS_ASCII_STRING(s) is_ascii_bytes(s)

static int started = 0;
static rg_console_fn console_fn = NULL;
static void *console_context = NULL;
static rg_quit_fn quit_fn = NULL;
static void *quit_context = NULL;
static volatile uint64_t deadline_ns = 0;
static volatile int deadline_hit = 0;
static SEXP recorder_env = NULL; // holds warnings, messages, error; preserved forever
static SEXP flush_warnings_fn = NULL;

uint64_t rg_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// ---- Console callbacks -----------------------------------------------------------------------

static void write_console(const char *buf, int len, int otype) {
    if (console_fn && len > 0) console_fn(buf, len, otype != 0, console_context);
}

static void show_message(const char *msg) {
    if (console_fn && msg) {
        console_fn(msg, (int)strlen(msg), 1, console_context);
        console_fn("\n", 1, 1, console_context);
    }
}

static int read_console(const char *prompt, unsigned char *buf, int len, int history) {
    (void)prompt; (void)buf; (void)len; (void)history;
    return 0; // EOF: there is no stdin in a server
}

static int hangup_fd = -1;
static int hangup_seen = 0;
static int hangup_on_input = 0;
static uint64_t hangup_next_check = 0;

void rg_set_hangup_watch(int fd) { hangup_fd = fd; hangup_seen = 0; hangup_on_input = 0; hangup_next_check = 0; }
void rg_set_cancel_watch(int fd) { hangup_fd = fd; hangup_seen = 0; hangup_on_input = 1; hangup_next_check = 0; }

static void process_events(void) {
    uint64_t d = deadline_ns;
    uint64_t now = 0;
    if (d != 0 && (now = rg_monotonic_ns()) >= d) {
        deadline_hit = 1;
        R_interrupts_pending = 1;
    }
    if (hangup_fd >= 0) {
        if (!now) now = rg_monotonic_ns();
        if (hangup_seen) {
            R_interrupts_pending = 1;
        } else if (now >= hangup_next_check) {
            hangup_next_check = now + 100000000ull;
            // With a cancel watch, anything readable stops the evaluation too (the supervisor
            // sends nothing during a request but a cancel).
            short events = POLLRDHUP | (hangup_on_input ? POLLIN : 0);
            struct pollfd p = { hangup_fd, events, 0 };
            if (poll(&p, 1, 0) > 0 && (p.revents & (events | POLLHUP | POLLERR))) {
                hangup_seen = 1;
                R_interrupts_pending = 1;
            }
        }
    }
}

static void remove_temp_dir(void);

static void clean_up(SA_TYPE saveact, int status, int runLast) {
    (void)saveact; (void)runLast;
    if (quit_fn) quit_fn(status, quit_context);
    remove_temp_dir();
    _exit(status);
}

static void suicide(const char *msg) {
    if (console_fn && msg) {
        const char *prefix = "Fatal error: ";
        console_fn(prefix, (int)strlen(prefix), 1, console_context);
        console_fn(msg, (int)strlen(msg), 1, console_context);
    }
    if (quit_fn) quit_fn(2, quit_context);
    remove_temp_dir();
    _exit(2);
}

void rg_set_console(rg_console_fn fn, void *context) { console_fn = fn; console_context = context; }
void rg_set_quit_handler(rg_quit_fn fn, void *context) { quit_fn = fn; quit_context = context; }

void rg_set_deadline(uint64_t monotonic_ns) {
    deadline_hit = 0;
    deadline_ns = monotonic_ns;
}

void rg_adopt_current_thread_stack(void) {
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr && size > 0) {
        R_CStackStart = (uintptr_t)addr + size;
        R_CStackDir = 1;
        // Leave headroom below the guard page for R's own error handling.
        R_CStackLimit = (uintptr_t)((double)size * 0.9);
    }
    pthread_attr_destroy(&attr);
}

// ---- Guarded helpers -------------------------------------------------------------------------

typedef struct { const char *code; size_t length; SEXP result; ParseStatus status; } parse_args;

static void do_parse(void *data) {
    parse_args *a = data;
    SEXP text = PROTECT(allocVector(STRSXP, 1));
    SET_STRING_ELT(text, 0, mkCharLenCE(a->code, (int)a->length, CE_UTF8));
    a->result = R_ParseVector(text, -1, &a->status, R_NilValue);
    if (a->status == PARSE_OK) R_PreserveObject(a->result);
    UNPROTECT(1);
}

// Mirrors getParseContext() and parseError(call, 0) in R's source.c: the console's message.
static void format_parse_error(char *out, size_t cap) {
    char context[PARSE_CONTEXT_SIZE + 1];
    int i, last = R_ParseContextLast;
    context[PARSE_CONTEXT_SIZE] = '\0';
    for (i = PARSE_CONTEXT_SIZE - 1; i >= 0; i--) {
        context[i] = R_ParseContext[last];
        if (!context[i]) { i++; break; }
        last = (last + PARSE_CONTEXT_SIZE - 1) % PARSE_CONTEXT_SIZE;
    }
    if (i < 0) i = 0;
    // Split into lines; keep the last two non-trailing-empty ones.
    const char *lines[PARSE_CONTEXT_SIZE];
    int nlines = 0;
    char *p = context + i;
    while (*p) {
        lines[nlines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    if (nlines > 0 && lines[nlines - 1][0] == '\0') nlines--;
    if (nlines == 0) snprintf(out, cap, "%s", R_ParseErrorMsg);
    else if (nlines == 1) snprintf(out, cap, "%s in \"%s\"", R_ParseErrorMsg, lines[0]);
    else snprintf(out, cap, "%s in:\n\"%s\n%s\"", R_ParseErrorMsg, lines[nlines - 2], lines[nlines - 1]);
}

int rg_parse(const char *code, size_t length, rg_sexp *exprs, char *message, size_t message_length) {
    if (length > (size_t)INT32_MAX) {
        snprintf(message, message_length, "the code is longer than R's limit of 2^31-1 bytes");
        return RG_PARSE_FAILED;
    }
    parse_args a = { code, length, NULL, PARSE_NULL };
    R_ParseErrorMsg[0] = '\0';
    if (!R_ToplevelExec(do_parse, &a)) {
        snprintf(message, message_length, "R could not parse the code (out of memory?)");
        return RG_PARSE_FAILED;
    }
    switch (a.status) {
    case PARSE_OK:
        *exprs = a.result;
        return RG_PARSE_OK;
    case PARSE_INCOMPLETE:
        snprintf(message, message_length, "unexpected end of input: the code ends inside an unfinished expression");
        return RG_PARSE_INCOMPLETE;
    default:
        format_parse_error(message, message_length);
        return RG_PARSE_ERROR;
    }
}

typedef struct { SEXP expr; SEXP value; int visible; SEXP env; } eval_args;

static SEXP handlers_list = NULL; // rec$handlers, preserved via recorder_env

// Builds withCallingHandlers(<expr>, warning = , message = , error = , interrupt = ).
static SEXP wrap_in_handlers(SEXP expr) {
    SEXP names = getAttrib(handlers_list, R_NamesSymbol);
    R_xlen_t n = XLENGTH(handlers_list);
    SEXP call = PROTECT(allocVector(LANGSXP, n + 2));
    SETCAR(call, install("withCallingHandlers"));
    SEXP node = CDR(call);
    SETCAR(node, expr);
    node = CDR(node);
    for (R_xlen_t i = 0; i < n; i++, node = CDR(node)) {
        SETCAR(node, VECTOR_ELT(handlers_list, i));
        SET_TAG(node, installChar(STRING_ELT(names, i)));
    }
    UNPROTECT(1);
    return call;
}

static void do_eval(void *data) {
    eval_args *a = data;
    SEXP call = PROTECT(wrap_in_handlers(a->expr));
    defineVar(install("wrapper"), call, recorder_env);
    R_Visible = TRUE;
    SEXP value = eval(call, a->env ? a->env : R_GlobalEnv);
    a->visible = R_Visible ? 1 : 0;
    R_PreserveObject(value);
    a->value = value;
    UNPROTECT(1);
}

static int finish_eval(int ok) {
    if (ok) return RG_EVAL_OK;
    if (hangup_seen) return RG_EVAL_CANCELLED;
    return deadline_hit ? RG_EVAL_TIMEOUT : RG_EVAL_ERROR;
}

int rg_eval_in(rg_sexp expr, rg_sexp env, rg_sexp *value, int *visible) {
    eval_args a = { (SEXP)expr, NULL, 0, (SEXP)env };
    int ok = R_ToplevelExec(do_eval, &a);
    if (ok) { *value = a.value; *visible = a.visible; }
    return finish_eval(ok);
}

int rg_eval(rg_sexp expr, rg_sexp *value, int *visible) {
    eval_args a = { (SEXP)expr, NULL, 0, NULL };
    int ok = R_ToplevelExec(do_eval, &a);
    if (ok) { *value = a.value; *visible = a.visible; }
    return finish_eval(ok);
}

static void do_eval_plain(void *data) {
    eval_args *a = data;
    R_Visible = TRUE;
    SEXP value = eval(a->expr, R_GlobalEnv);
    a->visible = R_Visible ? 1 : 0;
    R_PreserveObject(value);
    a->value = value;
}

int rg_eval_plain(rg_sexp expr, rg_sexp *value, int *visible) {
    eval_args a = { (SEXP)expr, NULL, 0, NULL };
    int ok = R_ToplevelExec(do_eval_plain, &a);
    if (ok) { *value = a.value; *visible = a.visible; }
    return finish_eval(ok);
}

int rg_eval_expr(rg_sexp exprs, long index, rg_sexp *value, int *visible) {
    return rg_eval(VECTOR_ELT((SEXP)exprs, index), value, visible);
}

static void do_print(void *data) {
    SEXP value = data;
    defineVar(install("value"), value, recorder_env);
    SEXP printer = findVarInFrame(recorder_env, install("print"));
    SEXP call = PROTECT(wrap_in_handlers(PROTECT(lang1(printer))));
    defineVar(install("wrapper"), call, recorder_env);
    eval(call, R_GlobalEnv);
    UNPROTECT(2);
}

int rg_print(rg_sexp value) {
    R_Visible = TRUE;
    return finish_eval(R_ToplevelExec(do_print, value));
}

typedef struct { int after_error; int count; } flush_args;

static void do_flush(void *data) {
    flush_args *a = data;
    SEXP call = PROTECT(lang2(flush_warnings_fn, ScalarLogical(a->after_error)));
    SEXP n = eval(call, R_GlobalEnv);
    a->count = asInteger(n);
    SEXP lw = findVarInFrame(recorder_env, install("last_warning"));
    if (a->count > 0 && lw != R_UnboundValue) SET_SYMVALUE(install("last.warning"), lw);
    UNPROTECT(1);
}

int rg_flush_warnings(int after_error) {
    SEXP pending = findVarInFrame(recorder_env, install("warnings"));
    if (pending == R_NilValue || pending == R_UnboundValue) return 0; // the common case: no R call
    flush_args a = { after_error, 0 };
    uint64_t saved = deadline_ns;
    deadline_ns = 0; // printing warnings must not be cut by the deadline that just fired
    R_ToplevelExec(do_flush, &a);
    deadline_ns = saved;
    return a.count;
}

void rg_reset_conditions(void) {
    defineVar(install("warnings"), R_NilValue, recorder_env);
    defineVar(install("messages"), R_NilValue, recorder_env);
    defineVar(install("error"), R_NilValue, recorder_env);
    defineVar(install("wrapper"), R_NilValue, recorder_env);
}

static SEXP recorder_get(const char *name) {
    SEXP v = findVarInFrame(recorder_env, install(name));
    return v == R_UnboundValue ? R_NilValue : v;
}
rg_sexp rg_recorded_warnings(void) { return recorder_get("warnings"); }
rg_sexp rg_recorded_messages(void) { return recorder_get("messages"); }
rg_sexp rg_recorded_error(void) { return recorder_get("error"); }

void rg_set_last_value(rg_sexp value) { SET_SYMVALUE(R_LastvalueSymbol, (SEXP)value); }

// ---- Start-up --------------------------------------------------------------------------------

// Installed once, in a private environment. R_ToplevelExec clears the handler stack, so global
// calling handlers would not see our evaluations; instead each top-level expression runs as
// withCallingHandlers(<expr>, ...) built in C. The handlers record conditions; the error and
// interrupt handlers print the console's error text themselves and abort to our top level, so the
// wrapper never shows up as the error's call.
static const char *bootstrap_code =
    "local({\n"
    "  rec <- .rgate_recorder\n"
    "  rec$warnings <- NULL; rec$messages <- NULL; rec$error <- NULL; rec$wrapper <- NULL\n"
    "  realcall <- function(call) if (identical(call, rec$wrapper)) NULL else call\n"
    "  dcall <- function(call) paste(deparse(call, nlines = 1L)[1L])\n"
    "  line1w <- function(msg) { l <- strsplit(msg, '\\n', fixed = TRUE)[[1L]][1L]; if (is.na(l)) 0L else nchar(l, 'w') }\n"
    "  rec$handlers <- list(\n"
    "    warning = function(w) {\n"
    "      warn <- suppressWarnings(as.integer(getOption('warn', 0L)))\n"
    "      if (length(warn) != 1L || is.na(warn)) warn <- 0L\n"
    "      if (warn < 0L) invokeRestart('muffleWarning')\n"
    "      if (warn >= 2L) return(invisible())\n"
    "      call <- realcall(conditionCall(w))\n"
    "      if (warn == 1L) {\n"
    "        rec$warnings[[length(rec$warnings) + 1L]] <- list(message = conditionMessage(w), call = call, deferred = FALSE)\n"
    "        txt <- if (is.null(call)) paste0('Warning: ', conditionMessage(w), '\\n') else\n"
    "          paste0('Warning in ', dcall(call), ' :', if (12L + nchar(dcall(call), 'w') + line1w(conditionMessage(w)) > 75L) '\\n  ' else ' ', conditionMessage(w), '\\n')\n"
    "        cat(txt, file = stderr())\n"
    "        invokeRestart('muffleWarning')\n"
    "      }\n"
    "      rec$warnings[[length(rec$warnings) + 1L]] <- list(message = conditionMessage(w), call = call, deferred = TRUE)\n"
    "      invokeRestart('muffleWarning')\n"
    "    },\n"
    "    message = function(m) rec$messages <- c(rec$messages, conditionMessage(m)),\n"
    "    error = function(e) {\n"
    "      msg <- conditionMessage(e); call <- realcall(conditionCall(e))\n"
    "      rec$error <- list(message = msg, call = call, class = class(e))\n"
    "      txt <- if (is.null(call)) paste0('Error: ', msg) else {\n"
    "        d <- dcall(call)\n"
    "        paste0('Error in ', d, ' : ', if (14L + nchar(d, 'w') + line1w(msg) > 75L) '\\n  ' else '', msg)\n"
    "      }\n"
    "      if (!endsWith(txt, '\\n')) txt <- paste0(txt, '\\n')\n"
    "      .Internal(seterrmessage(txt))\n"
    "      if (isTRUE(getOption('show.error.messages', TRUE))) cat(txt, file = stderr())\n"
    "      invokeRestart('abort')\n"
    "    },\n"
    "    interrupt = function(i) { rec$error <- list(message = 'interrupted', call = NULL); invokeRestart('abort') })\n"
    "  oob <- new.env()\n"
    "  oob$self.oobSend <- function(what, code = 0L) invisible(.Call(.rgate_oob_send, what, code))\n"
    "  oob$self.oobMessage <- function(what, code = 0L) .Call(.rgate_oob_message, what, code)\n"
    "  do.call('attach', list(oob, pos = 2L, name = 'rgate:oob', warn.conflicts = FALSE))\n"
    "  # Code written for Rserve calls Rserve::self.oobSend or library(Rserve): route those to rgate.\n"
    "  setHook(packageEvent('Rserve', 'onLoad'), function(...) {\n"
    "    ns <- asNamespace('Rserve')\n"
    "    for (f in c('self.oobSend', 'self.oobMessage')) if (exists(f, envir = ns, inherits = FALSE)) {\n"
    "      unlockBinding(f, ns); assign(f, get(f, envir = oob), envir = ns); lockBinding(f, ns)\n"
    "    }\n"
    "  })\n"
    "  rec$print <- function() { x <- rec$value; rec$value <- NULL; if (isS4(x)) methods::show(x) else print(x) }\n"
    "  function(after_error) {\n"
    "    ws <- Filter(function(w) isTRUE(w$deferred), rec$warnings)\n"
    "    rec$warnings <- NULL\n"
    "    n <- length(ws)\n"
    "    if (n == 0L) return(0L)\n"
    "    lw <- lapply(ws, function(w) w$call); names(lw) <- vapply(ws, function(w) w$message, '')\n"
    "    rec$last_warning <- lw\n"
    "    prefix <- if (after_error) 'In addition: ' else ''\n"
    "    one <- function(w, lead, extra) {\n"
    "      if (is.null(w$call)) return(paste0(lead, w$message, ' \\n'))\n"
    "      d <- dcall(w$call)\n"
    "      sep <- if (extra + nchar(d, 'w') + line1w(w$message) > 75L) '\\n  ' else ' '\n"
    "      paste0(lead, 'In ', d, ' :', sep, w$message, '\\n')\n"
    "    }\n"
    "    nmax <- 50L\n"
    "    text <- if (n == 1L) {\n"
    "      paste0(prefix, 'Warning message:\\n', one(ws[[1L]], '', 6L))\n"
    "    } else if (n <= 10L) {\n"
    "      paste0(prefix, 'Warning messages:\\n', paste0(vapply(seq_len(n), function(i)\n"
    "        one(ws[[i]], paste0(i, ': '), 10L), ''), collapse = ''))\n"
    "    } else if (n < nmax) {\n"
    "      paste0(prefix, 'There were ', n, ' warnings (use warnings() to see them)\\n')\n"
    "    } else {\n"
    "      paste0(prefix, 'There were ', nmax, ' or more warnings (use warnings() to see the first ', nmax, ')\\n')\n"
    "    }\n"
    "    cat(text, file = stderr())\n"
    "    n\n"
    "  }\n"
    "})\n";

static void install_oob_functions(SEXP env);

typedef struct { const char *code; SEXP result; } boot_args;

static void do_bootstrap(void *data) {
    boot_args *b = data;
    ParseStatus status;
    SEXP text = PROTECT(mkString(b->code));
    SEXP exprs = PROTECT(R_ParseVector(text, -1, &status, R_NilValue));
    if (status != PARSE_OK) error("rgate bootstrap code does not parse");
    SEXP env = PROTECT(R_NewEnv(R_BaseEnv, TRUE, 29));
    defineVar(install(".rgate_recorder"), recorder_env, env);
    install_oob_functions(env);
    SEXP value = R_NilValue;
    for (R_xlen_t i = 0; i < XLENGTH(exprs); i++) value = eval(VECTOR_ELT(exprs, i), env);
    b->result = value;
    R_PreserveObject(value);
    UNPROTECT(3);
}

int rg_start(int argc, char **argv, char *error_out, size_t error_length) {
    if (started) {
        snprintf(error_out, error_length, "R is already running in this process (R can start only once)");
        return -1;
    }
    started = 1;
    if (!getenv("R_HOME")) {
        snprintf(error_out, error_length, "R_HOME is not set (run `R RHOME` to find it)");
        return -1;
    }
    R_SignalHandlers = 0; // the host owns SIGSEGV/SIGBUS/SIGILL/SIGINT
    Rf_initialize_R(argc, argv);
    rg_adopt_current_thread_stack();
    R_Interactive = FALSE;
    R_Outputfile = NULL;
    R_Consolefile = NULL;
    ptr_R_WriteConsole = NULL;
    ptr_R_WriteConsoleEx = write_console;
    ptr_R_ShowMessage = show_message;
    ptr_R_ReadConsole = read_console;
    ptr_R_ProcessEvents = process_events;
    ptr_R_CleanUp = clean_up;
    ptr_R_Suicide = suicide;
    R_wait_usec = 100000; // Sys.sleep() and friends poll events (and so the deadline) every 100 ms
    setup_Rmainloop();

    recorder_env = R_NewEnv(R_EmptyEnv, TRUE, 29);
    R_PreserveObject(recorder_env);
    boot_args b = { bootstrap_code, NULL };
    if (!R_ToplevelExec(do_bootstrap, &b) || b.result == NULL) {
        snprintf(error_out, error_length, "rgate could not install its R evaluator");
        return -1;
    }
    flush_warnings_fn = b.result;
    handlers_list = findVarInFrame(recorder_env, install("handlers"));
    return 0;
}

static int utf8_locale = -1;
// R runs in a UTF-8 locale (LANG=C.UTF-8 in workers), so native strings are UTF-8 already.
static int utf8locale_checked(void) {
    if (utf8_locale < 0) {
        const char *cs = nl_langinfo(CODESET);
        utf8_locale = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
    }
    return utf8_locale;
}

// ---- Memory and accessors --------------------------------------------------------------------

void rg_preserve(rg_sexp x) { if (x) R_PreserveObject((SEXP)x); }
void rg_release(rg_sexp x) { if (x) R_ReleaseObject((SEXP)x); }

int rg_typeof(rg_sexp x) { return TYPEOF((SEXP)x); }
int64_t rg_length(rg_sexp x) { return (int64_t)xlength((SEXP)x); }
rg_sexp rg_nil(void) { return R_NilValue; }
int rg_is_nil(rg_sexp x) { return (SEXP)x == R_NilValue; }
// DATAPTR_RO of an ALTREP vector (e.g. 1:n) may allocate the full vector, which can fail with an
// R error: always under R_ToplevelExec. NULL means R could not provide the data.
typedef struct { SEXP x; const void *out; } dataptr_args;
static void do_dataptr(void *data) {
    dataptr_args *a = data;
    a->out = DATAPTR_RO(a->x);
}
static const void *guarded_dataptr(SEXP x) {
    if (XLENGTH(x) == 0) return NULL;
    if (!ALTREP(x)) return DATAPTR_RO(x);
    dataptr_args a = { x, NULL };
    return R_ToplevelExec(do_dataptr, &a) ? a.out : NULL;
}
const double *rg_real(rg_sexp x) { return guarded_dataptr((SEXP)x); }
const int *rg_integer(rg_sexp x) { return guarded_dataptr((SEXP)x); }
const int *rg_logical(rg_sexp x) { return guarded_dataptr((SEXP)x); }
const double *rg_complex(rg_sexp x) { return guarded_dataptr((SEXP)x); }
const uint8_t *rg_raw(rg_sexp x) { return guarded_dataptr((SEXP)x); }

// Translated strings are copied into this buffer (R's R_alloc memory is released at once).
static char *translated = NULL;
static size_t translated_capacity = 0;

typedef struct { SEXP x; R_xlen_t i; SEXP elt; int failed; } string_args;
static void do_string_elt(void *data) {
    string_args *a = data;
    a->elt = STRING_ELT(a->x, a->i);
}
static void do_translate(void *data) {
    string_args *a = data;
    const void *vmax = vmaxget();
    const char *utf8 = translateCharUTF8(a->elt);
    size_t n = strlen(utf8) + 1;
    if (n > translated_capacity) {
        char *grown = realloc(translated, n);
        if (!grown) { vmaxset(vmax); a->failed = 1; return; }
        translated = grown;
        translated_capacity = n;
    }
    memcpy(translated, utf8, n);
    vmaxset(vmax);
}

static const char *escape_bytes(SEXP s, int *length) {
    // Bytes that are not text in any known encoding: shown as R shows them, e.g. "caf\xe9".
    const unsigned char *p = (const unsigned char *)CHAR(s);
    size_t n = (size_t)LENGTH(s), need = n * 4 + 1;
    if (need > translated_capacity) {
        char *grown = realloc(translated, need);
        if (!grown) { *length = 0; return ""; }
        translated = grown;
        translated_capacity = need;
    }
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < 0x80) translated[o++] = (char)p[k];
        else o += (size_t)snprintf(translated + o, 5, "\\x%02x", p[k]);
    }
    translated[o] = '\0';
    *length = (int)o;
    return translated;
}

const char *rg_string_elt(rg_sexp x, int64_t i, int *length) {
    SEXP s;
    if (ALTREP((SEXP)x)) {
        string_args a = { (SEXP)x, (R_xlen_t)i, NULL, 0 };
        if (!R_ToplevelExec(do_string_elt, &a) || !a.elt) { *length = 0; return ""; }
        s = a.elt;
    } else {
        s = STRING_ELT((SEXP)x, (R_xlen_t)i);
    }
    if (s == NA_STRING) { *length = 0; return NULL; }
    if (getCharCE(s) == CE_UTF8 || (getCharCE(s) == CE_NATIVE && utf8locale_checked()) || IS_ASCII_STRING(s)) {
        *length = LENGTH(s);
        return CHAR(s);
    }
    if (getCharCE(s) == CE_BYTES) return escape_bytes(s, length);
    string_args a = { (SEXP)x, (R_xlen_t)i, s, 0 };
    if (!R_ToplevelExec(do_translate, &a) || a.failed) return escape_bytes(s, length);
    *length = (int)strlen(translated);
    return translated;
}

rg_sexp rg_vector_elt(rg_sexp x, int64_t i) { return VECTOR_ELT((SEXP)x, (R_xlen_t)i); }
rg_sexp rg_attributes(rg_sexp x) { return ATTRIB((SEXP)x); }
rg_sexp rg_car(rg_sexp x) { return CAR((SEXP)x); }
rg_sexp rg_cdr(rg_sexp x) { return CDR((SEXP)x); }
const char *rg_tag_name(rg_sexp x) {
    SEXP tag = TAG((SEXP)x);
    return tag == R_NilValue ? NULL : CHAR(PRINTNAME(tag));
}
const char *rg_symbol_name(rg_sexp x) { return CHAR(PRINTNAME((SEXP)x)); }
int rg_is_s4(rg_sexp x) { return IS_S4_OBJECT((SEXP)x) ? 1 : 0; }
int rg_r_isna(double x) { return R_IsNA(x); }
double rg_na_real(void) { return NA_REAL; }

typedef struct { SEXP x; char *out; size_t cap; } deparse_args;
static void do_deparse(void *data) {
    deparse_args *a = data;
    SEXP quoted = PROTECT(lang2(install("quote"), a->x));
    SEXP call = PROTECT(lang3(install("deparse"), quoted, ScalarInteger(500)));
    SEXP lines = PROTECT(eval(call, R_BaseEnv));
    if (TYPEOF(lines) == STRSXP && XLENGTH(lines) > 0) {
        snprintf(a->out, a->cap, "%s%s", translateCharUTF8(STRING_ELT(lines, 0)), XLENGTH(lines) > 1 ? " ..." : "");
    }
    UNPROTECT(3);
}

int rg_deparse(rg_sexp x, char *out, size_t capacity) {
    if (capacity == 0) return -1;
    out[0] = '\0';
    deparse_args a = { (SEXP)x, out, capacity };
    uint64_t saved = deadline_ns;
    deadline_ns = 0;
    int ok = R_ToplevelExec(do_deparse, &a);
    deadline_ns = saved;
    return ok ? 0 : -1;
}

// ---- Building --------------------------------------------------------------------------------

typedef struct { int type; R_xlen_t n; SEXP out; } alloc_args;
static void do_alloc(void *data) {
    alloc_args *a = data;
    SEXP v = allocVector((SEXPTYPE)a->type, a->n);
    R_PreserveObject(v);
    a->out = v;
}

rg_sexp rg_alloc_vector(int type, int64_t length) {
    alloc_args a = { type, (R_xlen_t)length, NULL };
    if (!R_ToplevelExec(do_alloc, &a)) return NULL;
    return a.out;
}

double *rg_real_mut(rg_sexp x) { return REAL((SEXP)x); }
int *rg_integer_mut(rg_sexp x) { return INTEGER((SEXP)x); }
int *rg_logical_mut(rg_sexp x) { return LOGICAL((SEXP)x); }
double *rg_complex_mut(rg_sexp x) { return (double *)COMPLEX((SEXP)x); }
uint8_t *rg_raw_mut(rg_sexp x) { return RAW((SEXP)x); }

typedef struct { SEXP x; R_xlen_t i; const char *bytes; int length; } set_string_args;
static void do_set_string(void *data) {
    set_string_args *a = data;
    SET_STRING_ELT(a->x, a->i, a->bytes ? mkCharLenCE(a->bytes, a->length, CE_UTF8) : NA_STRING);
}

int rg_set_string_elt(rg_sexp x, int64_t i, const char *bytes, int length) {
    set_string_args a = { (SEXP)x, (R_xlen_t)i, bytes, length };
    return R_ToplevelExec(do_set_string, &a) ? 0 : -1;
}

void rg_set_vector_elt(rg_sexp x, int64_t i, rg_sexp value) {
    SET_VECTOR_ELT((SEXP)x, (R_xlen_t)i, (SEXP)value);
}

typedef struct { SEXP x; const char *name; SEXP value; } attr_args;
static void do_set_attr(void *data) {
    attr_args *a = data;
    setAttrib(a->x, install(a->name), a->value);
    if (strcmp(a->name, "class") == 0 && a->value != R_NilValue) SET_OBJECT(a->x, 1);
}

int rg_set_attribute(rg_sexp x, const char *name, rg_sexp value) {
    attr_args a = { (SEXP)x, name, (SEXP)value };
    return R_ToplevelExec(do_set_attr, &a) ? 0 : -1;
}

static void do_assign(void *data) {
    attr_args *a = data;
    defineVar(install(a->name), a->value, R_GlobalEnv);
}

int rg_assign_global(const char *name, rg_sexp value) {
    attr_args a = { NULL, name, (SEXP)value };
    return R_ToplevelExec(do_assign, &a) ? 0 : -1;
}

static void do_define(void *data) {
    attr_args *a = data;
    defineVar(install(a->name), a->value, a->x);
}

int rg_define(rg_sexp env, const char *name, rg_sexp value) {
    attr_args a = { (SEXP)env, name, (SEXP)value };
    return R_ToplevelExec(do_define, &a) ? 0 : -1;
}

static void do_new_env(void *data) {
    SEXP *out = data;
    *out = R_NewEnv(R_GlobalEnv, FALSE, 0);
    R_PreserveObject(*out);
}

rg_sexp rg_new_env(void) {
    SEXP env = NULL;
    return R_ToplevelExec(do_new_env, &env) ? env : NULL;
}

typedef struct { const char *name; SEXP value; } lookup_args;

static void do_lookup_global(void *data) {
    lookup_args *a = data;
    SEXP sym = install(a->name);
    // Never run code: no active bindings, no promises (they would be forced).
    if (!R_existsVarInFrame(R_GlobalEnv, sym) || R_BindingIsActive(sym, R_GlobalEnv)) return;
    SEXP value = findVarInFrame3(R_GlobalEnv, sym, TRUE);
    if (value == R_UnboundValue || TYPEOF(value) == PROMSXP) return;
    R_PreserveObject(value);
    a->value = value;
}

rg_sexp rg_lookup_global(const char *name) {
    lookup_args a = { name, NULL };
    return R_ToplevelExec(do_lookup_global, &a) ? a.value : NULL;
}

int rg_is_inert_attribute(const char *name);
int rg_is_inert_class(const char *name);

static int plain_data(SEXP x, int depth) {
    if (depth > 64) return 0;
    switch (TYPEOF(x)) {
    case NILSXP: return 1;
    case LGLSXP: case INTSXP: case REALSXP: case CPLXSXP: case STRSXP: case RAWSXP: break;
    case VECSXP:
        for (R_xlen_t i = 0; i < XLENGTH(x); i++) if (!plain_data(VECTOR_ELT(x, i), depth + 1)) return 0;
        break;
    default: return 0;
    }
    if (IS_S4_OBJECT(x)) return 0;
    for (SEXP a = ATTRIB(x); a != R_NilValue; a = CDR(a)) {
        if (TYPEOF(a) != LISTSXP || TYPEOF(TAG(a)) != SYMSXP || !plain_data(CAR(a), depth + 1)) return 0;
        const char *name = CHAR(PRINTNAME(TAG(a)));
        if (strcmp(name, "class") == 0) {
            // S3 dispatch follows the class: only classes whose methods treat values as data.
            SEXP cls = CAR(a);
            if (TYPEOF(cls) != STRSXP) return 0;
            for (R_xlen_t i = 0; i < XLENGTH(cls); i++) {
                if (STRING_ELT(cls, i) == NA_STRING || !rg_is_inert_class(CHAR(STRING_ELT(cls, i)))) return 0;
            }
        } else if (!rg_is_inert_attribute(name)) {
            return 0;
        }
    }
    return 1;
}

static const char *inert_attributes[] = { "names", "dim", "dimnames", "row.names", "levels", "tzone", "units", "comment", NULL };
static const char *inert_classes[] = { "data.frame", "factor", "ordered", "Date", "POSIXct", "POSIXt", "difftime", "table", "matrix", "array", NULL };

int rg_is_inert_attribute(const char *name) {
    for (int i = 0; inert_attributes[i]; i++) if (strcmp(name, inert_attributes[i]) == 0) return 1;
    return 0;
}

int rg_is_inert_class(const char *name) {
    for (int i = 0; inert_classes[i]; i++) if (strcmp(name, inert_classes[i]) == 0) return 1;
    return 0;
}

int rg_is_plain_data(rg_sexp x) { return plain_data((SEXP)x, 0); }

// What R_reInitTempDir does (TMPDIR, TMP or TEMP if a writable directory, else /tmp; a new
// RtmpXXXXXX in it; R_SESSION_TMPDIR for child R processes), without setenv: glibc's setenv
// records every value in a search tree the zygote built, and inserting into it copies several
// of the zygote's heap pages into each session. The strings stay for the life of the process
// (putenv keeps its argument), on the heap: in fresh pages, beside the session's other first
// allocations.
const char *rg_after_fork(void) {
    const char *base = "/tmp";
    const char *candidates[] = { "TMPDIR", "TMP", "TEMP" };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        const char *value = getenv(candidates[i]);
        struct stat info;
        if (value && *value && stat(value, &info) == 0 && S_ISDIR(info.st_mode) && access(value, W_OK) == 0) {
            base = value;
            break;
        }
    }
    static const char prefix[] = "R_SESSION_TMPDIR=";
    size_t length = strlen(base) + sizeof "/RtmpXXXXXX";
    char *variable = malloc(sizeof prefix - 1 + length);
    if (!variable) return NULL;
    char *directory = variable + sizeof prefix - 1;
    memcpy(variable, prefix, sizeof prefix - 1);
    snprintf(directory, length, "%s/RtmpXXXXXX", base);
    if (!mkdtemp(directory) || chdir(directory) != 0) { free(variable); return NULL; }
    putenv(variable);
    R_TempDir = directory;
    return directory;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

// R_CleanTempDir runs `rm -Rf` through a shell (a fork and exec per session); this does the same
// in-process with nftw, depth first, without following symlinks.
static void remove_temp_dir(void) {
    if (R_TempDir && R_TempDir[0] == '/') nftw(R_TempDir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void rg_exit(int status) {
    remove_temp_dir();
    _exit(status);
}

typedef struct { const char *name; SEXP out; } install_args;
static void do_install(void *data) {
    install_args *a = data;
    a->out = install(a->name);
    R_PreserveObject(a->out);
}

rg_sexp rg_install(const char *name) {
    install_args a = { name, NULL };
    return R_ToplevelExec(do_install, &a) ? a.out : NULL;
}

void rg_set_nth_car(rg_sexp x, int64_t i, rg_sexp value) {
    SEXP node = (SEXP)x;
    for (int64_t k = 0; k < i && node != R_NilValue; k++) node = CDR(node);
    if (node != R_NilValue) SETCAR(node, (SEXP)value);
}

typedef struct { const char *name; const rg_sexp *args; int count; SEXP out; } call_args;
static void do_call_base(void *data) {
    call_args *a = data;
    SEXP fn = PROTECT(findFun(install(a->name), R_BaseNamespace));
    SEXP call = PROTECT(allocVector(LANGSXP, a->count + 1));
    SETCAR(call, fn);
    SEXP node = CDR(call);
    for (int i = 0; i < a->count; i++, node = CDR(node)) SETCAR(node, (SEXP)a->args[i]);
    SEXP wrapped = PROTECT(wrap_in_handlers(call));
    defineVar(install("wrapper"), wrapped, recorder_env);
    SEXP value = eval(wrapped, R_GlobalEnv);
    R_PreserveObject(value);
    a->out = value;
    UNPROTECT(3);
}

int rg_call_base(const char *name, const rg_sexp *args, int count, rg_sexp *result) {
    call_args a = { name, args, count, NULL };
    int ok = R_ToplevelExec(do_call_base, &a);
    if (ok) *result = a.out;
    return finish_eval(ok);
}

static void do_set_errmessage(void *data) {
    SEXP call = PROTECT(lang2(install("seterrmessage"), mkString((const char *)data)));
    SEXP internal = PROTECT(lang2(install(".Internal"), call));
    eval(internal, R_BaseEnv);
    UNPROTECT(2);
}

void rg_set_errmessage(const char *text) { R_ToplevelExec(do_set_errmessage, (void *)text); }

static rg_oob_fn oob_fn = NULL;
static void *oob_context = NULL;
void rg_set_oob_handler(rg_oob_fn fn, void *context) { oob_fn = fn; oob_context = context; }

static SEXP oob_call(int kind, SEXP x, SEXP code) {
    if (!oob_fn) error("out-of-band messages are only available on a QAP1 (Rserve protocol) connection");
    char message[512] = "";
    SEXP reply = R_NilValue;
    int c = (code == R_NilValue || XLENGTH(code) == 0) ? 0 : asInteger(code);
    if (oob_fn(kind, x, c == NA_INTEGER ? 0 : c, (rg_sexp *)&reply, message, sizeof message, oob_context) != 0)
        error("%s", message[0] ? message : "the out-of-band message failed");
    if (kind == 0) return ScalarLogical(TRUE);
    PROTECT(reply);
    R_ReleaseObject(reply);
    UNPROTECT(1);
    return reply;
}
static SEXP oob_send_entry(SEXP x, SEXP code) { return oob_call(0, x, code); }
static SEXP oob_message_entry(SEXP x, SEXP code) { return oob_call(1, x, code); }

// self.oobSend(what, code = 0L) and self.oobMessage(what, code = 0L), in an environment attached
// to the search path as "rgate:oob" so that session code finds them without library().
static void install_oob_functions(SEXP env) {
    SEXP send_ptr = PROTECT(R_MakeExternalPtrFn((DL_FUNC)oob_send_entry, install("native symbol"), R_NilValue));
    SEXP msg_ptr = PROTECT(R_MakeExternalPtrFn((DL_FUNC)oob_message_entry, install("native symbol"), R_NilValue));
    defineVar(install(".rgate_oob_send"), send_ptr, env);
    defineVar(install(".rgate_oob_message"), msg_ptr, env);
    UNPROTECT(2);
}

extern SEXP R_ClosureExpr(SEXP);
rg_sexp rg_formals(rg_sexp x) { return FORMALS((SEXP)x); }
rg_sexp rg_closure_body(rg_sexp x) { return R_ClosureExpr((SEXP)x); }

typedef struct arena_block { struct arena_block *next; char data[]; } arena_block;
typedef struct { SEXP x; const char **pointers; int *lengths; arena_block *arena; int failed; int64_t sizes[3]; } table_args;

// A CHARSXP's encoding flags, length and bytes read straight from its header, the way R's own
// macros do (Defn.h, R >= 3.5: 64 bits of sxpinfo with `gp` at bits 8-23, then attrib and two
// GC links, then the vector's length at byte 32 and its data at byte 48). Not part of R's API,
// so checked against the API (CHAR, LENGTH, getCharCE) on real strings before first use; when
// the check fails, the API path is used. Encoding bits as in Defn.h.
#define RG_BYTES_MASK (1 << 1)
#define RG_LATIN1_MASK (1 << 2)
#define RG_UTF8_MASK (1 << 3)
#define RG_ASCII_MASK (1 << 6)
static unsigned charsxp_flags(SEXP s) { uint64_t w; memcpy(&w, (const void *)s, sizeof w); return (unsigned)(w >> 8) & 0xFFFFu; }
static R_xlen_t charsxp_length(SEXP s) { R_xlen_t n; memcpy(&n, (const char *)s + 32, sizeof n); return n; }
static const char *charsxp_bytes(SEXP s) { return (const char *)s + 48; }

static int layout_state = -1; // -1 unchecked, 0 API only, 1 direct reads agree with the API

static int layout_matches(SEXP s, cetype_t expected, int ascii) {
    unsigned f = charsxp_flags(s);
    if (charsxp_bytes(s) != CHAR(s) || charsxp_length(s) != LENGTH(s)) return 0;
    if (getCharCE(s) != expected) return 0;
    if (((f & RG_UTF8_MASK) != 0) != (expected == CE_UTF8)) return 0;
    if (((f & RG_LATIN1_MASK) != 0) != (expected == CE_LATIN1)) return 0;
    if (((f & RG_BYTES_MASK) != 0) != (expected == CE_BYTES)) return 0;
    return ((f & RG_ASCII_MASK) != 0) == ascii;
}

static void check_layout(void *unused) {
    (void)unused;
    layout_state = 0;
    SEXP ascii = PROTECT(mkCharLenCE("plain ascii", 11, CE_UTF8));
    SEXP utf8 = PROTECT(mkCharLenCE("caf\xc3\xa9 \xe2\x82\xac", 9, CE_UTF8));
    SEXP latin1 = PROTECT(mkCharLenCE("caf\xe9", 4, CE_LATIN1));
    SEXP bytes = PROTECT(mkCharLenCE("\xff\xfe raw", 6, CE_BYTES));
    SEXP empty = PROTECT(mkCharLenCE("", 0, CE_NATIVE));
    if (layout_matches(ascii, CE_NATIVE, 1) && layout_matches(utf8, CE_UTF8, 0) && layout_matches(latin1, CE_LATIN1, 0)
        && layout_matches(bytes, CE_BYTES, 0) && layout_matches(empty, CE_NATIVE, 1))
        layout_state = 1;
    UNPROTECT(5);
}

int rg_string_layout_checked(void) {
    if (layout_state < 0 && !R_ToplevelExec(check_layout, NULL)) layout_state = 0;
    return layout_state;
}

static void do_string_table(void *data) {
    table_args *a = data;
    R_xlen_t n = XLENGTH(a->x);
    const SEXP *elements = STRING_PTR_RO(a->x); // materialises an ALTREP vector once
    int direct = rg_string_layout_checked() == 1;
    int native_is_utf8 = utf8locale_checked();
    for (R_xlen_t i = 0; i < n; i++) {
        SEXP s = elements[i];
        if (s == NA_STRING) { a->pointers[i] = NULL; a->lengths[i] = -1; continue; }
        if (direct) {
            unsigned f = charsxp_flags(s);
            if ((f & (RG_UTF8_MASK | RG_ASCII_MASK)) || (native_is_utf8 && !(f & (RG_LATIN1_MASK | RG_BYTES_MASK)))) {
                a->pointers[i] = charsxp_bytes(s);
                a->lengths[i] = (int)charsxp_length(s);
                continue;
            }
        } else {
            cetype_t ce = getCharCE(s);
            if (ce == CE_UTF8 || (ce == CE_NATIVE && native_is_utf8)) {
                a->pointers[i] = CHAR(s);
                a->lengths[i] = LENGTH(s);
                continue;
            }
        }
        if (IS_ASCII_STRING(s)) { a->pointers[i] = CHAR(s); a->lengths[i] = LENGTH(s); continue; }
        const void *vmax = vmaxget();
        const char *utf8 = getCharCE(s) == CE_BYTES ? NULL : translateCharUTF8(s);
        int len;
        const char *src;
        if (utf8) { src = utf8; len = (int)strlen(utf8); }
        else { src = escape_bytes(s, &len); }
        arena_block *b = malloc(sizeof(arena_block) + (size_t)len + 1);
        if (!b) { vmaxset(vmax); a->failed = 1; return; }
        memcpy(b->data, src, (size_t)len);
        b->data[len] = 0;
        b->next = a->arena;
        a->arena = b;
        vmaxset(vmax);
        a->pointers[i] = b->data;
        a->lengths[i] = len;
    }
    // Sizes, while the strings are still in cache: bytes in all, NAs, strings starting with 0xFF.
    int64_t bytes = 0, missing = 0, leading_ff = 0;
    for (R_xlen_t i = 0; i < n; i++) {
        int len = a->lengths[i];
        if (len < 0) { missing++; continue; }
        bytes += len;
        if (len > 0 && (unsigned char)a->pointers[i][0] == 0xFF) leading_ff++;
    }
    a->sizes[0] = bytes; a->sizes[1] = missing; a->sizes[2] = leading_ff;
}

int rg_string_table(rg_sexp x, const char **pointers, int *lengths, void **arena, int64_t sizes[3]) {
    table_args a = { (SEXP)x, pointers, lengths, NULL, 0, { 0, 0, 0 } };
    int ok = R_ToplevelExec(do_string_table, &a);
    *arena = a.arena;
    memcpy(sizes, a.sizes, sizeof a.sizes);
    return ok && !a.failed ? 0 : -1;
}

void rg_string_table_free(void *arena) {
    arena_block *b = arena;
    while (b) { arena_block *next = b->next; free(b); b = next; }
}

void rg_reset_session_state(void) {
    rg_set_errmessage("");
    SET_SYMVALUE(install("last.warning"), R_UnboundValue);
    SET_SYMVALUE(R_LastvalueSymbol, R_NilValue);
}

int rg_is_altrep(rg_sexp x) { return ALTREP((SEXP)x) ? 1 : 0; }
