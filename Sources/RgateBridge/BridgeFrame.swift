public import NIOCore

/// One data-plane frame: a request or a reply, with its request id.
public struct BridgeFrame: Sendable, Hashable {
    /// What a frame carries.
    public enum Body: Sendable, Hashable {
        /// Supervisor → session.
        case request(BridgeRequest)
        /// Session → supervisor.
        case reply(BridgeReply)
    }

    /// The request this frame is, or answers.
    public var requestID: UInt32
    /// The request or reply.
    public var body: Body

    /// Creates a frame.
    public init(requestID: UInt32, body: Body) {
        self.requestID = requestID
        self.body = body
    }

    /// A request frame.
    public static func request(_ request: BridgeRequest, id: UInt32) -> BridgeFrame {
        BridgeFrame(requestID: id, body: .request(request))
    }

    /// A reply frame.
    public static func reply(_ reply: BridgeReply, id: UInt32) -> BridgeFrame {
        BridgeFrame(requestID: id, body: .reply(reply))
    }

    /// Writes the frame: header, then payload (the length is filled in after the payload).
    public func encode(into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        let type: BridgeFrameType
        switch body {
        case .request(let r): type = r.frameType
        case .reply: type = .reply
        }
        BridgeHeader(type: type, requestID: requestID, length: 0).encode(into: &buffer)
        let payloadStart = buffer.writerIndex
        switch body {
        case .request(let r): r.encodePayload(into: &buffer)
        case .reply(let r): r.encodePayload(into: &buffer)
        }
        buffer.setInteger(UInt64(buffer.writerIndex - payloadStart), at: start + 8, endianness: .little)
    }

    /// The frame's bytes.
    public var encoded: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        encode(into: &buffer)
        return buffer
    }
}
