// Active once the test target depends on NIOTestUtils:
//     .product(name: "NIOTestUtils", package: "swift-nio")
#if canImport(NIOTestUtils)
import NIOCore
import NIOTestUtils
import RgateQAP1
import Testing

@Suite("QAP1MessageDecoder under NIO's ByteToMessageDecoderVerifier")
struct MessageDecoderVerifierTests {
    @Test func verifier() throws {
        // The small messages only: the verifier feeds every input byte by byte in several ways.
        let pairs = MessageDecoderTests.messages.filter { $0.payload.readableBytes < 1000 }.map { message in
            (ByteBuffer(bytes: MessageDecoderTests.wire(message)), [QAP1Frame.message(message)])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { QAP1MessageDecoder() }
    }

    @Test func verifierWithOversizedMessages() throws {
        let big = MessageDecoderTests.big
        let after = MessageDecoderTests.after
        let pairs: [(ByteBuffer, [QAP1Frame])] = [
            (ByteBuffer(bytes: MessageDecoderTests.wire(big) + MessageDecoderTests.wire(after)), [.oversized(big.header), .message(after)]),
            (ByteBuffer(bytes: MessageDecoderTests.wire(MessageDecoderTests.small)), [.message(MessageDecoderTests.small)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { QAP1MessageDecoder(maximumPayloadBytes: 100) }
    }
}
#endif
