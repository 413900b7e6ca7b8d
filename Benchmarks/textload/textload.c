/*
 * textload: a neutral load generator for the seed text protocol
 * (the rpy2 "rpyserve.py" socket server and anything that speaks it).
 *
 * Wire format, per request:
 *   client -> server:  "<ENCODING>\n" <u64 little-endian length> <code bytes>
 *   server -> client:  <u64 little-endian length> <reply bytes>
 *
 * Build:  cc -O2 -o textload textload.c -lpthread
 * Usage:  textload --port P [--host H] [--code '1+1' | --code-file F]
 *                  [--encoding UTF-8] [--mode fresh|keep] [--connections N]
 *                  [--duration S | --requests N] [--warmup N] [--expect SUBSTRING]
 *
 * Modes:
 *   fresh  connect, send one request, read the full reply, close; one
 *          connection per request (what the seed client does). Latency is
 *          measured from before connect() to the last reply byte.
 *   keep   one connection per client thread, requests back to back on it
 *          (only for servers that keep the connection open). Latency is
 *          measured from send() to the last reply byte; a connection that
 *          fails is counted as an error and opened again.
 *
 * --warmup N sends N requests first, one at a time, unrecorded; it stops at the
 * first failure. --requests N is the total over all connections.
 *
 * Output: one JSON line on stdout,
 *   {"requests":..,"errors":..,"seconds":..,"rps":..,"p50_us":..,"p90_us":..,
 *    "p99_us":..,"max_us":..,...}
 * where "requests" counts successful requests only, "rps" = requests/seconds,
 * and the percentiles are over successful requests (nearest rank). Errors are
 * connect/send/receive failures, 10 s timeouts, a connection closed before the
 * full reply, an empty reply, and (with --expect) a reply lacking SUBSTRING.
 * A breakdown of errors goes to stderr. Exit status: 0 if at least one
 * request succeeded, 1 if none did, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define IO_TIMEOUT_SEC 10
#define MAX_REPLY ((uint64_t)1 << 30) /* a larger length is taken as garbage */

enum err_kind { E_OK, E_CONNECT, E_SEND, E_TIMEOUT, E_RECV, E_EOF, E_EMPTY, E_TOOBIG, E_EXPECT, E_KINDS };
static const char *err_names[E_KINDS] = {"ok", "connect", "send", "timeout", "recv", "eof", "empty", "too_big", "expect"};

/* ---- configuration (read-only once threads start) ---- */
static const char *opt_host = "127.0.0.1";
static const char *opt_port = NULL;
static const char *opt_expect = NULL;
static int opt_keep = 0;
static int opt_connections = 1;
static double opt_duration = 0;
static long opt_requests = 0;
static long opt_warmup = 0;

static struct addrinfo *target;
static char *request;
static size_t request_len;

/* ---- run state ---- */
static atomic_long remaining;     /* --requests: requests still to start */
static uint64_t deadline_ns;      /* --duration: no new request after this */

typedef struct {
    uint64_t *lat_us;
    size_t n, cap;
    long errors[E_KINDS];
    char *buf;
    size_t buf_cap;
    int fd; /* keep mode: open connection or -1 */
} worker_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) {
    fprintf(stderr, "textload: %s\n", msg);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static int open_conn(void) {
    int fd = socket(target->ai_family, target->ai_socktype | SOCK_CLOEXEC, target->ai_protocol);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {IO_TIMEOUT_SEC, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* On Linux SO_SNDTIMEO also bounds a blocking connect(). */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, target->ai_addr, target->ai_addrlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int is_timeout(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS; }

/* Reads exactly n bytes. Returns 0, or an err_kind. */
static int read_full(int fd, char *p, size_t n) {
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return E_EOF;
        } else if (errno != EINTR) {
            return is_timeout(errno) ? E_TIMEOUT : E_RECV;
        }
    }
    return 0;
}

/* Sends the whole request; normally one send() call. Returns 0 or an err_kind. */
static int send_request(int fd) {
    const char *p = request;
    size_t n = request_len;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EINTR) {
            return is_timeout(errno) ? E_TIMEOUT : E_SEND;
        }
    }
    return 0;
}

