// Loopback TCP round-trip floor for the benchmark suite: what the kernel alone costs per
// request, under every server figure. A server thread echoes; the client times each exchange.
//
// Build: cc -O2 -pthread -o rtt Benchmarks/rtt/rtt.c
// Usage: rtt [--iterations N] [--warmup N] [--connects N] [--bytes B] [--pin CPU]
// Prints JSON lines on stdout:
//   loopback_rtt      on one open connection (TCP_NODELAY on both ends): write B bytes, read
//                     the B-byte echo (the floor of P1 / keep-alive requests)
//   loopback_connect  connect, write B bytes, read the echo, close (the floor of P2 / P6,
//                     a fresh connection per request); the server accepts on its own thread
// Each with median, p99, mean, min, max in microseconds. With --pin CPU both threads run on
// that one CPU and the names get "_pinned": no cross-CPU wake-up per message, which on a VM
// (an IPI through the hypervisor) can dominate; the unpinned figure is the one that applies to
// a client and a server the scheduler places freely.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 65536

static size_t msg_bytes = 16;
static int pinned = 0;

static void die(const char *what) {
    fprintf(stderr, "rtt: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("TCP_NODELAY");
}

// 1: got all n bytes; 0: EOF before any byte; exits on errors and short reads.
static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) {
            if (got == 0) return 0;
            fprintf(stderr, "rtt: short read\n");
            exit(1);
        }
        got += (size_t)r;
    }
    return 1;
}

static void write_full(int fd, const char *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) die("write");
        put += (size_t)w;
    }
}

// The echo server: one connection at a time, echo messages until EOF, then the next.
static void *serve(void *arg) {
    int listener = *(int *)arg;
    char buf[MAX_BYTES];
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            die("accept");
        }
        nodelay(fd);
        while (read_full(fd, buf, msg_bytes)) write_full(fd, buf, msg_bytes);
        close(fd);
    }
    return NULL;
}

static int dial(const struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    nodelay(fd);
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) die("connect");
    return fd;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *base, const char *what, uint64_t *s, size_t n, size_t warmup, uint64_t wall_ns) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", base, pinned ? "_pinned" : "");
    qsort(s, n, sizeof *s, cmp_u64);
    double median = n % 2 ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2;
    size_t i99 = (size_t)((double)n * 0.99 + 0.999999);
    if (i99 < 1) i99 = 1;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)s[i];
    printf("{\"baseline\":\"%s\",\"what\":\"%s\",\"bytes\":%zu,\"iterations\":%zu,\"warmup\":%zu,"
           "\"median_us\":%.3f,\"p99_us\":%.3f,\"mean_us\":%.3f,\"min_us\":%.3f,\"max_us\":%.3f,\"calls_per_s\":%.0f}\n",
           name, what, msg_bytes, n, warmup, median / 1e3, (double)s[i99 - 1] / 1e3, sum / (double)n / 1e3,
           (double)s[0] / 1e3, (double)s[n - 1] / 1e3, (double)n / ((double)wall_ns / 1e9));
    fflush(stdout);
}

static size_t arg(int argc, char **argv, const char *name, size_t dflt) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) {
            long v = strtol(argv[i + 1], NULL, 10);
            if (v > 0) return (size_t)v;
        }
    return dflt;
}

int main(int argc, char **argv) {
    size_t iterations = arg(argc, argv, "--iterations", 100000);
    size_t warmup = arg(argc, argv, "--warmup", 2000);
    size_t connects = arg(argc, argv, "--connects", 5000);
    msg_bytes = arg(argc, argv, "--bytes", 16);
    if (msg_bytes > MAX_BYTES) msg_bytes = MAX_BYTES;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--pin") == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(atoi(argv[i + 1]), &set);
            // Before the server thread exists, so that it inherits the mask.
            if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
            pinned = 1;
        }

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(listener, 128) != 0) die("listen");
    socklen_t len = sizeof addr;
    if (getsockname(listener, (struct sockaddr *)&addr, &len) != 0) die("getsockname");

    pthread_t thread;
    if (pthread_create(&thread, NULL, serve, &listener) != 0) die("pthread_create");

    char out[MAX_BYTES], in[MAX_BYTES];
    memset(out, 'x', sizeof out);
    size_t most = iterations > connects ? iterations : connects;
    uint64_t *samples = malloc(most * sizeof *samples);
    if (!samples) die("malloc");

    // Ping-pong on one open connection.
    int fd = dial(&addr);
    for (size_t i = 0; i < warmup; i++) {
        write_full(fd, out, msg_bytes);
        read_full(fd, in, msg_bytes);
    }
    uint64_t wall0 = now_ns();
    for (size_t i = 0; i < iterations; i++) {
        uint64_t t0 = now_ns();
        write_full(fd, out, msg_bytes);
        if (!read_full(fd, in, msg_bytes)) die("server closed");
        samples[i] = now_ns() - t0;
    }
    report("loopback_rtt", "write+read echo on one open TCP connection, TCP_NODELAY", samples, iterations, warmup,
           now_ns() - wall0);
    close(fd);

    // A fresh connection per exchange. The client closes first, so TIME_WAIT stays on the
    // client's ephemeral ports (5000 connects is far from exhausting them).
    size_t cwarm = warmup / 10 < 100 ? 100 : warmup / 10;
    for (size_t i = 0; i < cwarm + connects; i++) {
        uint64_t t0 = now_ns();
        fd = dial(&addr);
        write_full(fd, out, msg_bytes);
        if (!read_full(fd, in, msg_bytes)) die("server closed");
        close(fd);
        if (i == cwarm) wall0 = t0;
        if (i >= cwarm) samples[i - cwarm] = now_ns() - t0;
    }
    report("loopback_connect", "connect+write+read echo+close, a fresh TCP connection each", samples, connects, cwarm,
           now_ns() - wall0);
    free(samples);
    return 0;
}
