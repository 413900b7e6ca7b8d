#define _GNU_SOURCE
#include "rgatesys.h"

#include <crypt.h>
#include <malloc.h>
#include <stdatomic.h>
#include <time.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <grp.h>
#include <unistd.h>

ssize_t rgs_send_with_fd(int socket, const void *bytes, size_t length, int fd) {
    struct iovec iov = { (void *)bytes, length };
    union { struct cmsghdr hdr; char buf[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n;
    do { n = sendmsg(socket, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t rgs_recv_with_fd(int socket, void *bytes, size_t capacity, int *fd) {
    struct iovec iov = { bytes, capacity };
    union { struct cmsghdr hdr; char buf[CMSG_SPACE(sizeof(int) * 8)]; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    *fd = -1;
    ssize_t n;
    do { n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[8];
            memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)count);
            for (int i = 0; i < count; i++) {
                if (*fd < 0) *fd = fds[i]; else close(fds[i]);
            }
        }
    }
    return n;
}

int rgs_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

void rgs_set_process_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

int rgs_thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

pid_t rgs_fork(void) { return fork(); }

pid_t rgs_spawn(const char *path, char *const argv[], char *const envp[], const int *map, int map_count) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    for (int i = 0; i < map_count; i++) {
        if (map[i] < 0) posix_spawn_file_actions_addopen(&actions, i, "/dev/null", O_RDWR, 0);
        else posix_spawn_file_actions_adddup2(&actions, map[i], i);
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}

void rgs_reset_signals(void) {
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        signal(s, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int rgs_sigchld_fd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void rgs_drain_signalfd(int fd) {
    // One read takes everything pending (standard signals do not queue, so there is at most
    // one SIGCHLD); not reading until EAGAIN spares a write to errno, a page the zygote would
    // otherwise copy again after every fork.
    struct signalfd_siginfo info;
    (void)read(fd, &info, sizeof info);
}

int rgs_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void rgs_set_thread_name(const char *name) {
    char buf[16];
    snprintf(buf, sizeof buf, "%s", name);
    pthread_setname_np(pthread_self(), buf);
}

int rgs_accept(int listener) { return accept4(listener, NULL, NULL, SOCK_CLOEXEC); }

int rgs_crypt(const char *key, const char *setting, char *out, size_t capacity) {
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    const char *hash = crypt_r(key, setting, &data);
    if (!hash || hash[0] == '*') return -1;
    snprintf(out, capacity, "%s", hash);
    return 0;
}

int rgs_set_limit(int resource, uint64_t value) {
    struct rlimit r = { (rlim_t)value, (rlim_t)value };
    return setrlimit(resource, &r);
}
int rgs_rlimit_data(void) { return RLIMIT_DATA; }
int rgs_rlimit_fsize(void) { return RLIMIT_FSIZE; }
int rgs_rlimit_nofile(void) { return RLIMIT_NOFILE; }
int rgs_rlimit_core(void) { return RLIMIT_CORE; }
void rgs_ignore_sigxfsz(void) { signal(SIGXFSZ, SIG_IGN); }

void rgs_zygote_signals(void) {
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
}

void rgs_session_signals(void) { signal(SIGINT, SIG_IGN); }

void rgs_malloc_trim(void) { malloc_trim(0); }

size_t rgs_malloc_set_aside_free_chunks(size_t *chunks) {
    // The top chunk (the heap's unused end) starts keepcost bytes below the break; every chunk
    // malloc hands out below it was on a free list. Take them all, largest requests first (a
    // large request takes a large chunk whole or splits it, touching only its header), and
    // never free them: later allocations then come from the top chunk, in fresh pages.
    char *end = sbrk(0);
    struct mallinfo2 info = mallinfo2();
    char *top = end - info.keepcost;
    char *heap = end - info.arena; // the main heap: [end - arena, end)
    size_t bytes = 0, count = 0;
    const size_t max_chunks = 1 << 18, max_bytes = (size_t)256 << 20;
    for (size_t size = 1 << 16; size >= 16 && count < max_chunks && bytes < max_bytes; size = size > 1024 ? size / 2 : size - 16) {
        while (count < max_chunks && bytes < max_bytes) {
            char *p = malloc(size);
            if (!p) break;
            if (p >= top - 64 || p < heap || (char *)sbrk(0) != end) {
                // From the top chunk (which may have grown for it), or not from the heap at all
                // (mapped on its own): no free chunk of this size is left. Give it back and look
                // at the top chunk again.
                free(p);
                end = sbrk(0);
                info = mallinfo2();
                top = end - info.keepcost;
                heap = end - info.arena;
                break;
            }
            bytes += malloc_usable_size(p);
            count++;
        }
    }
    if (chunks) *chunks = count;
    return bytes;
}

// The hard time limit. A session's deadline (CLOCK_MONOTONIC ns; 0 = disarmed) lives in a page
// of its own, shared with nobody but the zygote, which reads every session's deadline and kills
// a session whose deadline passed (rgs_deadline_*). A process without such a page keeps it here
// and needs a watchdog thread (rgs_watchdog_start).
size_t rgs_malloc_prepare_top(size_t min_free) {
    // Frees must not give the top back (the growth below would be undone at once, and a session
    // would shrink and regrow its heap), so the top chunk stays as prepared here. Bounded: a
    // long-lived shared session still returns a freed top beyond 32 MiB.
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    struct mallinfo2 info = mallinfo2();
    if (info.keepcost < min_free) {
        // In blocks below the mmap threshold, so they come from (and grow) the heap.
        enum { block = 64 << 10, max_blocks = 1024 };
        static void *blocks[max_blocks];
        size_t n = 0;
        while (n < max_blocks && n * block + mallinfo2().keepcost < min_free) {
            void *p = malloc(block);
            if (!p) break;
            blocks[n++] = p;
        }
        while (n > 0) free(blocks[--n]);
        info = mallinfo2();
    }
    // The top chunk's header is at end - keepcost; everything after its first page boundary is
    // free space malloc never reads before handing it out: drop whatever maps it (a huge zero
    // page, a huge page of the zygote) and keep it out of transparent huge pages.
    char *end = sbrk(0);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)(end - info.keepcost) + 64 + page - 1) & ~(page - 1);
    uintptr_t stop = (uintptr_t)end & ~(page - 1);
    if (start >= stop) return 0;
    if (madvise((void *)start, stop - start, MADV_NOHUGEPAGE) != 0) return 0;
    (void)madvise((void *)start, stop - start, MADV_DONTNEED);
    return stop - start;
}

static _Atomic uint64_t local_deadline = 0;
static _Atomic uint64_t *watchdog_deadline_ptr = &local_deadline;
#define watchdog_deadline (*watchdog_deadline_ptr)
static unsigned watchdog_period_ms = 50;
static int deadline_fd = -1; // the zygote's memfd of deadline pages, one page per pid
static size_t deadline_page = 4096;
static unsigned long deadline_slots = 0;

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *watchdog_main(void *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); // signals belong to the main (R) thread
    struct timespec period = { watchdog_period_ms / 1000, (long)(watchdog_period_ms % 1000) * 1000000L };
    for (;;) {
        nanosleep(&period, NULL);
        uint64_t d = atomic_load_explicit(&watchdog_deadline, memory_order_relaxed);
        if (d != 0 && monotonic_ns() >= d) {
            // The request ran past its limit and R did not stop: end the process the way the
            // supervisor recognises (SIGALRM, default action: terminate).
            signal(SIGALRM, SIG_DFL);
            kill(getpid(), SIGALRM);
            nanosleep(&period, NULL);
            _exit(124);
        }
    }
    return NULL;
}

uint64_t rgs_monotonic_ns(void) { return monotonic_ns(); }

int rgs_deadlines_create(void) {
    deadline_page = (size_t)sysconf(_SC_PAGESIZE);
    // One page per possible pid (the slot of a session is its pid), sparse: a page exists only
    // while its session has armed a deadline (rgs_deadline_release frees it).
    unsigned long pid_max = 4194304;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
    if (f) {
        if (fscanf(f, "%lu", &pid_max) != 1) pid_max = 4194304;
        fclose(f);
    }
    int fd = memfd_create("rgate-deadlines", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)(pid_max * deadline_page)) != 0) { int e = errno; close(fd); errno = e; return -1; }
    deadline_fd = fd;
    deadline_slots = pid_max;
    return 0;
}

