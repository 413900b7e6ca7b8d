#if canImport(Glibc)
import Glibc
#endif

/// The sockets of Rserve's detach and attach: a listener beside the client's connection, and
/// the wait for the client that comes back with the key.
enum DetachListener {
    /// A listening socket on the local address of `descriptor`, its port, and the peer's address.
    /// - Parameter socket: an unbound socket to use (made before the session left the host's network).
    static func listenBesides(_ descriptor: Int32, socket premade: Int32? = nil) -> (Int32, Int, [UInt8])? {
        var local = sockaddr_storage(), peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size), peerLength = length
        let ok = withUnsafeMutablePointer(to: &local) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        } == 0 && withUnsafeMutablePointer(to: &peer) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &peerLength) }
        } == 0
        guard ok else { return nil }
        let family = Int32(local.ss_family)
        let fd = premade ?? socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var bindAddress = local
        // Port 0: any free port on the same address.
        withUnsafeMutablePointer(to: &bindAddress) { p in
            if family == AF_INET6 {
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port = 0 }
            } else {
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port = 0 }
            }
        }
        let bound = withUnsafePointer(to: &bindAddress) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { close(fd); return nil }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let port: Int = withUnsafePointer(to: &actual) { p in
            family == AF_INET6
                ? p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                : p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (fd, port, hostBytes(peer))
    }

    static func hostBytes(_ address: sockaddr_storage) -> [UInt8] {
        var a = address
        return withUnsafePointer(to: &a) { p in
            if Int32(address.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
        }
    }

    /// Waits for a connection from `peer` that sends `key`; other connections are dropped.
    static func awaitAttach(listener: Int32, key: [UInt8], peer: [UInt8], timeoutMilliseconds: UInt32) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(min(timeoutMilliseconds, UInt32(Int32.max))))
        while clock.now < deadline {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let left = deadline - clock.now
            let ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&pfd, 1, max(ms, 1)) > 0 else { continue }
            var from = sockaddr_storage()
            var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &fromLength) }
            }
            guard fd >= 0 else { continue }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var received = [UInt8](repeating: 0, count: 32)
            var got = 0
            while got < 32 {
                let n = received[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                got += n
            }
            if got == 32, received == key, hostBytes(from) == peer {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            close(fd)
        }
        return nil
    }
}
