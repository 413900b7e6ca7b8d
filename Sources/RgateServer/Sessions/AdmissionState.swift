import RgateBridge

/// The admission rules as a pure value: how many sessions run, who waits, who is let in next.
/// Transitions return what the caller must do; ``AdmissionGate`` runs them under a lock and
/// resumes the waiting tasks.
///
/// Every protocol shares the ``capacity`` (`max_sessions`), partitioned by workload: batch
/// sessions (jobs) may hold at most ``batchLimit`` slots, so batch work can never take the slots
/// interactive clients need. Waiters are admitted first come, first served, skipping batch
/// waiters while the batch share is full.
struct AdmissionState: Sendable {
    /// What an ``acquire(id:workload:)`` does.
    enum AcquireAction: Equatable, Sendable {
        /// A slot is taken: go on.
        case admitted
        /// The wait queue is full: refuse now.
        case refused
        /// Wait for ``release(_:)`` to admit this id (or withdraw it at the deadline).
        case wait
    }

    struct Waiter: Equatable, Sendable {
        let id: UInt64
        let workload: SessionWorkload
    }

    let capacity: Int
    let batchLimit: Int
    let queueLimit: Int
    private(set) var interactive = 0
    private(set) var batch = 0
    private(set) var waiters: [Waiter] = []

    /// - Parameters:
    ///   - capacity: sessions that may run at once.
    ///   - batchLimit: of those, how many may be batch (clamped to 1...capacity).
    ///   - queueLimit: connections that may wait at once.
    init(capacity: Int, batchLimit: Int, queueLimit: Int) {
        self.capacity = max(capacity, 1)
        self.batchLimit = min(max(batchLimit, 1), max(capacity, 1))
        self.queueLimit = queueLimit
    }

    /// The default batch share: half of the slots, at least one.
    static func defaultBatchLimit(capacity: Int) -> Int { max(1, capacity / 2) }

    /// Sessions running.
    var active: Int { interactive + batch }

    private func admissible(_ workload: SessionWorkload) -> Bool {
        active < capacity && (workload != .batch || batch < batchLimit)
    }

    private mutating func take(_ workload: SessionWorkload) {
        if workload == .batch { batch += 1 } else { interactive += 1 }
    }

    /// Whether someone waits who comes before a new request of `workload`: interactive waiters
    /// come before everyone; batch waiters (held back by the batch share) only before batch.
    private func waitersAhead(of workload: SessionWorkload) -> Bool {
        waiters.contains { $0.workload == .interactive || workload == .batch }
    }

    /// Takes a slot only if one is free now and nobody waits ahead of this workload.
    mutating func tryAcquire(_ workload: SessionWorkload) -> Bool {
        guard admissible(workload), !waitersAhead(of: workload) else { return false }
        take(workload)
        return true
    }

    /// Asks for a slot for `id`.
    mutating func acquire(id: UInt64, workload: SessionWorkload) -> AcquireAction {
        if admissible(workload), !waitersAhead(of: workload) {
            take(workload)
            return .admitted
        }
        guard waiters.count < queueLimit else { return .refused }
        waiters.append(Waiter(id: id, workload: workload))
        return .wait
    }

    /// A waiter gives up (its deadline passed): true when it was still waiting (it is refused),
    /// false when it was admitted meanwhile (it holds a slot and must use or release it).
    mutating func withdraw(id: UInt64) -> Bool {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return false }
        waiters.remove(at: i)
        return true
    }

    /// A session of `workload` ended: frees its slot and returns the waiters admitted now
    /// (their slots already taken), in order.
    mutating func release(_ workload: SessionWorkload) -> [UInt64] {
        if workload == .batch { batch = max(0, batch - 1) } else { interactive = max(0, interactive - 1) }
        var admitted: [UInt64] = []
        var i = 0
        while i < waiters.count, active < capacity {
            let w = waiters[i]
            if admissible(w.workload) {
                take(w.workload)
                admitted.append(w.id)
                waiters.remove(at: i)
            } else {
                i += 1
            }
        }
        return admitted
    }
}
