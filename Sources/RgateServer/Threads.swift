internal import CRgateSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Plain threads for blocking system calls (accept, recvmsg, poll) that must not occupy the
/// Swift concurrency pool.
enum Thread {
    private final class Box: Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, _ name: String) { self.body = body; self.name = name }
    }

    /// Starts a joinable thread; ``join(_:)`` it.
    static func start(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            rgs_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create: \(rc)")
        return thread
    }

    /// Starts a thread nobody joins.
    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        pthread_detach(start(name: name, body))
    }

    /// Waits for `thread` to end, without blocking a task's thread (a helper thread joins it).
    static func join(_ thread: pthread_t) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            detach(name: "rgate-join") {
                pthread_join(thread, nil)
                continuation.resume()
            }
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up (for poll timeouts: never wake before the deadline).
    var wholeMillisecondsRoundedUp: Int64 {
        let c = components
        return c.seconds * 1000 + (c.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
