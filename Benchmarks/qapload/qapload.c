/*
 * qapload: a neutral load generator for Rserve's QAP1 protocol (Rserve itself,
 * rgate, anything that speaks QAP1 over TCP).
 *
 * Wire format (little-endian), per request:
 *   server -> client once per connection: the 32-byte ID ("Rsrv0103QAP1...")
 *   client -> server: 16-byte header {cmd, len, msg_id=0, len_hi=0}, then one
 *                     DT_STRING parameter: 4-byte header (4 | n << 8) and the
 *                     code, NUL-terminated and NUL-padded to a multiple of 4
 *   server -> client: 16-byte header {cmd, len, msg_id, len_hi}; payload length
 *                     = len | len_hi << 32; cmd & 0xfffff == 0x10001 is RESP_OK.
 *                     An eval reply's payload must start with DT_SEXP (0x0a, or
 *                     0x4a with the DT_LARGE flag); a voidEval reply has none.
 *
 * Build:  cc -O2 -o qapload qapload.c -lpthread
 * Usage:  qapload [keep|fresh|fetch|hold] --port P [--host H] [--code CODE]
 *                 [--setup CODE] [--connections N] [--duration S | --requests N]
 *                 [--warmup N]
 *
 * Modes (the first argument; default keep):
 *   keep   one connection per thread, CMD_eval(CODE) back to back on it.
 *          Latency: from send() to the last reply byte.
 *   fresh  per request: connect, read the ID, CMD_eval(CODE), read the reply,
 *          close. Latency: from before connect() to the last reply byte (the
 *          close is not in the latency but is in the throughput).
 *   fetch  keep, but CODE defaults to "x": the object is made once per
 *          connection by --setup (CMD_voidEval, untimed, required), e.g.
 *          --setup 'x <- as.numeric(1:1e7) + 0', so the timed request only
 *          fetches it (eval of a symbol: a lookup plus the encoding and transfer).
 *   hold   open --connections connections (one after the other), send one
 *          CMD_voidEval(CODE, default "1") on each, print one JSON line
 *          {"held":N,"errors":E}, then keep them open for --duration seconds
 *          (default 600) or until killed. For idle-session memory measurements.
 *
 * --setup CODE (keep and fetch) is voidEval'ed on every connection, also on a
 * reconnect, before its warm-up. --warmup N (default 5) sends N untimed requests
 * per connection (fresh: per thread) before the timed phase; all threads start
 * the timed phase together. --duration S (default 3) or --requests N (total over
 * all connections) ends it.
 *
 * Output: one JSON line on stdout:
 *   {"mode":..,"connections":..,"requests":..,"errors":..,"seconds":..,"rps":..,
 *    "p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,"mean_us":..,
 *    "bytes_per_reply":..}
 * "requests" counts successful timed requests, rps = requests / seconds, the
 * percentiles (nearest rank) are over successful requests, bytes_per_reply is the
 * mean number of bytes received per successful reply, 16-byte header included.
 * Errors: connect/ID/send/receive failures, timeouts, EOF, RESP_ERR replies, a
 * reply that is not a DT_SEXP; a breakdown goes to stderr. After a failure on a
 * keep connection it is closed and opened again (with --setup).
 *
 * Never hangs: TCP_NODELAY; SO_RCVTIMEO/SO_SNDTIMEO 30 s; connect() is bounded by
 * 10 s; one request is bounded by 60 s in total; a watchdog ends the process
 * (exit 3) if no request finishes for 120 s, or the timed phase runs 120 s
 * over --duration. Exit status: 0 if at least one request succeeded (hold: all
 * connections held), 1 if none did, 2 on bad usage, 3 watchdog.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_SEC 30
#define CONNECT_TIMEOUT_MS 10000
#define REQUEST_LIMIT_NS (60ull * 1000000000ull)
#define WATCHDOG_STALL_SEC 120
#define MAX_PAYLOAD ((uint64_t)16 << 30) /* a larger length is taken as garbage */

#define CMD_voidEval 0x002
#define CMD_eval 0x003
#define RESP_OK 0x10001
#define RESP_ERR 0x10002
#define DT_STRING 4
#define DT_SEXP 0x0a
#define DT_LARGE 0x40

enum err_kind { E_OK, E_CONNECT, E_ID, E_SEND, E_TIMEOUT, E_RECV, E_EOF, E_RESP_ERR, E_FORMAT, E_TOOBIG, E_SETUP, E_KINDS };
static const char *err_names[E_KINDS] = {"ok", "connect", "id", "send", "timeout", "recv", "eof", "resp_err", "format", "too_big", "setup"};

