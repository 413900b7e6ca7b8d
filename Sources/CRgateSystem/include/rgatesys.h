// rgatesys.h: POSIX plumbing Swift cannot express directly (cmsg macros, prctl).
#ifndef RGATE_SYS_H
#define RGATE_SYS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Sends `length` bytes and, when `fd >= 0`, that descriptor (SCM_RIGHTS) on a unix socket.
/// Returns bytes sent, or -1 with errno. Retries on EINTR.
ssize_t rgs_send_with_fd(int socket, const void *bytes, size_t length, int fd);
/// Receives up to `capacity` bytes and at most one descriptor (stored in *fd, else -1).
/// Returns bytes received (0 at EOF), or -1 with errno. Retries on EINTR. Extra fds are closed.
ssize_t rgs_recv_with_fd(int socket, void *bytes, size_t capacity, int *fd);
/// Asks the kernel to send `signal` to this process when its parent dies. Returns 0 on success.
int rgs_set_parent_death_signal(int signal);
/// Names the calling thread/process (as shown by ps -L / top).
void rgs_set_process_name(const char *name);
/// Number of threads in this process, from /proc/self/task; -1 when unknown.
int rgs_thread_count(void);
/// fork(2); Swift marks fork unavailable.
pid_t rgs_fork(void);
/// Spawns `path` with `argv`/`envp`, mapping fds: child fd i = map[i] for i < map_count (-1 = /dev/null).
/// Returns the pid, or -1 with errno.
pid_t rgs_spawn(const char *path, char *const argv[], char *const envp[], const int *map, int map_count);
/// Resets all signal dispositions to default and unblocks every signal.
void rgs_reset_signals(void);
/// Blocks SIGCHLD and returns a signalfd that becomes readable when a child changes state.
int rgs_sigchld_fd(void);
/// Drains a signalfd (non-blocking).
void rgs_drain_signalfd(int fd);
/// A non-blocking, close-on-exec eventfd (a wake-up channel for poll loops).
int rgs_eventfd(void);
/// Names the calling thread (at most 15 characters are kept).
void rgs_set_thread_name(const char *name);
/// accept4(2) with SOCK_CLOEXEC.
int rgs_accept(int listener);
/// Unix crypt(3) of `key` with `setting` (e.g. a 2-character DES salt) into `out`.
/// Returns 0 on success, -1 when the setting is rejected.
int rgs_crypt(const char *key, const char *setting, char *out, size_t capacity);
/// Sets a resource limit (soft and hard) for this process; `resource` is an RLIMIT_* value.
int rgs_set_limit(int resource, uint64_t value);
/// RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE for Swift.
int rgs_rlimit_data(void);
int rgs_rlimit_fsize(void);
int rgs_rlimit_nofile(void);
int rgs_rlimit_core(void);
/// Ignores SIGXFSZ, so writes past RLIMIT_FSIZE fail with EFBIG instead of killing the process.
void rgs_ignore_sigxfsz(void);
// The zygote ignores SIGTERM and SIGINT: a signal to the whole process group (systemd's
// KillMode=control-group, docker stop, Ctrl-C) must not end it in the middle of the
// supervisor's graceful shutdown; it exits when the supervisor's control socket closes.
void rgs_zygote_signals(void);
// A session (its signals reset to the defaults after the fork) ignores SIGINT, so a Ctrl-C to
// the group lets running sessions finish within the shutdown grace; SIGTERM still ends it
// (the supervisor ends the shared session with it).
void rgs_session_signals(void);
/// Returns freed heap memory to the system (glibc malloc_trim), so a process that forks copies
/// fewer page-table entries.
void rgs_malloc_trim(void);
/// Takes every chunk on malloc's free lists and never gives it back (its pages stay as they are),
/// so that what a process allocates afterwards comes from fresh memory at the heap's end. In a
/// zygote, forked sessions then write their allocations into new pages of their own instead of
/// copying (copy-on-write) the many old pages where free chunks lie scattered. Returns the bytes
/// set aside; `chunks` (optional) gets their number. Bounded (256 MiB, 262,144 chunks).
size_t rgs_malloc_set_aside_free_chunks(size_t *chunks);
/// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t rgs_monotonic_ns(void);
/// Prepares the end of malloc's heap (the top chunk, where a forked process's first allocations
/// land): at least `min_free` bytes (growing the heap if needed, and raising the trim threshold
/// to 32 MiB so it stays), unmapped and MADV_NOHUGEPAGE past its first page. With glibc.malloc.hugetlb=1 the
/// heap is advised for transparent huge pages; a session whose first allocations grew the heap,
/// or wrote into an untouched 2 MiB block, got a whole zeroed huge page (512 pages of its own)
/// instead of a few. Returns the bytes so prepared.
size_t rgs_malloc_prepare_top(size_t min_free);
/// Zygote, once: makes the memfd that holds each session's hard-time-limit deadline, one page
/// per pid (sparse), so the zygote can enforce the limits of all its sessions without a thread
/// in each and with no bookkeeping per fork. Returns 0 on success, else -1 with errno (sessions
/// then fall back to a watchdog thread).
int rgs_deadlines_create(void);
/// In a session process just forked: maps its own page (its pid's, where rgs_watchdog_arm then
/// writes) and closes the memfd either way, so it can neither read nor write any other
/// session's deadline. Returns 0 on success.
int rgs_deadline_attach(void);
/// Zygote: 1 when the session `pid` armed a deadline that has passed.
int rgs_deadline_expired(int pid);
/// Zygote, when the session `pid` was reaped: frees its page (it reads as 0, disarmed).
void rgs_deadline_release(int pid);
/// Starts a watchdog thread that raises SIGALRM in this process once the deadline set with
/// rgs_watchdog_arm passes (checked every `period_ms`); a no-op returning 0 in a session whose
/// deadline the zygote enforces (rgs_deadline_attach). Returns 0 on success.
int rgs_watchdog_start(unsigned period_ms);
/// Sets the kill deadline to `ms_from_now` milliseconds from now; 0 disarms. A plain memory
/// write, with no system call on the request path.
void rgs_watchdog_arm(uint64_t ms_from_now);
/// Drops this process to `uid`/`gid` (no supplementary groups), after giving it `directory`
/// and limiting it to `max_processes` processes for that uid (fork bombs). Sets the parent-death
/// signal again (a credential change clears it). Returns 0 on success, else -1 with errno.
int rgs_become_user(unsigned uid, unsigned gid, const char *directory, unsigned max_processes, int parent_death_signal);

/// Creates a network namespace with no usable interface (its loopback is down) and returns a
/// descriptor for it (O_CLOEXEC), leaving the caller in its own namespace; -1 when namespaces
/// are not available (not root, no CAP_SYS_ADMIN), -2 when the caller could not return to its
/// namespace (fatal).
int rgs_netns_prepare(void);
/// Moves the calling (single-threaded) process into the namespace `fd`; 0 on success.
int rgs_netns_enter(int fd);
/// An unbound TCP socket (close-on-exec) of `family`, in the caller's current network namespace.
int rgs_tcp_socket(int family);

#endif
