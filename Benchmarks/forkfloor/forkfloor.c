/*
 * forkfloor: what a process-per-session server pays the kernel for each session, measured
 * on this machine with no R and no network: fork a parent shaped like rgate's zygote (and
 * Rserve's server), let the child write some of the memory it shares, exit, reap.
 *
 * Build:  cc -O2 -o forkfloor forkfloor.c
 * Usage:  forkfloor [--forks N] [--vmas V] [--heap-mb M] [--writes W]
 *
 * Cases (each: N forks one after another; the child writes W pages spread evenly over the
 * heap, as a session's allocations do, then _exit(0); the parent waits for it):
 *   bare          a small process (the floor of fork + exit + wait)
 *   vmas          + V extra mappings, each with one written page (a zygote maps ~270:
 *                 R, its ~30 libraries, R packages' .so files, the Swift runtime, locales)
 *   heap-4k       + an M MiB heap in 4 KiB pages (R's heap after start-up is ~36 MiB)
 *   heap-thp      the same heap collapsed into 2 MiB pages (MADV_COLLAPSE); a child's write
 *                 into a shared huge page splits its mapping in the child
 *   zygote-like   vmas + heap-4k together
 * Output: one line per case with microseconds per fork (in the parent) and per whole
 * session cycle (fork + child + exit + reap), then a JSON line with the same figures.
 * Defaults: N=300, V=270, M=36, W=120 (the pages a `1+1` text session writes to R's heap,
 * counted with Benchmarks/session-profile.py).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *make_heap(size_t mb, int huge) {
    size_t length = mb << 20, align = 2ul << 20;
    char *raw = mmap(NULL, length + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) { perror("mmap"); exit(1); }
    char *heap = (char *)(((unsigned long)raw + align - 1) & ~(align - 1));
    memset(heap, 1, length);
    if (huge && madvise(heap, length, MADV_COLLAPSE) != 0) perror("madvise(MADV_COLLAPSE) (no huge pages: the heap-thp case is 4 KiB)");
    return heap;
}

static void make_vmas(int count) {
    // Alternate protections so neighbouring mappings never merge into one.
    for (int i = 0; i < count; i++) {
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        p[0] = 1;
        mprotect(p + 4096, 4096, PROT_NONE);
    }
}

typedef struct { const char *name; double fork_us, cycle_us; } Result;

static Result run(const char *name, int forks, char *heap, size_t heap_mb, int writes) {
    double start = now(), in_fork = 0;
    size_t stride = writes > 0 && heap ? (heap_mb << 20) / (size_t)writes : 0;
    for (int i = 0; i < forks; i++) {
        double before = now();
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(1); }
        if (pid == 0) {
            if (heap) for (int k = 0; k < writes; k++) heap[(size_t)k * stride] = 2;
            _exit(0);
        }
        in_fork += now() - before;
        int status;
        waitpid(pid, &status, 0);
    }
    Result r = { name, in_fork / forks * 1e6, (now() - start) / forks * 1e6 };
    printf("%-12s fork %8.1f us   session cycle %8.1f us\n", name, r.fork_us, r.cycle_us);
    fflush(stdout);
    return r;
}

int main(int argc, char **argv) {
    int forks = 300, vmas = 270, writes = 120;
    size_t heap_mb = 36;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--forks")) forks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--vmas")) vmas = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--heap-mb")) heap_mb = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--writes")) writes = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: forkfloor [--forks N] [--vmas V] [--heap-mb M] [--writes W]\n"); return 2; }
    }
    if (forks < 1 || vmas < 0 || writes < 0 || heap_mb < 1) { fprintf(stderr, "forkfloor: bad argument\n"); return 2; }
    Result results[5];
    int n = 0;
    // Each case runs in its own child process, so earlier cases' mappings do not count.
    const char *names[5] = { "bare", "vmas", "heap-4k", "heap-thp", "zygote-like" };
    for (int c = 0; c < 5; c++) {
        int pipefd[2];
        if (pipe(pipefd) != 0) { perror("pipe"); return 1; }
        pid_t pid = fork();
        if (pid == 0) {
            close(pipefd[0]);
            char *heap = NULL;
            if (c == 1 || c == 4) make_vmas(vmas);
            if (c == 2 || c == 4) heap = make_heap(heap_mb, 0);
            if (c == 3) heap = make_heap(heap_mb, 1);
            Result r = run(names[c], forks, heap, heap_mb, writes);
            if (write(pipefd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
            _exit(0);
        }
        close(pipefd[1]);
        if (read(pipefd[0], &results[n], sizeof results[n]) == (ssize_t)sizeof results[n]) { results[n].name = names[c]; n++; }
        close(pipefd[0]);
        int status;
        waitpid(pid, &status, 0);
    }
    printf("{\"forks\":%d,\"vmas\":%d,\"heap_mb\":%zu,\"writes\":%d", forks, vmas, heap_mb, writes);
    for (int i = 0; i < n; i++) printf(",\"%s\":{\"fork_us\":%.1f,\"cycle_us\":%.1f}", results[i].name, results[i].fork_us, results[i].cycle_us);
    printf("}\n");
    return n == 5 ? 0 : 1;
}
