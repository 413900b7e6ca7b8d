import Synchronization

/// Bounds the number of concurrent sessions. A connection beyond the bound waits (up to a time
/// limit, in a bounded queue) for a session to end, then is told the server is busy.
final class AdmissionGate: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var active = 0
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int
    let queueLimit: Int

    init(capacity: Int, queueLimit: Int) {
        self.capacity = capacity
        self.queueLimit = queueLimit
    }

    var active: Int { state.withLock { $0.active } }

    /// Takes a slot only if one is free now (and nobody is waiting for one).
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.active < capacity, s.waiters.isEmpty else { return false }
            s.active += 1
            return true
        }
    }

    /// Takes a slot, waiting up to `timeout`; false when none became free (or the queue is full).
    func acquire(timeout: Duration) async -> Bool {
        enum Immediate { case admitted, refused, wait(UInt64) }
        let first = state.withLock { s -> Immediate in
            if s.active < capacity { s.active += 1; return .admitted }
            if s.waiters.count >= queueLimit { return .refused }
            s.nextID += 1
            return .wait(s.nextID)
        }
        guard case .wait(let id) = first else { if case .admitted = first { return true } else { return false } }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let admittedNow = self.state.withLock { s -> Bool in
                        if s.active < self.capacity { s.active += 1; return true }
                        s.waiters.append(Waiter(id: id, continuation: continuation))
                        return false
                    }
                    if admittedNow { continuation.resume(returning: true) }
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
            let waiter = state.withLock { s -> Waiter? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i)
            }
            if let waiter {
                waiter.continuation.resume(returning: false)
                _ = await group.next()
                return false
            }
            return await group.next()! ?? false
        }
    }

    /// Frees a slot, handing it to the longest waiter.
    func release() {
        let waiter = state.withLock { s -> Waiter? in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() } // the slot passes on
            s.active = max(0, s.active - 1)
            return nil
        }
        waiter?.continuation.resume(returning: true)
    }
}
