import Synchronization

/// Named one-shot events between the tests and the fake server ("received x", "release x").
/// A wait for an event that has fired returns at once; a cancelled wait returns too.
final class Signals: Sendable {
    private struct State {
        var fired: Set<String> = []
        var waiters: [String: [(ticket: Int, continuation: CheckedContinuation<Void, Never>)]] = [:]
        var lastTicket = 0
    }

    private let state = Mutex(State())

    func fire(_ name: String) {
        let waiters = state.withLock { state in
            state.fired.insert(name)
            return state.waiters.removeValue(forKey: name) ?? []
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    func wait(_ name: String) async {
        let ticket = state.withLock { state in
            state.lastTicket += 1
            return state.lastTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    if state.fired.contains(name) || Task.isCancelled { return true }
                    state.waiters[name, default: []].append((ticket, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> (ticket: Int, continuation: CheckedContinuation<Void, Never>)? in
                guard let index = state.waiters[name]?.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return state.waiters[name]?.remove(at: index)
            }
            waiter?.continuation.resume()
        }
    }
}
