import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A dedicated thread with a large stack for hosting embedded R inside a multi-threaded program
/// (tests, or an app embedding R next to Swift concurrency).
///
/// R must only ever run on one thread. Start the engine with ``perform(_:)`` and keep using the
/// same `RThread`. Workers do not need this: they run R on their main thread.
public final class RThread: Sendable {
    private struct State: ~Copyable {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }
    private let state = Mutex(State())
    // The condition variable pairs with `state`'s lock only logically: it is signalled after each
    // enqueue and the thread re-checks under the Mutex, so a lost wakeup is impossible.
    private let signal = Semaphore()

    /// Starts the thread.
    /// - Parameter stackSize: the thread's stack; R's C stack check is set from it.
    public init(stackSize: Int = 64 << 20) {
        let box = Unmanaged.passRetained(self)
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, stackSize)
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attr, { arg in
            let me = Unmanaged<RThread>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
        pthread_attr_destroy(&attr)
    }

    /// Runs `body` on the R thread and returns its result.
    public func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            state.withLock { $0.jobs.append { continuation.resume(returning: body()) } }
            signal.post()
        }
    }

    /// Stops the thread after the queued jobs.
    public func stop() {
        state.withLock { $0.stopped = true }
        signal.post()
    }

    private func loop() {
        while true {
            signal.wait()
            let (jobs, stopped) = state.withLock { s -> ([@Sendable () -> Void], Bool) in
                defer { s.jobs.removeAll() }
                return (s.jobs, s.stopped)
            }
            for job in jobs { job() }
            if stopped { return }
        }
    }
}

/// A counting semaphore on sem_t.
final class Semaphore: @unchecked Sendable {
    // Safe: sem_t is designed for concurrent use; the pointer is allocated once and never moved.
    private let sem: UnsafeMutablePointer<sem_t>
    init() {
        sem = .allocate(capacity: 1)
        sem_init(sem, 0, 0)
    }
    deinit {
        sem_destroy(sem)
        sem.deallocate()
    }
    func post() { sem_post(sem) }
    func wait() { while sem_wait(sem) != 0 && errno == EINTR {} }
}