enum mode { M_KEEP, M_FRESH, M_FETCH, M_HOLD };
static const char *mode_names[] = {"keep", "fresh", "fetch", "hold"};

/* ---- configuration (read-only once threads start) ---- */
static enum mode g_mode = M_KEEP;
static const char *g_host = "127.0.0.1";
static const char *g_port = NULL;
static const char *g_code = NULL;
static const char *g_setup = NULL;
static int g_connections = 1;
static double g_duration = -1;
static long long g_requests = -1;
static long g_warmup = 5;
static struct addrinfo *g_addr = NULL;

/* ---- shared state ---- */
static atomic_llong g_claimed;      /* --requests: timed requests handed out */
static atomic_ullong g_progress;    /* finished requests (watchdog) */
static atomic_llong g_errors_by_kind[E_KINDS];
static pthread_barrier_t g_warm_barrier, g_go_barrier;
static uint64_t g_t0_ns, g_deadline_ns; /* written by main between the two barriers */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- one connection ---- */

static int open_connection(void) {
    for (struct addrinfo *a = g_addr; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {IO_TIMEOUT_SEC, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int pr;
            do pr = poll(&p, 1, CONNECT_TIMEOUT_MS); while (pr < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) rc = 0;
        }
        if (rc == 0) {
            fcntl(fd, F_SETFL, flags);
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Reads exactly n bytes; bounded by SO_RCVTIMEO per call and by `limit` overall. */
static enum err_kind read_full(int fd, void *buf, size_t n, uint64_t limit) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n > ((size_t)1 << 24) ? ((size_t)1 << 24) : n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            if (n > 0 && now_ns() > limit) return E_TIMEOUT;
            continue;
        }
        if (r == 0) return E_EOF;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return E_TIMEOUT;
        return E_RECV;
    }
    return E_OK;
}

static enum err_kind send_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return E_TIMEOUT;
        return E_SEND;
    }
    return E_OK;
}

static enum err_kind read_id(int fd) {
    char id[32];
    enum err_kind e = read_full(fd, id, sizeof id, now_ns() + REQUEST_LIMIT_NS);
    if (e != E_OK) return e == E_EOF ? E_ID : e;
    if (memcmp(id, "Rsrv", 4) != 0 || memcmp(id + 8, "QAP1", 4) != 0) return E_ID;
    return E_OK;
}

/* A complete request message: header + DT_STRING(code). */
typedef struct { char *bytes; size_t len; } request_t;

static request_t make_request(int cmd, const char *code) {
    size_t sl = strlen(code) + 1;
    size_t padded = (sl + 3) & ~(size_t)3;
    size_t plen = 4 + padded;
    request_t r;
    r.len = 16 + plen;
    r.bytes = calloc(1, r.len);
    if (!r.bytes) { perror("calloc"); exit(2); }
    uint32_t h[4] = {(uint32_t)cmd, (uint32_t)plen, 0, 0};
    memcpy(r.bytes, h, 16); /* little-endian host assumed (x86_64, aarch64) */
    uint32_t ph = DT_STRING | (uint32_t)(padded << 8);
    memcpy(r.bytes + 16, &ph, 4);
    memcpy(r.bytes + 20, code, sl - 1);
    return r;
}

typedef struct {
    char *buf;
    size_t cap;
} rxbuf_t;

/* Sends one request and reads its reply. *bytes = bytes received (header incl.). */
static enum err_kind transact(int fd, const request_t *req, int expect_sexp, rxbuf_t *rx, uint64_t *bytes) {
    uint64_t limit = now_ns() + REQUEST_LIMIT_NS;
    enum err_kind e = send_full(fd, req->bytes, req->len);
    if (e != E_OK) return e;
    *bytes = 0;
    for (;;) {
        uint32_t h[4];
        if ((e = read_full(fd, h, 16, limit)) != E_OK) return e;
        uint64_t plen = (uint64_t)h[1] | ((uint64_t)h[3] << 32);
        if (plen > MAX_PAYLOAD) return E_TOOBIG;
        if (plen > rx->cap) {
            size_t cap = (size_t)plen + (plen >> 3) + 4096;
            char *nb = realloc(rx->buf, cap);
            if (!nb) return E_TOOBIG;
            rx->buf = nb;
            rx->cap = cap;
        }
        if (plen && (e = read_full(fd, rx->buf, (size_t)plen, limit)) != E_OK) return e;
        *bytes += 16 + plen;
        if ((h[0] & 0xf0000) == 0x20000) continue; /* OOB message: skip, wait for the reply */
        uint32_t code = h[0] & 0xfffff;
        if (code == RESP_ERR) return E_RESP_ERR;
        if (code != RESP_OK) return E_FORMAT;
        if (expect_sexp) {
            if (plen < 4) return E_FORMAT;
            unsigned char t = (unsigned char)rx->buf[0];
            if (t != DT_SEXP && t != (DT_SEXP | DT_LARGE)) return E_FORMAT;
        }
        return E_OK;
    }
}

