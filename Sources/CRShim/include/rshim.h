// rshim.h: the C boundary around embedded R.
//
// Swift never includes R's headers (R.h redefines Int32 and its globals are not concurrency-safe).
// Every entry point that can raise an R error runs that work inside R_ToplevelExec, so an R error
// (a longjmp) never crosses a Swift frame. SEXPs cross this boundary only as the opaque `rg_sexp`.
#ifndef RGATE_RSHIM_H
#define RGATE_RSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An R object. Valid only while protected (see rg_preserve) and only on the R thread.
typedef void *rg_sexp;

/// R's SEXPTYPE numbers used by the accessors below.
enum {
    RG_NILSXP = 0, RG_SYMSXP = 1, RG_LISTSXP = 2, RG_CLOSXP = 3, RG_ENVSXP = 4, RG_PROMSXP = 5,
    RG_LANGSXP = 6, RG_SPECIALSXP = 7, RG_BUILTINSXP = 8, RG_CHARSXP = 9, RG_LGLSXP = 10,
    RG_INTSXP = 13, RG_REALSXP = 14, RG_CPLXSXP = 15, RG_STRSXP = 16, RG_DOTSXP = 17,
    RG_ANYSXP = 18, RG_VECSXP = 19, RG_EXPRSXP = 20, RG_BCODESXP = 21, RG_EXTPTRSXP = 22,
    RG_WEAKREFSXP = 23, RG_RAWSXP = 24, RG_S4SXP = 25
};

/// Called for everything R prints: `is_stderr` is 0 for stdout, 1 for stderr.
typedef void (*rg_console_fn)(const char *text, int length, int is_stderr, void *context);
/// Called when R code runs q()/quit(); the process exits with `status` after it returns.
typedef void (*rg_quit_fn)(int status, void *context);

/// Starts R in this process (once; a second call fails). Call on the thread that will run R.
/// Returns 0 on success, else writes a reason into `error`.
int rg_start(int argc, char **argv, char *error, size_t error_length);

/// Where console output goes (NULL drops it).
void rg_set_console(rg_console_fn fn, void *context);
/// Called on q(). Without one, q() exits the process after cleaning R's temp dir.
void rg_set_quit_handler(rg_quit_fn fn, void *context);

/// Makes R's C stack check describe the calling thread. Called by rg_start; call again if R is
/// later driven from another thread (not supported by R; documented for completeness).
void rg_adopt_current_thread_stack(void);

/// Sets an absolute deadline (CLOCK_MONOTONIC nanoseconds; 0 clears it). Once it passes, R is
/// interrupted at its next check (busy loops, Sys.sleep polling), again and again until cleared.
void rg_set_deadline(uint64_t monotonic_ns);
/// Watches `fd` (a client socket; -1 stops watching) during evaluation: when its peer has closed
/// the connection, R is interrupted as at a deadline. Checked at most every 100 ms.
void rg_set_hangup_watch(int fd);
// Like rg_set_hangup_watch, and data becoming readable on fd interrupts too (a cancel request).
void rg_set_cancel_watch(int fd);
/// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t rg_monotonic_ns(void);

/// In a process just forked from one running R: gives it its own R temp dir (so that its exit
/// does not delete the parent's) and makes it the working directory. Returns its path (kept for
/// the life of the process), or NULL when it could not be made.
const char *rg_after_fork(void);
/// Removes this process's R temp dir and exits with `status` at once (no R shutdown, no atexit).
void rg_exit(int status) __attribute__((noreturn));

// ---- Evaluation ------------------------------------------------------------------------------

enum {
    RG_PARSE_OK = 0, RG_PARSE_INCOMPLETE = 1, RG_PARSE_ERROR = 2, RG_PARSE_FAILED = 3
};

/// Parses UTF-8 code into an expression vector. On success `*exprs` is preserved (release it
/// with rg_release). On a parse error `message` holds R's console-style text without "Error: ".
int rg_parse(const char *code, size_t length, rg_sexp *exprs, char *message, size_t message_length);

enum { RG_EVAL_OK = 0, RG_EVAL_ERROR = 1, RG_EVAL_TIMEOUT = 2, RG_EVAL_CANCELLED = 3 };

