import Synchronization

/// Waits, at most `timeout`, until a condition its owner tracks holds: `park` registers the
/// continuation under the owner's lock (returning true when the condition holds already, and
/// the continuation is then not kept); the owner resumes parked continuations when it holds;
/// at the deadline `unpark` hands back whatever is still parked, which is resumed here.
func awaitCondition(
    timeout: Duration, park: @escaping @Sendable (CheckedContinuation<Void, Never>) -> Bool,
    unpark: @escaping @Sendable () -> [CheckedContinuation<Void, Never>]
) async {
    await withTaskGroup(of: Void.self) { group in
        group.addTask {
            await withCheckedContinuation { continuation in
                if park(continuation) { continuation.resume() }
            }
        }
        group.addTask { try? await Task.sleep(for: timeout) }
        await group.next()
        unpark().forEach { $0.resume() }
        group.cancelAll()
    }
}

/// Tasks waiting for a value that a state machine hands out (an admission slot, a spare
/// process), each by id. The state machine decides who gets what under its own lock; this only
/// delivers: a value decided before its waiter registered is kept until it does, and a waiter
/// that times out (or whose task is cancelled) is withdrawn only if the state machine agrees it
/// was still waiting, so no decided value is ever lost.
final class Waiters<Value: Sendable>: Sendable {
    private struct State {
        var continuations: [UInt64: CheckedContinuation<Value, Never>] = [:]
        var decided: [UInt64: Value] = [:]
    }

    private let state = Mutex(State())

    /// Delivers `value` to waiter `id` (now, or when it registers).
    func resume(_ id: UInt64, with value: Value) {
        let continuation = state.withLock { s -> CheckedContinuation<Value, Never>? in
            if let c = s.continuations.removeValue(forKey: id) { return c }
            s.decided[id] = value
            return nil
        }
        continuation?.resume(returning: value)
    }

    /// Waits for waiter `id`'s value. At `timeout`, or when the task is cancelled, asks
    /// `withdraw` (which must remove the waiter from the state machine and say whether it was
    /// still waiting); if it was, returns `timedOut`, else the value it was given meanwhile.
    func wait(_ id: UInt64, timeout: Duration, timedOut: Value, withdraw: @escaping @Sendable () -> Bool) async -> Value {
        await withTaskGroup(of: Value?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let early = self.state.withLock { s -> Value? in
                        if let v = s.decided.removeValue(forKey: id) { return v }
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
            if let first = await group.next()! {
                group.cancelAll()
                return first
            }
            if withdraw() { resume(id, with: timedOut) }
            // The waiting child finishes with the value decided (or the time-out).
            while let next = await group.next() {
                if let value = next { return value }
            }
            return timedOut
        }
    }
}
