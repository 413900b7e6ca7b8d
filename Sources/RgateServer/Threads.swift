internal import CRgateSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Plain threads for blocking system calls (accept, recvmsg, poll) that must not occupy the
/// Swift concurrency pool.
enum Thread {
    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {
            // Safe: handed from the creating thread to the new thread exactly once.
            let body: @Sendable () -> Void
            let name: String
            init(_ body: @escaping @Sendable () -> Void, _ name: String) { self.body = body; self.name = name }
        }
        let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            rgs_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create: \(rc)")
        pthread_detach(thread)
    }
}
