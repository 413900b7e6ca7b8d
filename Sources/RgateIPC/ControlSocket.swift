internal import CRgateSystem
#if canImport(Glibc)
import Glibc
#endif

/// One end of a SOCK_SEQPACKET unix socket carrying ``ControlMessage``s and descriptors.
///
/// Blocking; owned by one thread at a time. Closing is explicit (``close()``).
public struct ControlSocket: Sendable, Hashable {
    /// The descriptor.
    public let descriptor: Int32

    /// Wraps an open descriptor.
    public init(descriptor: Int32) { self.descriptor = descriptor }

    /// A connected pair (close-on-exec).
    public static func pair() throws(SystemError) -> (ControlSocket, ControlSocket) {
        var fds: (Int32, Int32) = (-1, -1)
        let ok = withUnsafeMutableBytes(of: &fds) { raw in
            socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, raw.baseAddress!.assumingMemoryBound(to: Int32.self))
        }
        guard ok == 0 else { throw SystemError("socketpair") }
        return (ControlSocket(descriptor: fds.0), ControlSocket(descriptor: fds.1))
    }

    /// Sends a message, with a descriptor when `passing` is given.
    public func send(_ message: ControlMessage, passing fd: Int32? = nil) throws(SystemError) {
        let bytes = message.encoded()
        let sent = bytes.withUnsafeBytes { rgs_send_with_fd(descriptor, $0.baseAddress, $0.count, fd ?? -1) }
        guard sent == bytes.count else { throw SystemError("sendmsg") }
    }

    /// Receives the next message and the descriptor sent with it, or `nil` at end of stream.
    public func receive() throws(SystemError) -> (message: ControlMessage, descriptor: Int32?)? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ControlMessage.maximumSize, alignment: 8)
        defer { buffer.deallocate() }
        guard let (bytes, fd) = try receiveRaw(into: buffer) else { return nil }
        do {
            return (try ControlMessage(decoding: Array(bytes)), fd)
        } catch {
            if let fd { Glibc.close(fd) }
            throw SystemError("bad control message: \(error)", errno: EPROTO)
        }
    }

    /// Receives the next message into `buffer` (reused by the caller; a message longer than the
    /// buffer arrives cut to its size): the raw bytes and the descriptor sent with them,
    /// `nil` at end of stream. Allocates nothing, for the zygote's loop (every page the zygote
    /// writes between forks is copied once more per session); decode with
    /// ``ControlMessage/init(decoding:)`` or ``ControlMessage/spawnCount(in:)``.
    public func receiveRaw(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> (bytes: UnsafeRawBufferPointer, descriptor: Int32?)? {
        var fd: Int32 = -1
        let n = rgs_recv_with_fd(descriptor, buffer.baseAddress, buffer.count, &fd)
        if n < 0 { throw SystemError("recvmsg") }
        if n == 0 {
            if fd >= 0 { Glibc.close(fd) }
            return nil
        }
        return (UnsafeRawBufferPointer(rebasing: buffer[0..<n]), fd >= 0 ? fd : nil)
    }

    /// Sends ``ControlMessage/spawned(pid:)`` with `fd`, encoded on the stack (no allocation;
    /// the zygote's loop).
    public func sendSpawned(pid: Int32, passing fd: Int32) throws(SystemError) {
        try sendInPlace(tag: ControlMessage.spawnedTag, pid, nil, passing: fd)
    }

    /// Sends ``ControlMessage/exited(pid:waitStatus:)``, encoded on the stack (no allocation;
    /// the zygote's loop).
    public func sendExited(pid: Int32, waitStatus: Int32) throws(SystemError) {
        try sendInPlace(tag: ControlMessage.exitedTag, pid, waitStatus, passing: -1)
    }

    /// A tag and one or two little-endian Int32s, as ``ControlMessage/encoded()`` writes them.
    private func sendInPlace(tag: UInt8, _ a: Int32, _ b: Int32?, passing fd: Int32) throws(SystemError) {
        let x = UInt32(bitPattern: a), y = UInt32(bitPattern: b ?? 0)
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            tag, UInt8(truncatingIfNeeded: x), UInt8(truncatingIfNeeded: x >> 8), UInt8(truncatingIfNeeded: x >> 16),
            UInt8(truncatingIfNeeded: x >> 24), UInt8(truncatingIfNeeded: y), UInt8(truncatingIfNeeded: y >> 8),
            UInt8(truncatingIfNeeded: y >> 16), UInt8(truncatingIfNeeded: y >> 24))
        let count = b == nil ? 5 : 9
        let sent = withUnsafeBytes(of: &bytes) { rgs_send_with_fd(descriptor, $0.baseAddress, count, fd) }
        guard sent == count else { throw SystemError("sendmsg") }
    }

    /// Closes the descriptor.
    public func close() { _ = Glibc.close(descriptor) }
}

/// A failed system call, with errno.
public struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The call or operation.
    public var operation: String
    /// errno at the time.
    public var errno: Int32

    /// Captures `errno` now unless given.
    public init(_ operation: String, errno code: Int32? = nil) {
        self.operation = operation
        self.errno = code ?? Glibc.errno
    }

    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}
