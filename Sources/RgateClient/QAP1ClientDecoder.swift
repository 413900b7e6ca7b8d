import NIOCore
import RgateQAP1

/// What a QAP1 client reads: first the identification, then messages.
enum QAP1ClientFrame: Sendable {
    case identification([UInt8])
    case frame(QAP1Frame)
}

/// Decodes the server's 32-byte identification (none when resuming a detached session), then
/// QAP1 messages.
struct QAP1ClientDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = QAP1ClientFrame
    private var identified: Bool
    private var messages: QAP1MessageDecoder

    init(maximumPayloadBytes: UInt64, identified: Bool = false) {
        messages = QAP1MessageDecoder(maximumPayloadBytes: maximumPayloadBytes)
        self.identified = identified
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> QAP1ClientFrame? {
        if !identified {
            guard let id = buffer.readBytes(length: 32) else { return nil }
            identified = true
            return .identification(id)
        }
        return try messages.decode(buffer: &buffer).map { .frame($0) }
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> QAP1ClientFrame? {
        try decode(buffer: &buffer)
    }
}
