internal import CRgateSystem
#if canImport(Glibc)
import Glibc
#endif

/// The zygote's enforcement of every session's hard time limit (the request's limit plus the
/// kill grace), in place of a watchdog thread in each session.
///
/// The zygote makes one sparse memfd with a page per pid. A session process maps only its own
/// pid's page (and closes the memfd at once), where `rgs_watchdog_arm` writes its deadline with
/// a plain memory write. While it has sessions, the zygote reads their deadlines every
/// `scanIntervalMilliseconds` and kills (SIGKILL) a session whose deadline passed; when it reaps
/// that process it reports the exit as SIGALRM, which the supervisor tells the client as "ran
/// past its time limit". A session saves a thread (its clone, its stack pages, 20 wake-ups a
/// second) and cannot touch another session's deadline; forking costs the zygote no bookkeeping.
struct SessionDeadlines {
    /// How often the zygote looks at the deadlines while it has sessions (the old watchdog
    /// thread's period).
    static let scanIntervalMilliseconds: Int32 = 50

    /// Whether the memfd exists; without it sessions start their own watchdog thread.
    let enabled: Bool
    private var killed: Set<pid_t> = []
    private var lastScan: UInt64 = 0

    init() {
        enabled = rgs_deadlines_create() == 0
        if !enabled { WorkerLog.error("cannot make the deadline memfd (errno \(errno)): each session runs a watchdog thread") }
    }

    /// The poll timeout for the zygote's loop: a scan is due while sessions exist.
    func pollTimeoutMilliseconds(sessions: Int) -> Int32 { enabled && sessions > 0 ? Self.scanIntervalMilliseconds : -1 }

    /// Kills every session in `children` whose deadline passed (at most once per scan interval).
    mutating func scan(_ children: Set<pid_t>) {
        guard enabled, !children.isEmpty else { return }
        let now = rgs_monotonic_ns()
        guard now &- lastScan >= UInt64(Self.scanIntervalMilliseconds) * 1_000_000 else { return }
        lastScan = now
        for pid in children where rgs_deadline_expired(pid) != 0 && !killed.contains(pid) {
            // SIGKILL: R (or native code in it) cannot block or handle it.
            if kill(pid, SIGKILL) == 0 { killed.insert(pid) }
        }
    }

    /// The process `pid` was reaped with `status`: frees its page, and returns the status to
    /// report (SIGALRM, "ran past its time limit", when this killed it for its deadline).
    mutating func reaped(_ pid: pid_t, status: Int32) -> Int32 {
        guard enabled else { return status }
        rgs_deadline_release(pid)
        guard killed.remove(pid) != nil else { return status }
        return status & 0x7f == SIGKILL ? SIGALRM : status
    }
}