/// Evaluates element `index` of `exprs` in the global environment like the console does.
/// On success `*value` is preserved (release it) and `*visible` is R_Visible.
int rg_eval_expr(rg_sexp exprs, long index, rg_sexp *value, int *visible);
/// Evaluates `expr` in the global environment without rgate's condition handlers (as Rserve
/// does): errors are printed by R and set geterrmessage(); warnings stay in R's own list.
int rg_eval_plain(rg_sexp expr, rg_sexp *value, int *visible);
/// Evaluates `expr` (a language object or symbol) in the global environment.
int rg_eval(rg_sexp expr, rg_sexp *value, int *visible);
/// Prints `value` like the console's auto-print (print/show). Returns an RG_EVAL_* status.
int rg_print(rg_sexp value);
/// Prints the warnings collected since the last call in R's console format, then clears them.
/// `after_error` prefixes "In addition: ". Returns how many warnings there were.
int rg_flush_warnings(int after_error);
/// Resets the per-request condition recorder (warnings, messages, last error).
void rg_reset_conditions(void);
/// The recorded conditions, as R objects: a list(message=, call=) per warning, a character vector
/// of messages, and the last error's list(message=, call=) or NULL. Borrowed; do not release.
rg_sexp rg_recorded_warnings(void);
rg_sexp rg_recorded_messages(void);
rg_sexp rg_recorded_error(void);
/// Sets `.Last.value` as the console does.
void rg_set_last_value(rg_sexp value);

/// Calls base::`name`(args...) under R_ToplevelExec (errors are recorded and printed like any
/// other). On success `*result` is preserved. Returns an RG_EVAL_* status.
int rg_call_base(const char *name, const rg_sexp *args, int count, rg_sexp *result);
/// Forgets what earlier evaluations left in R's session-wide state (`geterrmessage()`,
/// `last.warning`, `.Last.value`), so a new session starts as a fresh R does.
void rg_reset_session_state(void);
/// Sets the text geterrmessage() returns.
void rg_set_errmessage(const char *text);

/// Out-of-band messages from R code: `self.oobSend(x, code)` (kind 0) and
/// `self.oobMessage(x, code)` (kind 1) call this; for kind 1 the reply must be stored preserved
/// in *reply. Return 0 on success; otherwise `error` holds a message raised as an R error.
typedef int (*rg_oob_fn)(int kind, rg_sexp value, int code, rg_sexp *reply, char *error, size_t error_length, void *context);
/// Installs the OOB handler (NULL: the functions raise an error).
void rg_set_oob_handler(rg_oob_fn fn, void *context);

// ---- Memory ---------------------------------------------------------------------------------

void rg_preserve(rg_sexp x);
void rg_release(rg_sexp x);

// ---- Reading R objects (no allocation, cannot raise errors) ----------------------------------