int rgs_deadline_attach(void) {
    if (deadline_fd < 0) return -1;
    unsigned long slot = (unsigned long)getpid();
    void *page = slot < deadline_slots
        ? mmap(NULL, deadline_page, PROT_READ | PROT_WRITE, MAP_SHARED, deadline_fd, (off_t)(slot * deadline_page))
        : MAP_FAILED;
    int e = slot < deadline_slots ? errno : ERANGE;
    // The session must not keep the descriptor: with it, it could write other sessions' pages.
    close(deadline_fd);
    deadline_fd = -1;
    if (page == MAP_FAILED) { errno = e; return -1; }
    watchdog_deadline_ptr = page;
    return 0;
}

int rgs_deadline_expired(int pid) {
    uint64_t deadline = 0;
    if (deadline_fd < 0 || pid <= 0 || (unsigned long)pid >= deadline_slots) return 0;
    if (pread(deadline_fd, &deadline, sizeof deadline, (off_t)((unsigned long)pid * deadline_page)) != (ssize_t)sizeof deadline) return 0;
    return deadline != 0 && monotonic_ns() >= deadline;
}

void rgs_deadline_release(int pid) {
    if (deadline_fd < 0 || pid <= 0 || (unsigned long)pid >= deadline_slots) return;
    off_t at = (off_t)((unsigned long)pid * deadline_page);
    if (fallocate(deadline_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, (off_t)deadline_page) != 0) {
        static const uint64_t zero = 0;
        (void)pwrite(deadline_fd, &zero, sizeof zero, at);
    }
}

