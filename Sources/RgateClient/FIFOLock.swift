import NIOCore
import Synchronization

/// An async lock granted in arrival order, guarding a value.
///
/// ``withLock(_:)`` suspends (it never blocks a thread) until every earlier caller has released
/// the lock, then lends the value to its body. A release hands the lock straight to the oldest
/// waiter, so a late arrival cannot overtake the queue. A caller cancelled while it waits leaves
/// the queue at once with `CancellationError` and never runs its body; a caller that already
/// holds the lock is not interrupted (its body sees the cancellation and decides).
///
/// An uncontended lock costs one `Mutex` round trip to take and one to release, with no
/// suspension.
final class FIFOLock<Value: Sendable>: Sendable {
    private struct Waiter: Sendable {
        let ticket: UInt64
        let continuation: CheckedContinuation<Value, any Error>
    }

    private struct State: Sendable {
        /// The guarded value; while the lock is held, the holder's copy is the current one.
        var value: Value
        var held = false
        var waiters = CircularBuffer<Waiter>()
        var lastTicket: UInt64 = 0
    }

    private let state: Mutex<State>

    init(_ value: Value) {
        state = Mutex(State(value: value))
    }

    /// How many callers are queued (for tests and diagnostics).
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Waits for the lock, runs `body` with the value, stores the value back and releases the
    /// lock (also when `body` throws).
    /// - Throws: `CancellationError` when the task is cancelled while waiting; whatever `body` throws.
    func withLock<R>(_ body: (inout Value) async throws -> R) async throws -> R {
        var value = try await acquire()
        defer { release(value) }
        return try await body(&value)
    }

    private enum Entry {
        case acquired(Value)
        case queue(ticket: UInt64)
    }

    private func acquire() async throws -> Value {
        let entry = state.withLock { state -> Entry in
            if !state.held {
                state.held = true
                return .acquired(state.value)
            }
            state.lastTicket &+= 1
            return .queue(ticket: state.lastTicket)
        }
        let ticket: UInt64
        switch entry {
        case .acquired(let value): return value
        case .queue(let queued): ticket = queued
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let immediate = state.withLock { state -> Result<Value, any Error>? in
                    if !state.held {
                        // Released since we looked, with nobody queued.
                        state.held = true
                        return .success(state.value)
                    }
                    // Checked under the mutex: a cancellation either happened before (seen here)
                    // or its handler runs after we are queued (and finds us).
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters.append(Waiter(ticket: ticket, continuation: continuation))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                // Absent when the lock was already handed to this waiter: it then proceeds.
                guard let index = state.waiters.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func release(_ value: Value) {
        let next = state.withLock { state -> Waiter? in
            state.value = value
            guard let next = state.waiters.popFirst() else {
                state.held = false
                return nil
            }
            return next  // The lock stays held: it passes to `next`.
        }
        next?.continuation.resume(returning: value)
    }
}