/* ---- per-thread work ---- */

typedef struct {
    int index;
    uint64_t *lat; /* ns */
    size_t nlat, caplat;
    uint64_t ok_bytes;
    long long errors;
    uint64_t end_ns;
    pthread_t tid;
} worker_t;

static void record(worker_t *w, uint64_t ns) {
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 4096;
        uint64_t *n = realloc(w->lat, cap * sizeof *n);
        if (!n) { perror("realloc"); exit(2); }
        w->lat = n;
        w->caplat = cap;
    }
    w->lat[w->nlat++] = ns;
}

static void count_error(worker_t *w, enum err_kind e, int timed) {
    if (timed) w->errors++;
    atomic_fetch_add(&g_errors_by_kind[e], 1);
}

static int claim(void) {
    if (g_requests >= 0) return atomic_fetch_add(&g_claimed, 1) < g_requests;
    return now_ns() < g_deadline_ns;
}

/* keep/fetch: a ready connection (ID read, setup done), or -1 after counting an error. */
static int ready_connection(worker_t *w, const request_t *setup, rxbuf_t *rx, int timed) {
    int fd = open_connection();
    if (fd < 0) { count_error(w, E_CONNECT, timed); sleep_ms(10); return -1; }
    enum err_kind e = read_id(fd);
    if (e == E_OK && setup) {
        uint64_t b;
        e = transact(fd, setup, 0, rx, &b);
        if (e == E_RESP_ERR) e = E_SETUP;
    }
    if (e != E_OK) { count_error(w, e, timed); close(fd); sleep_ms(10); return -1; }
    return fd;
}

static void *run_keep(void *arg) {
    worker_t *w = arg;
    request_t req = make_request(CMD_eval, g_code);
    request_t setup = g_setup ? make_request(CMD_voidEval, g_setup) : (request_t){0};
    const request_t *setupp = g_setup ? &setup : NULL;
    rxbuf_t rx = {0};
    uint64_t b;
    int fd = ready_connection(w, setupp, &rx, 0);
    for (long i = 0; fd >= 0 && i < g_warmup; i++) {
        enum err_kind e = transact(fd, &req, 1, &rx, &b);
        if (e != E_OK) { count_error(w, e, 0); close(fd); fd = -1; }
        atomic_fetch_add(&g_progress, 1);
    }
    pthread_barrier_wait(&g_warm_barrier);
    pthread_barrier_wait(&g_go_barrier);
    while (claim()) {
        if (fd < 0 && (fd = ready_connection(w, setupp, &rx, 1)) < 0) continue;
        uint64_t t = now_ns();
        enum err_kind e = transact(fd, &req, 1, &rx, &b);
        uint64_t d = now_ns() - t;
        atomic_fetch_add(&g_progress, 1);
        if (e == E_OK) { record(w, d); w->ok_bytes += b; }
        else { count_error(w, e, 1); close(fd); fd = -1; }
    }
    w->end_ns = now_ns();
    if (fd >= 0) close(fd);
    free(rx.buf); free(req.bytes); free(setup.bytes);
    return NULL;
}

/* One fresh-connection request: connect, ID, eval, reply. Returns E_OK or the error. */
static enum err_kind fresh_once(const request_t *req, rxbuf_t *rx, uint64_t *bytes) {
    int fd = open_connection();
    if (fd < 0) return E_CONNECT;
    enum err_kind e = read_id(fd);
    if (e == E_OK) e = transact(fd, req, 1, rx, bytes);
    if (e == E_OK) *bytes += 32;
    close(fd);
    return e;
}