int rgs_watchdog_start(unsigned period_ms) {
    if (watchdog_deadline_ptr != &local_deadline) return 0; // the zygote enforces this process's deadline
    watchdog_period_ms = period_ms ? period_ms : 50;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, watchdog_main, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

void rgs_watchdog_arm(uint64_t ms_from_now) {
    atomic_store_explicit(&watchdog_deadline, ms_from_now ? monotonic_ns() + ms_from_now * 1000000ull : 0, memory_order_relaxed);
}

int rgs_become_user(unsigned uid, unsigned gid, const char *directory, unsigned max_processes, int parent_death_signal) {
    if (directory && chown(directory, uid, gid) != 0) return -1;
    if (max_processes > 0) {
        struct rlimit r = { max_processes, max_processes };
        if (setrlimit(RLIMIT_NPROC, &r) != 0) return -1;
    }
    if (setgroups(0, NULL) != 0) return -1;
    if (setresgid(gid, gid, gid) != 0) return -1;
    if (setresuid(uid, uid, uid) != 0) return -1;
    if (parent_death_signal) prctl(PR_SET_PDEATHSIG, parent_death_signal, 0, 0, 0);
    return 0;
}

int rgs_netns_prepare(void) {
    int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host < 0) return -1;
    if (unshare(CLONE_NEWNET) != 0) { int e = errno; close(host); errno = e; return -1; }
    int isolated = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (setns(host, CLONE_NEWNET) != 0) {
        // Cannot go back: this process is now without network. Report it as fatal.
        close(host);
        if (isolated >= 0) close(isolated);
        errno = EPERM;
        return -2;
    }
    close(host);
    errno = e;
    return isolated;
}

int rgs_netns_enter(int fd) { return setns(fd, CLONE_NEWNET); }

int rgs_tcp_socket(int family) { return socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); }

