import NIOCore
import RgateQAP1
import Testing

@Suite("QAP1MessageDecoder framing")
struct MessageDecoderTests {
    /// Runs `decoder` over `chunks` the way NIO's handlers do, then signals EOF.
    func frames(_ chunks: [[UInt8]], decoder: QAP1MessageDecoder = QAP1MessageDecoder()) throws -> [QAP1Frame] {
        let processor = NIOSingleStepByteToMessageProcessor(decoder)
        var frames: [QAP1Frame] = []
        for chunk in chunks {
            try processor.process(buffer: ByteBuffer(bytes: chunk)) { frames.append($0) }
        }
        try processor.finishProcessing(seenEOF: true) { frames.append($0) }
        return frames
    }

    static func wire(_ message: QAP1Message) -> [UInt8] {
        var b = ByteBuffer()
        message.encode(into: &b)
        return Array(b.readableBytesView)
    }

    static func parameters(_ list: [QAP1Parameter]) -> ByteBuffer {
        var b = ByteBuffer()
        for p in list { p.encode(into: &b) }
        return b
    }

    static let messages: [QAP1Message] = [
        QAP1Message(command: .eval, payload: parameters([.string("1+1")])),
        QAP1Message(command: .voidEval, payload: parameters([.string("x <- 1")]), messageID: 7),
        QAP1Message(command: .responseOK),
        QAP1Message(command: .writeFile, payload: parameters([.bytes(ByteBuffer(bytes: (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))])),
        QAP1Message(command: .serEval, payload: ByteBuffer(bytes: [0x58, 0x0a, 0, 0, 0, 3])),
        QAP1Message(command: .error(.rError)),
        QAP1Message(command: .setSEXP, payload: parameters([.string("y"), try! .sexp(.integer([1, 2, 3]))])),
    ]
    static let stream: [UInt8] = messages.flatMap(wire)
    static let expected: [QAP1Frame] = messages.map(QAP1Frame.message)

    /// `bytes` cut into random chunks (sizes 1...maxChunk).
    static func randomChunks(_ bytes: [UInt8], seed: UInt64, maxChunk: Int) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        var chunks: [[UInt8]] = []
        var i = 0
        while i < bytes.count {
            let n = min(Int.random(in: 1...maxChunk, using: &rng), bytes.count - i)
            chunks.append(Array(bytes[i..<i + n]))
            i += n
        }
        return chunks
    }

    @Test func wholeStreamAtOnce() throws {
        #expect(try frames([Self.stream]) == Self.expected)
    }

    @Test func oneByteAtATime() throws {
        #expect(try frames(Self.stream.map { [$0] }) == Self.expected)
    }

