import RgateBridge
import Synchronization

/// Bounds the number of concurrent sessions (``AdmissionState`` holds the rules). A request for
/// a session beyond the bound waits (up to a time limit, in a bounded queue) for a session to
/// end, then is told the server is busy.
final class AdmissionGate: Sendable {
    private struct State {
        var rules: AdmissionState
        var continuations: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// Outcomes decided (admitted by a release, or withdrawn) before the waiting task
        /// registered its continuation.
        var decided: [UInt64: Bool] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    let capacity: Int
    let batchLimit: Int

    init(capacity: Int, queueLimit: Int, batchLimit: Int? = nil) {
        let rules = AdmissionState(capacity: capacity, batchLimit: batchLimit ?? AdmissionState.defaultBatchLimit(capacity: capacity), queueLimit: queueLimit)
        self.capacity = rules.capacity
        self.batchLimit = rules.batchLimit
        state = Mutex(State(rules: rules))
    }

    /// Sessions running.
    var active: Int { state.withLock { $0.rules.active } }

    /// Takes a slot only if one is free now (and nobody is waiting for one).
    func tryAcquire(_ workload: SessionWorkload = .interactive) -> Bool {
        state.withLock { $0.rules.tryAcquire(workload) }
    }

    /// Takes a slot, waiting up to `timeout`; false when none became free (or the queue is full).
    func acquire(timeout: Duration, workload: SessionWorkload = .interactive) async -> Bool {
        let (id, first) = state.withLock { s -> (UInt64, AdmissionState.AcquireAction) in
            s.nextID += 1
            return (s.nextID, s.rules.acquire(id: s.nextID, workload: workload))
        }
        switch first {
        case .admitted: return true
        case .refused: return false
        case .wait: break
        }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let early = self.state.withLock { s -> Bool? in
                        if let outcome = s.decided.removeValue(forKey: id) { return outcome }
                        s.continuations[id] = continuation
                        return nil
                    }
                    if let early { continuation.resume(returning: early) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next()!
            if let admitted = first {
                group.cancelAll()
                return admitted
            }
            // Timed out: withdraw, unless a slot was handed over at the same moment.
            let withdrawn = state.withLock { s -> (Bool, CheckedContinuation<Bool, Never>?) in
                guard s.rules.withdraw(id: id) else { return (false, nil) }
                guard let c = s.continuations.removeValue(forKey: id) else {
                    s.decided[id] = false // the waiting task has not registered yet: it finds this
                    return (true, nil)
                }
                return (true, c)
            }
            withdrawn.1?.resume(returning: false)
            // Either way the waiting task now finishes with the outcome.
            return await group.next()! ?? false
        }
    }

    /// Frees a slot of `workload`, handing it to the waiters the rules admit.
    func release(_ workload: SessionWorkload = .interactive) {
        let resumed = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            var resumed: [CheckedContinuation<Bool, Never>] = []
            for id in s.rules.release(workload) {
                if let c = s.continuations.removeValue(forKey: id) { resumed.append(c) } else { s.decided[id] = true }
            }
            return resumed
        }
        resumed.forEach { $0.resume(returning: true) }
    }
}