/* Reads one reply on fd and checks it. Returns 0 or an err_kind. */
static int read_reply(worker_t *w, int fd) {
    unsigned char hdr[8];
    int e = read_full(fd, (char *)hdr, sizeof hdr);
    if (e) return e;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = (len << 8) | hdr[i];
    if (len == 0) return E_EMPTY;
    if (len > MAX_REPLY) return E_TOOBIG;
    if (len > w->buf_cap) {
        free(w->buf);
        w->buf_cap = (size_t)len;
        w->buf = xmalloc(w->buf_cap);
    }
    e = read_full(fd, w->buf, (size_t)len);
    if (e) return e;
    if (opt_expect && !memmem(w->buf, (size_t)len, opt_expect, strlen(opt_expect))) return E_EXPECT;
    return 0;
}

/* One request. Returns 0 and sets *lat_us, or returns an err_kind. */
static int one_request(worker_t *w, uint64_t *lat_us) {
    if (!opt_keep) {
        uint64_t t0 = now_ns();
        int fd = open_conn();
        if (fd < 0) return is_timeout(errno) ? E_TIMEOUT : E_CONNECT;
        int e = send_request(fd);
        if (!e) e = read_reply(w, fd);
        uint64_t t1 = now_ns();
        close(fd);
        *lat_us = (t1 - t0) / 1000;
        return e;
    }
    if (w->fd < 0) {
        w->fd = open_conn();
        if (w->fd < 0) return is_timeout(errno) ? E_TIMEOUT : E_CONNECT;
    }
    uint64_t t0 = now_ns();
    int e = send_request(w->fd);
    if (!e) e = read_reply(w, w->fd);
    uint64_t t1 = now_ns();
    if (e) {
        /* The stream is out of step (or gone): start a new connection. */
        close(w->fd);
        w->fd = -1;
    }
    *lat_us = (t1 - t0) / 1000;
    return e;
}

static int claim(void) {
    if (opt_requests > 0) return atomic_fetch_sub(&remaining, 1) > 0;
    return now_ns() < deadline_ns;
}

static void record(worker_t *w, int e, uint64_t lat) {
    if (e) {
        w->errors[e]++;
        return;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->lat_us = realloc(w->lat_us, w->cap * sizeof *w->lat_us);
        if (!w->lat_us) die("out of memory");
    }
    w->lat_us[w->n++] = lat;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    while (claim()) {
        uint64_t lat = 0;
        int e = one_request(w, &lat); /* before record(): it sets lat */
        record(w, e, lat);
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v: the ceil(p*n/100)-th smallest. */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p) {
    if (n == 0) return 0;
    size_t rank = (p * n + 99) / 100;
    if (rank < 1) rank = 1;
    return v[rank - 1];
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open --code-file");
    size_t cap = 4096, n = 0;
    char *p = xmalloc(cap);
    size_t r;
    while ((r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap);
            if (!p) die("out of memory");
        }
    }
    fclose(f);
    *len = n;
    return p;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: textload --port PORT [--host HOST] [--code CODE | --code-file FILE]\n"
            "                [--encoding NAME] [--mode fresh|keep] [--connections N]\n"
            "                [--duration SECONDS | --requests N] [--warmup N] [--expect SUBSTRING]\n"
            "defaults: --host 127.0.0.1 --code '1+1' --encoding UTF-8 --mode fresh\n"
            "          --connections 1 --duration 5 --warmup 0\n");
}

