public import NIOCore

/// Decodes text-protocol replies (8-byte little-endian length, then the text), for clients.
public struct TextReplyDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = TextReply

    /// The largest reply accepted.
    public var maximumReplyBytes: Int

    /// Creates a decoder.
    public init(maximumReplyBytes: Int = 1 << 30) {
        self.maximumReplyBytes = maximumReplyBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> TextReply? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt64.self) else { return nil }
        guard length <= UInt64(maximumReplyBytes) else {
            throw TextProtocolError(.requestTooLarge, "the reply announces \(length) bytes; the limit is \(maximumReplyBytes)")
        }
        guard buffer.readableBytes >= 8 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 8)
        return TextReply(body: buffer.readSlice(length: Int(length))!)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> TextReply? {
        if let reply = try decode(buffer: &buffer) { return reply }
        if seenEOF && buffer.readableBytes > 0 {
            throw TextProtocolError(.truncated, "the connection closed in the middle of a reply")
        }
        return nil
    }
}
