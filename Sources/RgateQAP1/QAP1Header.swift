public import NIOCore

/// The 16-byte header of every QAP1 message: command, 64-bit payload length (split in two
/// 32-bit halves) and the message id. All little-endian.
public struct QAP1Header: Sendable, Hashable {
    /// The command (request) or response code.
    public var command: QAP1Command
    /// The payload's length in bytes.
    public var length: UInt64
    /// The message id (0 unless the peer enabled ids; pyRserve requires 0).
    public var messageID: UInt32

    /// The header's size on the wire.
    public static let size = 16

    /// Creates a header.
    public init(command: QAP1Command, length: UInt64, messageID: UInt32 = 0) {
        self.command = command
        self.length = length
        self.messageID = messageID
    }

    /// Reads a header at the reader index without consuming it; nil when fewer than 16 bytes.
    public static func peek(_ buffer: ByteBuffer) -> QAP1Header? {
        let i = buffer.readerIndex
        guard buffer.readableBytes >= size,
              let cmd = buffer.getInteger(at: i, endianness: .little, as: UInt32.self),
              let low = buffer.getInteger(at: i + 4, endianness: .little, as: UInt32.self),
              let id = buffer.getInteger(at: i + 8, endianness: .little, as: UInt32.self),
              let high = buffer.getInteger(at: i + 12, endianness: .little, as: UInt32.self)
        else { return nil }
        return QAP1Header(command: QAP1Command(rawValue: cmd), length: UInt64(high) << 32 | UInt64(low), messageID: id)
    }

    /// Writes the header.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(command.rawValue, endianness: .little)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length), endianness: .little)
        buffer.writeInteger(messageID, endianness: .little)
        buffer.writeInteger(UInt32(truncatingIfNeeded: length >> 32), endianness: .little)
    }
}

/// One QAP1 message: a header and its payload.
public struct QAP1Message: Sendable, Hashable {
    /// The header.
    public var header: QAP1Header
    /// The payload (exactly `header.length` bytes).
    public var payload: ByteBuffer

    /// Creates a message; the header's length is taken from the payload.
    public init(command: QAP1Command, payload: ByteBuffer = ByteBuffer(), messageID: UInt32 = 0) {
        header = QAP1Header(command: command, length: UInt64(payload.readableBytes), messageID: messageID)
        self.payload = payload
    }

    /// Creates a message from a decoded header and payload.
    public init(header: QAP1Header, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// Writes header and payload contiguously (clients read the header in one read).
    public func encode(into buffer: inout ByteBuffer) {
        header.encode(into: &buffer)
        buffer.writeImmutableBuffer(payload)
    }
}

/// The 32-byte identification a QAP1 server sends on accept.
public enum QAP1Identification {
    /// `Rsrv0103QAP1\r\n\r\n` followed by 16 attribute bytes (`-` filler, `ARuc`/`ARpt` for
    /// authentication, `K` + salt), exactly as Rserve builds it.
    public static func make(authRequired: Bool = false, plainText: Bool = false, salt: String? = nil, tls: Bool = false) -> [UInt8] {
        var bytes = Array("Rsrv0103QAP1\r\n\r\n--------------\r\n".utf8)
        if authRequired {
            if let salt, salt.utf8.count == 2 {
                bytes.replaceSubrange(16..<20, with: Array("ARuc".utf8))
                bytes.replaceSubrange(20..<24, with: Array(("K" + salt + " ").utf8))
                if plainText { bytes.replaceSubrange(24..<28, with: Array("ARpt".utf8)) }
            } else {
                bytes.replaceSubrange(16..<20, with: Array("ARpt".utf8))
            }
        }
        if tls, let slot = stride(from: 16, to: 32, by: 4).first(where: { bytes[$0] == UInt8(ascii: "-") }) {
            bytes.replaceSubrange(slot..<slot + 4, with: Array("TLS\n".utf8))
        }
        return bytes
    }
}
