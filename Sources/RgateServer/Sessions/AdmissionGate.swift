import RgateBridge
import Synchronization

/// Bounds the number of concurrent sessions (``AdmissionState`` holds the rules). A request for
/// a session beyond the bound waits (up to a time limit, in a bounded queue) for a session to
/// end, then is told the server is busy.
final class AdmissionGate: Sendable {
    private struct State {
        var rules: AdmissionState
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    private let waiters = Waiters<Bool>()
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
        case .wait:
            return await waiters.wait(id, timeout: timeout, timedOut: false) { self.state.withLock { $0.rules.withdraw(id: id) } }
        }
    }

    /// Frees a slot of `workload`, handing it to the waiters the rules admit.
    func release(_ workload: SessionWorkload = .interactive) {
        for id in state.withLock({ $0.rules.release(workload) }) { waiters.resume(id, with: true) }
    }
}
