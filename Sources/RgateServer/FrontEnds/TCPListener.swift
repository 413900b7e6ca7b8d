internal import CRgateSystem
import RgateIPC
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket served by blocking accept() on its own thread.
final class TCPListener: Sendable {
    let descriptor: Int32
    /// The bound address, e.g. "127.0.0.1:8080" (with the real port when 0 was asked for).
    let address: String
    let port: Int

    init(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let info = result else {
            throw SystemError("cannot resolve listen address \(host): \(String(cString: gai_strerror(rc)))", errno: EINVAL)
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = SystemError("cannot listen on \(host):\(port)")
            close(fd)
            throw error
        }
        guard listen(fd, 1024) == 0 else {
            let error = SystemError("listen")
            close(fd)
            throw error
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let family = storage.ss_family
        let boundPort: Int = withUnsafePointer(to: &storage) { ptr in
            if family == sa_family_t(AF_INET6) {
                return ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        descriptor = fd
        self.port = boundPort
        address = host.contains(":") ? "[\(host)]:\(boundPort)" : "\(host):\(boundPort)"
    }

    /// Accepted client sockets, until ``shutdown()``.
    /// - Parameter fastPath: tried on the accept thread first; when it takes the connection
    ///   (returns true), the connection is not yielded to the stream.
    func connections(fastPath: @escaping @Sendable (Int32) -> Bool = { _ in false }) -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        Thread.detach(name: "rgate-accept") { [descriptor] in
            while true {
                let client = rgs_accept(descriptor)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                        if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                        continue
                    }
                    break
                }
                if fastPath(client) { continue }
                if case .terminated = continuation.yield(client) {
                    close(client)
                    break
                }
            }
            continuation.finish()
        }
        return stream
    }

    /// Stops accepting; pending accept() calls return.
    func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }
}