int main(int argc, char **argv) {
    const char *code = "1+1", *code_file = NULL, *encoding = "UTF-8";
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},      {"port", required_argument, 0, 'p'},
        {"code", required_argument, 0, 'c'},      {"code-file", required_argument, 0, 'f'},
        {"encoding", required_argument, 0, 'E'},  {"mode", required_argument, 0, 'm'},
        {"connections", required_argument, 0, 'n'}, {"duration", required_argument, 0, 'd'},
        {"requests", required_argument, 0, 'r'},  {"warmup", required_argument, 0, 'w'},
        {"expect", required_argument, 0, 'x'},    {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': opt_host = optarg; break;
        case 'p': opt_port = optarg; break;
        case 'c': code = optarg; break;
        case 'f': code_file = optarg; break;
        case 'E': encoding = optarg; break;
        case 'm':
            if (!strcmp(optarg, "fresh")) opt_keep = 0;
            else if (!strcmp(optarg, "keep")) opt_keep = 1;
            else die("--mode must be fresh or keep");
            break;
        case 'n':
            opt_connections = (int)strtol(optarg, &end, 10);
            if (*end || opt_connections < 1 || opt_connections > 4096) die("bad --connections");
            break;
        case 'd':
            opt_duration = strtod(optarg, &end);
            if (*end || !(opt_duration > 0)) die("bad --duration");
            break;
        case 'r':
            opt_requests = strtol(optarg, &end, 10);
            if (*end || opt_requests < 1) die("bad --requests");
            break;
        case 'w':
            opt_warmup = strtol(optarg, &end, 10);
            if (*end || opt_warmup < 0) die("bad --warmup");
            break;
        case 'x': opt_expect = optarg; break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !opt_port) {
        usage(stderr);
        return 2;
    }
    if (opt_duration > 0 && opt_requests > 0) die("give --duration or --requests, not both");
    if (opt_duration == 0 && opt_requests == 0) opt_duration = 5;
    if (strchr(encoding, '\n')) die("bad --encoding");

    signal(SIGPIPE, SIG_IGN);

    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(opt_host, opt_port, &hints, &target);
    if (gai != 0) {
        fprintf(stderr, "textload: %s:%s: %s\n", opt_host, opt_port, gai_strerror(gai));
        return 2;
    }

    /* The request is built once: "<encoding>\n" + u64 LE length + code. */
    size_t code_len;
    char *code_buf = code_file ? read_file(code_file, &code_len) : (char *)code;
    if (!code_file) code_len = strlen(code);
    size_t enc_len = strlen(encoding);
    request_len = enc_len + 1 + 8 + code_len;
    request = xmalloc(request_len);
    memcpy(request, encoding, enc_len);
    request[enc_len] = '\n';
    for (int i = 0; i < 8; i++) request[enc_len + 1 + i] = (char)(((uint64_t)code_len >> (8 * i)) & 0xff);
    memcpy(request + enc_len + 1 + 8, code_buf, code_len);

    worker_t *ws = calloc((size_t)opt_connections, sizeof *ws);
    if (!ws) die("out of memory");
    for (int i = 0; i < opt_connections; i++) ws[i].fd = -1;

    /* Warm-up: sequential, on the first worker's state, not recorded; it stops
     * at the first error so that a dead or silent server cannot stretch it. */
    for (long i = 0; i < opt_warmup; i++) {
        uint64_t lat;
        int e = one_request(&ws[0], &lat);
        if (e) {
            fprintf(stderr, "textload: warm-up request %ld of %ld failed (%s); warm-up stopped\n", i + 1,
                    opt_warmup, err_names[e]);
            break;
        }
    }
    if (opt_keep && ws[0].fd >= 0) {
        close(ws[0].fd);
        ws[0].fd = -1;
    }

    atomic_store(&remaining, opt_requests);
    uint64_t t0 = now_ns();
    deadline_ns = t0 + (uint64_t)(opt_duration * 1e9);
    pthread_t *tids = xmalloc((size_t)opt_connections * sizeof *tids);
    for (int i = 0; i < opt_connections; i++)
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0) die("pthread_create failed");
    for (int i = 0; i < opt_connections; i++) pthread_join(tids[i], NULL);
    double seconds = (double)(now_ns() - t0) / 1e9;

    size_t total = 0;
    long errors = 0, kinds[E_KINDS] = {0};
    for (int i = 0; i < opt_connections; i++) {
        total += ws[i].n;
        for (int k = 1; k < E_KINDS; k++) {
            kinds[k] += ws[i].errors[k];
            errors += ws[i].errors[k];
        }
    }
    uint64_t *all = xmalloc(total * sizeof *all);
    size_t off = 0;
    for (int i = 0; i < opt_connections; i++) {
        if (ws[i].n) memcpy(all + off, ws[i].lat_us, ws[i].n * sizeof *all);
        off += ws[i].n;
    }
    qsort(all, total, sizeof *all, cmp_u64);

    if (errors) {
        fprintf(stderr, "textload: errors:");
        for (int k = 1; k < E_KINDS; k++)
            if (kinds[k]) fprintf(stderr, " %s=%ld", err_names[k], kinds[k]);
        fprintf(stderr, "\n");
    }
    printf("{\"requests\":%zu,\"errors\":%ld,\"seconds\":%.3f,\"rps\":%.1f,"
           "\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,"
           "\"timeouts\":%ld,\"mode\":\"%s\",\"connections\":%d}\n",
           total, errors, seconds, seconds > 0 ? (double)total / seconds : 0.0,
           (unsigned long long)pct(all, total, 50), (unsigned long long)pct(all, total, 90),
           (unsigned long long)pct(all, total, 99), (unsigned long long)(total ? all[total - 1] : 0),
           kinds[E_TIMEOUT], opt_keep ? "keep" : "fresh", opt_connections);
    fflush(stdout);
    return total > 0 ? 0 : 1;
}