    @Test("Random chunks", arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomChunks(seed: UInt64) throws {
        for maxChunk in [3, 17, 100, 5000] {
            #expect(try frames(Self.randomChunks(Self.stream, seed: seed, maxChunk: maxChunk)) == Self.expected)
        }
    }

    @Test("Every split point of a short stream")
    func everySplit() throws {
        let messages = [Self.messages[0], Self.messages[2], Self.messages[1]]
        let stream = messages.flatMap(Self.wire)
        for cut in 0...stream.count {
            #expect(try frames([Array(stream[..<cut]), Array(stream[cut...])]) == messages.map(QAP1Frame.message), "cut at \(cut)")
        }
    }

    @Test("The decoded message is the encoded one: header fields and payload")
    func fields() throws {
        let decoded = try frames([Self.wire(Self.messages[1])])
        guard case .message(let message)? = decoded.first else { Issue.record("no message: \(decoded)"); return }
        #expect(message.header.command == .voidEval)
        #expect(message.header.messageID == 7)
        #expect(message.header.length == UInt64(message.payload.readableBytes))
        #expect(try QAP1Parameter.parse(message.payload).first?.stringValue == "x <- 1")
    }

    @Test("EOF inside a message is ERR_conn_broken", arguments: [1, 15, 16, 20])
    func eofInsideMessage(prefix: Int) throws {
        let bytes = Array(Self.wire(Self.messages[0]).prefix(prefix))
        do {
            let result = try frames([bytes])
            Issue.record("decoded \(result)")
        } catch let error as QAP1Error {
            #expect(error.status == .connectionBroken)
        }
    }

    @Test func eofBetweenMessagesIsClean() throws {
        #expect(try frames([]) == [])
        #expect(try frames([Self.wire(Self.messages[2])]) == [.message(Self.messages[2])])
    }

    // MARK: Oversized messages

    static let small = QAP1Message(command: .eval, payload: parameters([.string("1")]))
    static let big = QAP1Message(command: .eval, payload: ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 1000)))
    static let after = QAP1Message(command: .voidEval, payload: parameters([.string("after")]), messageID: 3)
    static let oversizedStream = wire(small) + wire(big) + wire(after)
    static let oversizedExpected: [QAP1Frame] = [.message(small), .oversized(big.header), .message(after)]

    @Test func oversizedThenNextMessageAtOnce() throws {
        #expect(try frames([Self.oversizedStream], decoder: QAP1MessageDecoder(maximumPayloadBytes: 100)) == Self.oversizedExpected)
    }

    @Test func oversizedOneByteAtATime() throws {
        #expect(try frames(Self.oversizedStream.map { [$0] }, decoder: QAP1MessageDecoder(maximumPayloadBytes: 100)) == Self.oversizedExpected)
    }

    @Test("Oversized payload arriving in random pieces", arguments: [UInt64(11), 12, 13, 14, 15])
    func oversizedRandomChunks(seed: UInt64) throws {
        for maxChunk in [2, 7, 64, 300, 2000] {
            let chunks = Self.randomChunks(Self.oversizedStream, seed: seed, maxChunk: maxChunk)
            #expect(try frames(chunks, decoder: QAP1MessageDecoder(maximumPayloadBytes: 100)) == Self.oversizedExpected)
        }
    }

    @Test("Every split point around an oversized message")
    func oversizedEverySplit() throws {
        let stream = Self.wire(Self.big) + Self.wire(Self.after)
        for cut in 0...stream.count {
            let result = try frames([Array(stream[..<cut]), Array(stream[cut...])], decoder: QAP1MessageDecoder(maximumPayloadBytes: 100))
            #expect(result == [.oversized(Self.big.header), .message(Self.after)], "cut at \(cut)")
        }
    }

    @Test("The oversized payload is skipped, not buffered")
    func oversizedIsNotBuffered() throws {
        var decoder = QAP1MessageDecoder(maximumPayloadBytes: 100)
        let bigWire = Self.wire(Self.big)
        var buffer = ByteBuffer(bytes: bigWire.prefix(16 + 50))
        #expect(try decoder.decode(buffer: &buffer) == .oversized(Self.big.header))
        #expect(buffer.readableBytes == 0)
        buffer.writeBytes(bigWire[66..<500])
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        buffer.writeBytes(bigWire[500...] + Self.wire(Self.after))
        #expect(try decoder.decode(buffer: &buffer) == .message(Self.after))
        #expect(buffer.readableBytes == 0)
    }

    @Test("A payload of exactly the maximum is a message; one more byte is oversized")
    func maximumBoundary() throws {
        let exact = QAP1Message(command: .eval, payload: ByteBuffer(bytes: [UInt8](repeating: 1, count: 100)))
        let over = QAP1Message(command: .eval, payload: ByteBuffer(bytes: [UInt8](repeating: 1, count: 101)))
        let decoder = QAP1MessageDecoder(maximumPayloadBytes: 100)
        #expect(try frames([Self.wire(exact) + Self.wire(over) + Self.wire(exact)], decoder: decoder) == [.message(exact), .oversized(over.header), .message(exact)])
    }

    @Test("A header announcing an absurd (>2^63) length is oversized and swallows the rest")
    func absurdLength() throws {
        let header = QAP1Header(command: .eval, length: .max)
        var b = ByteBuffer()
        header.encode(into: &b)
        let result = try frames([Array(b.readableBytesView) + Self.wire(Self.small)])
        #expect(result == [.oversized(header)])
    }

    @Test("The default maximum is Rserve's maxinbuf, 256 MiB")
    func defaultMaximum() throws {
        #expect(QAP1MessageDecoder().maximumPayloadBytes == 256 << 20)
        // Announcing 1 GiB is reported at once, from the header alone.
        let header = QAP1Header(command: .eval, length: 1 << 30)
        var decoder = QAP1MessageDecoder()
        var b = ByteBuffer()
        header.encode(into: &b)
        #expect(try decoder.decode(buffer: &b) == .oversized(header))
    }
}