static void *run_fresh(void *arg) {
    worker_t *w = arg;
    request_t req = make_request(CMD_eval, g_code);
    rxbuf_t rx = {0};
    uint64_t b;
    for (long i = 0; i < g_warmup; i++) {
        enum err_kind e = fresh_once(&req, &rx, &b);
        atomic_fetch_add(&g_progress, 1);
        if (e != E_OK) { count_error(w, e, 0); break; }
    }
    pthread_barrier_wait(&g_warm_barrier);
    pthread_barrier_wait(&g_go_barrier);
    while (claim()) {
        uint64_t t = now_ns();
        enum err_kind e = fresh_once(&req, &rx, &b);
        uint64_t d = now_ns() - t;
        atomic_fetch_add(&g_progress, 1);
        if (e == E_OK) { record(w, d); w->ok_bytes += b; }
        else { count_error(w, e, 1); if (e == E_CONNECT) sleep_ms(10); }
    }
    w->end_ns = now_ns();
    free(rx.buf); free(req.bytes);
    return NULL;
}

/* ---- watchdog ---- */

static void *watchdog(void *arg) {
    (void)arg;
    unsigned long long last = atomic_load(&g_progress);
    uint64_t last_change = now_ns();
    for (;;) {
        sleep_ms(500);
        unsigned long long p = atomic_load(&g_progress);
        uint64_t t = now_ns();
        if (p != last) { last = p; last_change = t; }
        int stalled = t - last_change > (uint64_t)WATCHDOG_STALL_SEC * 1000000000ull;
        int overrun = g_mode != M_HOLD && g_deadline_ns && g_requests < 0 &&
                      t > g_deadline_ns + (uint64_t)WATCHDOG_STALL_SEC * 1000000000ull;
        if (stalled || overrun) {
            fprintf(stderr, "qapload: watchdog: %s, giving up\n", stalled ? "no progress" : "timed phase overran");
            printf("{\"mode\":\"%s\",\"connections\":%d,\"requests\":0,\"errors\":-1,\"watchdog\":true}\n",
                   mode_names[g_mode], g_connections);
            fflush(stdout);
            _exit(3);
        }
    }
    return NULL;
}

/* ---- hold ---- */

static int run_hold(void) {
    request_t req = make_request(CMD_voidEval, g_code);
    rxbuf_t rx = {0};
    int *fds = calloc((size_t)g_connections, sizeof *fds);
    int held = 0, errors = 0;
    for (int i = 0; i < g_connections; i++) {
        int fd = open_connection();
        enum err_kind e = fd < 0 ? E_CONNECT : read_id(fd);
        uint64_t b;
        if (e == E_OK) e = transact(fd, &req, 0, &rx, &b);
        if (e != E_OK) {
            fprintf(stderr, "qapload: hold connection %d: %s\n", i, err_names[e]);
            errors++;
            if (fd >= 0) close(fd);
            continue;
        }
        fds[held++] = fd;
    }
    printf("{\"mode\":\"hold\",\"held\":%d,\"errors\":%d}\n", held, errors);
    fflush(stdout);
    uint64_t end = now_ns() + (uint64_t)(g_duration * 1e9);
    while (now_ns() < end) sleep_ms(200);
    for (int i = 0; i < held; i++) close(fds[i]);
    return errors ? 1 : 0;
}

