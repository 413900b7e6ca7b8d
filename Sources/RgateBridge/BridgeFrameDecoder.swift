public import NIOCore

/// Decodes data-plane frames one at a time. The payload length is checked against the maximum
/// before anything is buffered; a frame of a type this side does not accept, or whose payload
/// does not decode, is an error (the data plane is between two rgate processes: a bad frame
/// means a bug or a hostile session, and the stream is not resynchronised).
public struct BridgeFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = BridgeFrame

    /// Which frames this side accepts.
    public enum Side: Sendable, Hashable {
        /// The session process: requests only.
        case session
        /// The supervisor: replies only.
        case supervisor
    }

    /// The largest payload accepted.
    public var maximumPayloadBytes: UInt64
    /// Which side decodes.
    public let side: Side

    /// Creates a decoder for `side`.
    public init(side: Side, maximumPayloadBytes: UInt64) {
        self.side = side
        self.maximumPayloadBytes = maximumPayloadBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> BridgeFrame? {
        try decodeFrame(buffer: &buffer)
    }

    /// ``decode(buffer:)`` with the error typed.
    public mutating func decodeFrame(buffer: inout ByteBuffer) throws(BridgeError) -> BridgeFrame? {
        guard let header = try BridgeHeader.peek(buffer) else { return nil }
        switch side {
        case .session where !header.type.isRequest, .supervisor where header.type != .reply:
            throw BridgeError(.unexpectedFrame, "a \(header.type) frame is not accepted here", offset: 1)
        default:
            break
        }
        guard header.length <= maximumPayloadBytes else {
            throw BridgeError(.tooLarge, "a \(header.length)-byte \(header.type) frame exceeds the limit of \(maximumPayloadBytes) bytes", offset: 8)
        }
        guard UInt64(buffer.readableBytes - BridgeHeader.size) >= header.length else { return nil }
        var frame = buffer
        frame.moveReaderIndex(forwardBy: BridgeHeader.size)
        let payload = frame.readSlice(length: Int(header.length))!
        let body: BridgeFrame.Body = header.type == .reply
            ? .reply(try BridgeReply(payload: payload))
            : .request(try BridgeRequest(type: header.type, payload: payload))
        buffer.moveReaderIndex(forwardBy: BridgeHeader.size + Int(header.length))
        return BridgeFrame(requestID: header.requestID, body: body)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> BridgeFrame? {
        if let frame = try decodeFrame(buffer: &buffer) { return frame }
        if seenEOF && buffer.readableBytes > 0 {
            throw BridgeError(.truncated, "the stream ended inside a frame (\(buffer.readableBytes) bytes buffered)")
        }
        return nil
    }
}
