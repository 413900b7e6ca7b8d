import NIOCore
import RgateIPC
#if canImport(Glibc)
import Glibc
#endif

/// Blocking I/O on a client socket inside a session process.
struct ClientConnection {
    let descriptor: Int32

    enum ReadResult {
        case data(Int)
        case eof
        case timedOut
        case failed(Int32)
    }

    /// Reads available bytes into `buffer`, waiting at most the socket's receive timeout
    /// (SO_RCVTIMEO, set once per connection by ``setIdleTimeout(milliseconds:)``): one system
    /// call per read.
    func read(into buffer: inout ByteBuffer) -> ReadResult {
        var result: Int = 0
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 << 10) { ptr in
            repeat { result = Glibc.read(descriptor, ptr.baseAddress, ptr.count) } while result < 0 && errno == EINTR
            if result < 0 { failure = errno }
            return max(result, 0)
        }
        if result > 0 { return .data(result) }
        if result == 0 { return .eof }
        return failure == EAGAIN || failure == EWOULDBLOCK ? .timedOut : .failed(failure)
    }

    /// Writes `buffer` with external blocks spliced in at their offsets, in one writev when
    /// possible; false when the peer is gone or the send timeout passed.
    func writeAll(_ buffer: ByteBuffer, splicing external: [(offset: Int, data: UnsafeRawBufferPointer)]) -> Bool {
        if external.isEmpty { return writeAll(buffer) }
        return buffer.withUnsafeReadableBytes { raw in
            var pieces: [UnsafeRawBufferPointer] = []
            var last = 0
            for (offset, data) in external {
                if offset > last { pieces.append(UnsafeRawBufferPointer(rebasing: raw[last..<offset])) }
                pieces.append(data)
                last = offset
            }
            if last < raw.count { pieces.append(UnsafeRawBufferPointer(rebasing: raw[last...])) }
            var index = 0
            var skip = 0 // bytes of pieces[index] already sent
            while index < pieces.count {
                var iov: [iovec] = []
                for i in index..<min(pieces.count, index + 64) {
                    let p = pieces[i]
                    let start = i == index ? skip : 0
                    iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: p.baseAddress! + start), iov_len: p.count - start))
                }
                // sendmsg rather than writev: MSG_NOSIGNAL, so a vanished peer is an error, not SIGPIPE.
                var n = iov.withUnsafeMutableBufferPointer { vectors -> Int in
                    var message = msghdr()
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = vectors.count
                    return sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL))
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                while n > 0 && index < pieces.count {
                    let left = pieces[index].count - skip
                    if n >= left { n -= left; index += 1; skip = 0 } else { skip += n; n = 0 }
                }
            }
            return true
        }
    }

    /// A connection to this process itself, for a zygote's warm-up: `requests` are already
    /// waiting on it, and once they are read the next read times out (the peer stays open, so
    /// evaluations are not cancelled as for a client that hung up). Replies go to `peer`'s buffer
    /// (keep them small: a write waits at most 2 s). Close both when done.
    static func warmUpPair(requests: ByteBuffer) -> (session: ClientConnection, peer: Int32)? {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return nil }
        let session = ClientConnection(descriptor: fds[0])
        session.setIdleTimeout(milliseconds: 20)
        var send = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &send, socklen_t(MemoryLayout<timeval>.size))
        guard ClientConnection(descriptor: fds[1]).writeAll(requests) else {
            close(fds[0])
            close(fds[1])
            return nil
        }
        return (session, fds[1])
    }

    /// The assignment a zygote's warm-up session serves its own requests under.
    static func warmUpAssignment(_ wireProtocol: WireProtocol) -> SessionAssignment {
        SessionAssignment(
            sessionID: 0, wireProtocol: wireProtocol, evalTimeoutMilliseconds: 60_000, killGraceMilliseconds: 1000,
            idleTimeoutMilliseconds: 10_000, maxRequestBytes: 1 << 20, maxOutputBytes: 1 << 20, sharedSession: false)
    }

    /// Makes reads give up after `milliseconds` without data (0: wait forever).
    func setIdleTimeout(milliseconds: UInt32) {
        var tv = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `buffer`; false when the peer is gone or the send timeout passed.
    @discardableResult
    func writeAll(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}

extension ByteBuffer {
    /// A buffer with storage of its own, for sessions. `ByteBuffer()` shares one empty storage
    /// object, made in the zygote: a session taking a reference to it writes its reference
    /// count, and so gets a private copy of its page.
    static func fresh(capacity: Int = 256) -> ByteBuffer {
        ByteBufferAllocator().buffer(capacity: max(capacity, 1))
    }
}
