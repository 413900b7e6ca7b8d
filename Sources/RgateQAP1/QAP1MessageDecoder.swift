public import NIOCore

/// What the message decoder produces.
public enum QAP1Frame: Sendable, Hashable {
    /// A complete message.
    case message(QAP1Message)
    /// A message whose payload exceeds the maximum: its payload is skipped without buffering,
    /// and the server answers `ERR_data_overflow` (the connection stays usable, as with Rserve).
    case oversized(QAP1Header)
}

/// Decodes QAP1 messages one frame at a time; the payload length is checked against the
/// maximum before anything is buffered.
public struct QAP1MessageDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = QAP1Frame

    /// The largest payload accepted (Rserve's `maxinbuf`, 256 MiB by default).
    public var maximumPayloadBytes: UInt64
    private var skipping: UInt64 = 0

    /// Creates a decoder.
    public init(maximumPayloadBytes: UInt64 = 256 << 20) {
        self.maximumPayloadBytes = maximumPayloadBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> QAP1Frame? {
        if skipping > 0 {
            let n = Int(min(UInt64(buffer.readableBytes), skipping))
            buffer.moveReaderIndex(forwardBy: n)
            skipping -= UInt64(n)
            if skipping > 0 { return nil }
        }
        guard let header = QAP1Header.peek(buffer) else { return nil }
        if header.length > maximumPayloadBytes {
            buffer.moveReaderIndex(forwardBy: QAP1Header.size)
            skipping = header.length
            let n = Int(min(UInt64(buffer.readableBytes), skipping))
            buffer.moveReaderIndex(forwardBy: n)
            skipping -= UInt64(n)
            return .oversized(header)
        }
        guard UInt64(buffer.readableBytes - QAP1Header.size) >= header.length else { return nil }
        buffer.moveReaderIndex(forwardBy: QAP1Header.size)
        let payload = buffer.readSlice(length: Int(header.length))!
        return .message(QAP1Message(header: header, payload: payload))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> QAP1Frame? {
        if let frame = try decode(buffer: &buffer) { return frame }
        if seenEOF && buffer.readableBytes > 0 {
            throw QAP1Error(.connectionBroken, "the connection closed inside a message (\(buffer.readableBytes) bytes buffered)")
        }
        return nil
    }
}