/* ---- main ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p) {
    if (n == 0) return 0;
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)v[rank - 1] / 1000.0;
}

static void usage(const char *msg) {
    if (msg) fprintf(stderr, "qapload: %s\n", msg);
    fprintf(stderr,
            "usage: qapload [keep|fresh|fetch|hold] --port P [--host H] [--code CODE] [--setup CODE]\n"
            "               [--connections N] [--duration S | --requests N] [--warmup N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int argi = 1;
    if (argc > 1 && argv[1][0] != '-') {
        const char *m = argv[1];
        if (!strcmp(m, "keep")) g_mode = M_KEEP;
        else if (!strcmp(m, "fresh")) g_mode = M_FRESH;
        else if (!strcmp(m, "fetch")) g_mode = M_FETCH;
        else if (!strcmp(m, "hold")) g_mode = M_HOLD;
        else usage("unknown mode");
        argi = 2;
    }
    static struct option opts[] = {
        {"host", required_argument, 0, 'h'}, {"port", required_argument, 0, 'p'},
        {"code", required_argument, 0, 'c'}, {"setup", required_argument, 0, 's'},
        {"connections", required_argument, 0, 'n'}, {"duration", required_argument, 0, 'd'},
        {"requests", required_argument, 0, 'r'}, {"warmup", required_argument, 0, 'w'},
        {"help", no_argument, 0, '?'}, {0, 0, 0, 0}};
    optind = argi;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': g_host = optarg; break;
        case 'p': g_port = optarg; break;
        case 'c': g_code = optarg; break;
        case 's': g_setup = optarg; break;
        case 'n': g_connections = (int)strtol(optarg, &end, 10); if (*end || g_connections < 1 || g_connections > 4096) usage("bad --connections"); break;
        case 'd': g_duration = strtod(optarg, &end); if (*end || !(g_duration > 0)) usage("bad --duration"); break;
        case 'r': g_requests = strtoll(optarg, &end, 10); if (*end || g_requests < 1) usage("bad --requests"); break;
        case 'w': g_warmup = strtol(optarg, &end, 10); if (*end || g_warmup < 0) usage("bad --warmup"); break;
        default: usage(NULL);
        }
    }
    if (optind != argc) usage("unexpected argument");
    if (!g_port) usage("--port is required");
    if (g_duration > 0 && g_requests > 0) usage("--duration and --requests are exclusive");
    if (g_mode == M_FETCH && !g_setup) usage("fetch needs --setup (the code that makes the object)");
    if (g_mode == M_FRESH && g_setup) usage("--setup is not supported in fresh mode");
    if (!g_code) g_code = g_mode == M_FETCH ? "x" : g_mode == M_HOLD ? "1" : "1+1";
    if (strlen(g_code) >= 0xfffff0 || (g_setup && strlen(g_setup) >= 0xfffff0)) usage("code too long");
    if (g_duration < 0 && g_requests < 0) g_duration = g_mode == M_HOLD ? 600 : 3;

    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(g_host, g_port, &hints, &g_addr);
    if (gai) { fprintf(stderr, "qapload: %s:%s: %s\n", g_host, g_port, gai_strerror(gai)); return 2; }

    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);

    if (g_mode == M_HOLD) return run_hold();

    worker_t *ws = calloc((size_t)g_connections, sizeof *ws);
    pthread_barrier_init(&g_warm_barrier, NULL, (unsigned)g_connections + 1);
    pthread_barrier_init(&g_go_barrier, NULL, (unsigned)g_connections + 1);
    for (int i = 0; i < g_connections; i++) {
        ws[i].index = i;
        if (pthread_create(&ws[i].tid, NULL, g_mode == M_FRESH ? run_fresh : run_keep, &ws[i]) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    pthread_barrier_wait(&g_warm_barrier);
    g_t0_ns = now_ns();
    g_deadline_ns = g_duration > 0 ? g_t0_ns + (uint64_t)(g_duration * 1e9) : 0;
    pthread_barrier_wait(&g_go_barrier);
    uint64_t t_end = g_t0_ns;
    size_t n = 0;
    long long errors = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < g_connections; i++) {
        pthread_join(ws[i].tid, NULL);
        if (ws[i].end_ns > t_end) t_end = ws[i].end_ns;
        n += ws[i].nlat;
        errors += ws[i].errors;
        bytes += ws[i].ok_bytes;
    }
    uint64_t *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    double sum = 0;
    for (int i = 0; i < g_connections; i++) {
        memcpy(all + k, ws[i].lat, ws[i].nlat * sizeof *all);
        k += ws[i].nlat;
        for (size_t j = 0; j < ws[i].nlat; j++) sum += (double)ws[i].lat[j];
    }
    qsort(all, n, sizeof *all, cmp_u64);
    double secs = (double)(t_end - g_t0_ns) / 1e9;
    printf("{\"mode\":\"%s\",\"connections\":%d,\"requests\":%zu,\"errors\":%lld,\"seconds\":%.3f,"
           "\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f,\"bytes_per_reply\":%.0f}\n",
           mode_names[g_mode], g_connections, n, errors, secs, secs > 0 ? (double)n / secs : 0.0,
           pct_us(all, n, 0.50), pct_us(all, n, 0.90), pct_us(all, n, 0.99), n ? (double)all[n - 1] / 1000.0 : 0.0,
           n ? sum / (double)n / 1000.0 : 0.0, n ? (double)bytes / (double)n : 0.0);
    fflush(stdout);
    int any = 0;
    for (int e = 1; e < E_KINDS; e++) {
        long long c = atomic_load(&g_errors_by_kind[e]);
        if (c) { fprintf(stderr, "%s%s=%lld", any ? " " : "qapload: errors (incl. warm-up): ", err_names[e], c); any = 1; }
    }
    if (any) fputc('\n', stderr);
    return n > 0 ? 0 : 1;
}
