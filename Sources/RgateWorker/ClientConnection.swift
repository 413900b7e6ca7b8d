import NIOCore
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

    /// Waits up to `timeoutMilliseconds` (0 = forever) for bytes and appends them to `buffer`.
    func read(into buffer: inout ByteBuffer, timeoutMilliseconds: UInt32) -> ReadResult {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let rc = poll(&pfd, 1, timeoutMilliseconds == 0 ? -1 : Int32(clamping: timeoutMilliseconds))
            if rc == 0 { return .timedOut }
            if rc < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            break
        }
        var result: Int = 0
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 << 10) { ptr in
            repeat { result = Glibc.read(descriptor, ptr.baseAddress, ptr.count) } while result < 0 && errno == EINTR
            if result < 0 { failure = errno }
            return max(result, 0)
        }
        if result > 0 { return .data(result) }
        return result == 0 ? .eof : .failed(failure)
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
