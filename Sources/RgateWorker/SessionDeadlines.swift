internal import CRgateSystem
#if canImport(Glibc)
import Glibc
#endif

/// The zygote's enforcement of every session's hard time limit (the request's limit plus the
/// kill grace), in place of a watchdog thread in each session.
///
/// Each session process gets a slot: a page of its own in a memfd made by the zygote, mapped
/// only by that session (it closes the memfd at once), where `rgs_watchdog_arm` writes its
/// deadline with a plain memory write. The zygote reads the slots of its live sessions every
/// `scanInterval` and kills (SIGKILL) a session whose deadline passed; when it reaps that
/// process it reports the exit as SIGALRM, which the supervisor tells the client as "ran past
/// its time limit". A session saves a thread (its clone, its stack pages, 20 wake-ups a second)
/// and cannot touch another session's deadline.
struct SessionDeadlines {
    /// How often the zygote looks at the deadlines while it has sessions (the old watchdog
    /// thread's period).
    static let scanIntervalMilliseconds: Int32 = 50

    /// Whether the memfd exists; without it sessions start their own watchdog thread.
    let enabled: Bool
    private var slotOf: [pid_t: UInt32] = [:]
    private var freeSlots: [UInt32] = []
    private var nextSlot: UInt32 = 0
    private var killed: Set<pid_t> = []
    private var lastScan: UInt64 = 0

    init() {
        enabled = rgs_deadlines_create() == 0
        if !enabled { WorkerLog.error("cannot make the deadline memfd (errno \(errno)): each session runs a watchdog thread") }
    }

    /// A slot for the next session (a freed one first); nil when none is left or enforcement
    /// is off.
    mutating func takeSlot() -> UInt32? {
        guard enabled else { return nil }
        if let slot = freeSlots.popLast() { return slot }
        guard nextSlot < RGS_DEADLINE_SLOTS else { return nil }
        defer { nextSlot += 1 }
        return nextSlot
    }

    /// The session forked into `slot` (or, when forking failed, nobody: give it back).
    mutating func assign(_ slot: UInt32, to pid: pid_t?) {
        if let pid { slotOf[pid] = slot } else { giveBack(slot) }
    }

    /// The poll timeout for the zygote's loop: a scan is due while sessions exist.
    var pollTimeoutMilliseconds: Int32 { enabled && !slotOf.isEmpty ? Self.scanIntervalMilliseconds : -1 }

    /// Kills every session whose deadline passed (at most once per scan interval).
    mutating func scan() {
        guard enabled, !slotOf.isEmpty else { return }
        let now = rgs_monotonic_ns()
        guard now &- lastScan >= UInt64(Self.scanIntervalMilliseconds) * 1_000_000 else { return }
        lastScan = now
        for (pid, slot) in slotOf where !killed.contains(pid) && rgs_deadline_expired(slot) != 0 {
            // SIGKILL: R (or native code in it) cannot block or handle it.
            if kill(pid, SIGKILL) == 0 { killed.insert(pid) }
        }
    }

    /// The process `pid` was reaped with `status`: frees its slot, and returns the status to
    /// report (SIGALRM, "ran past its time limit", when this killed it for its deadline).
    mutating func reaped(_ pid: pid_t, status: Int32) -> Int32 {
        if let slot = slotOf.removeValue(forKey: pid) { giveBack(slot) }
        guard killed.remove(pid) != nil else { return status }
        let signal = status & 0x7f
        return signal == SIGKILL ? SIGALRM : status
    }

    private mutating func giveBack(_ slot: UInt32) {
        rgs_deadline_release(slot)
        freeSlots.append(slot)
    }
}