int rg_typeof(rg_sexp x);
int64_t rg_length(rg_sexp x);
rg_sexp rg_nil(void);
int rg_is_nil(rg_sexp x);
const double *rg_real(rg_sexp x);
const int *rg_integer(rg_sexp x);
const int *rg_logical(rg_sexp x);
const double *rg_complex(rg_sexp x); // interleaved re, im
const uint8_t *rg_raw(rg_sexp x);
/// Element `i` of a character vector as UTF-8 (NULL for NA). `length` receives its byte length.
/// May allocate to translate a non-UTF-8 string; runs under R_ToplevelExec.
const char *rg_string_elt(rg_sexp x, int64_t i, int *length);
rg_sexp rg_vector_elt(rg_sexp x, int64_t i);
/// Every element of a character vector as UTF-8 at once: `pointers[i]`/`lengths[i]`, with
/// `lengths[i] = -1` for NA. Pointers stay valid while `x` is protected and until
/// rg_string_table_free(*arena) (translated strings live in the arena). Returns 0, or -1 when R
/// could not produce the strings (e.g. out of memory expanding a compact vector). `sizes` gets
/// the strings' UTF-8 bytes in all, the number of NAs and the number starting with byte 0xFF.
int rg_string_table(rg_sexp x, const char **pointers, int *lengths, void **arena, int64_t sizes[3]);
/// Checks once whether this R's CHARSXP header layout (encoding flags, length, bytes) matches
/// what rg_string_table reads directly (else it uses R's accessor functions). Returns 1 when the
/// direct reads are used, 0 when not. Called at start-up, so forked sessions inherit the answer.
int rg_string_layout_checked(void);
void rg_string_table_free(void *arena);
/// The attribute pairlist; walk it with rg_car/rg_cdr/rg_tag_name.
rg_sexp rg_attributes(rg_sexp x);
rg_sexp rg_car(rg_sexp x);
rg_sexp rg_cdr(rg_sexp x);
/// The tag's name of a pairlist node, or NULL when untagged.
const char *rg_tag_name(rg_sexp x);
/// For a symbol: its name.
const char *rg_symbol_name(rg_sexp x);
/// A closure's formals (a pairlist) and body expression (the source expression even when the
/// closure is byte-compiled).
rg_sexp rg_formals(rg_sexp x);
rg_sexp rg_closure_body(rg_sexp x);
/// A one-line deparse of `x` (at most `capacity` - 1 bytes). Returns 0 on success.
int rg_deparse(rg_sexp x, char *out, size_t capacity);
int rg_is_s4(rg_sexp x);
/// Non-zero for ALTREP objects (compact sequences, deferred strings, ...).
int rg_is_altrep(rg_sexp x);
int rg_r_isna(double x);
double rg_na_real(void);

// ---- Building R objects (each call guarded; returns NULL when R could not allocate) ----------

/// A new preserved vector of `type` and `length` (contents uninitialised for atomic vectors).
rg_sexp rg_alloc_vector(int type, int64_t length);
double *rg_real_mut(rg_sexp x);
int *rg_integer_mut(rg_sexp x);
int *rg_logical_mut(rg_sexp x);
double *rg_complex_mut(rg_sexp x);
uint8_t *rg_raw_mut(rg_sexp x);
/// Sets element `i` of a character vector from UTF-8 bytes; `bytes == NULL` sets NA. 0 on success.
int rg_set_string_elt(rg_sexp x, int64_t i, const char *bytes, int length);
void rg_set_vector_elt(rg_sexp x, int64_t i, rg_sexp value);
/// Sets attribute `name` (R's setAttrib semantics, so compact row.names work). 0 on success.
int rg_set_attribute(rg_sexp x, const char *name, rg_sexp value);
/// The symbol `name` (preserved, for uniform release). NULL when R could not make it.
rg_sexp rg_install(const char *name);
/// Sets the value of the `i`-th node of a pairlist or call.
void rg_set_nth_car(rg_sexp x, int64_t i, rg_sexp value);
/// Binds `value` to `name` in the global environment. 0 on success.
int rg_assign_global(const char *name, rg_sexp value);
/// Binds `name` to `value` in `env`; 0 on success.
int rg_define(rg_sexp env, const char *name, rg_sexp value);
/// A new (preserved) environment whose parent is the global environment, or NULL.
rg_sexp rg_new_env(void);
/// The (preserved) value of `name` in the global environment itself, or NULL when unbound, an
/// active binding or a promise (never runs R code).
rg_sexp rg_lookup_global(const char *name);
/// 1 when `x` is plain data: NULL, atomic vectors and lists of them, attributes included
/// (no functions, environments, language objects, symbols, S4 objects, external pointers), with
/// only inert attributes and classes (see rg_is_inert_attribute / rg_is_inert_class).
int rg_is_plain_data(rg_sexp x);
/// Whether an attribute (other than `class`) may be on a caller's data: names, dim, dimnames,
/// row.names, levels, tzone, units, comment.
int rg_is_inert_attribute(const char *name);
/// Whether a class may be on a caller's data (S3 dispatch goes only to methods that treat values
/// as data): data.frame, factor, ordered, Date, POSIXct, POSIXt, difftime, table, matrix, array.
int rg_is_inert_class(const char *name);
/// Like rg_eval, in `env` instead of the global environment.
int rg_eval_in(rg_sexp expr, rg_sexp env, rg_sexp *value, int *visible);

#ifdef __cplusplus
}
#endif
#endif
