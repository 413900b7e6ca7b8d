import NIOCore
import NIOTestUtils
import RgateText
import Testing

@Suite("The seed's text protocol codec")
struct TextCodecTests {
    func frame(_ code: String, encoding: String = "UTF-8") -> ByteBuffer {
        var b = ByteBuffer()
        b.writeString(encoding + "\n")
        b.writeInteger(UInt64(code.utf8.count), endianness: .little)
        b.writeString(code)
        return b
    }

    func decodeAll(_ bytes: ByteBuffer, chunk: Int, max: Int = 1 << 20) throws -> [TextRequest] {
        var processor = NIOSingleStepByteToMessageProcessor(TextRequestDecoder(maximumCodeBytes: max))
        var out: [TextRequest] = []
        var rest = bytes
        while rest.readableBytes > 0 {
            let piece = rest.readSlice(length: min(chunk, rest.readableBytes))!
            try processor.process(buffer: piece) { out.append($0) }
        }
        try processor.finishProcessing(seenEOF: true) { out.append($0) }
        return out
    }

    @Test(arguments: [1, 2, 3, 7, 64, 4096])
    func requestsDecodeWhateverTheChunking(_ chunk: Int) throws {
        var stream = frame("1+1")
        stream.writeImmutableBuffer(frame("cat('é')", encoding: "latin1;status"))
        stream.writeImmutableBuffer(frame(""))
        let requests = try decodeAll(stream, chunk: chunk)
        #expect(requests.map(\.encodingName) == ["UTF-8", "latin1", "UTF-8"])
        #expect(requests.map { String(buffer: $0.code) } == ["1+1", "cat('é')", ""])
        #expect(requests[1].wantsStatus)
        #expect(!requests[0].wantsStatus)
    }

    @Test func seedClientBytesDecode() throws {
        // Exactly what rpyclient.py sends: encoding, newline, 8-byte LE length, code.
        var b = ByteBuffer(bytes: Array("UTF-8\n".utf8) + [3, 0, 0, 0, 0, 0, 0, 0] + Array("1+1".utf8))
        var decoder = TextRequestDecoder()
        let request = try #require(try decoder.decode(buffer: &b))
        #expect(String(buffer: request.code) == "1+1")
        #expect(b.readableBytes == 0)
    }

    @Test func oversizedLengthIsRefusedBeforeTheCodeArrives() {
        var b = ByteBuffer(string: "UTF-8\n")
        b.writeInteger(UInt64(1) << 40, endianness: .little)
        var decoder = TextRequestDecoder(maximumCodeBytes: 1024)
        #expect(throws: TextProtocolError.self) { try decoder.decode(buffer: &b) }
    }

    @Test func missingEncodingLineIsRefusedWithoutWaitingForever() {
        var b = ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 300))
        var decoder = TextRequestDecoder()
        #expect(throws: TextProtocolError.self) { try decoder.decode(buffer: &b) }
    }

    @Test func truncatedRequestAtEndOfStreamIsAnError() {
        var b = frame("1+1")
        b.moveWriterIndex(to: b.writerIndex - 1)
        var decoder = TextRequestDecoder()
        #expect(throws: TextProtocolError.self) { try decoder.decodeLast(buffer: &b, seenEOF: true) }
    }

    @Test func decoderPassesNIOsVerifier() throws {
        let inputs: [(ByteBuffer, [TextRequest])] = [
            (frame("x <- 1"), [TextRequest(encodingName: "UTF-8", code: ByteBuffer(string: "x <- 1"))]),
            (frame("y", encoding: "latin1"), [TextRequest(encodingName: "latin1", code: ByteBuffer(string: "y"))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: inputs) { TextRequestDecoder() }
    }

    @Test func fuzzedInputNeverCrashesOrHangs() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let count = Int.random(in: 0...300, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { bytes.insert(contentsOf: Array("UTF-8\n".utf8), at: 0) }
            var b = ByteBuffer(bytes: bytes)
            var decoder = TextRequestDecoder(maximumCodeBytes: 1 << 16)
            var guardCount = 0
            while guardCount < 100, (try? decoder.decode(buffer: &b)) != nil { guardCount += 1 }
            _ = try? decoder.decodeLast(buffer: &b, seenEOF: true)
            #expect(guardCount < 100)
        }
    }

    @Test func repliesRoundTrip() throws {
        var b = ByteBuffer()
        TextReply(body: ByteBuffer(string: "rgate-status: ok\n[1] 2\n")).encode(into: &b)
        var decoder = TextReplyDecoder()
        let reply = try #require(try decoder.decode(buffer: &b))
        let text = String(buffer: reply.body)
        #expect(TextReply.splitStatus(text)! == ("ok", "[1] 2\n"))
    }
}

@Suite("Text encodings (iconv)")
struct TextEncodingTests {
    @Test(arguments: ["UTF-8", "utf8", "utf-8", "latin1", "ISO-8859-1", "ISO8859-1", "latin-1", "CP1252", "ascii"])
    func knownNames(_ name: String) throws {
        _ = try TextEncoding(named: name)
    }

    @Test func unknownEncodingIsRefused() {
        #expect(throws: TextProtocolError.self) { try TextEncoding(named: "KLINGON-8") }
    }

    @Test func latin1BothWays() throws {
        let latin1 = try TextEncoding(named: "latin1")
        #expect(try latin1.decodeToUTF8(ByteBuffer(bytes: [0x63, 0x61, 0x66, 0xE9])) == Array("café".utf8))
        #expect(Array(latin1.encode("café").readableBytesView) == [0x63, 0x61, 0x66, 0xE9])
        // Characters latin1 cannot hold become '?', not an error.
        #expect(String(buffer: latin1.encode("✓ ok")) == "? ok")
    }

    @Test func invalidUTF8IsReportedWithItsOffset() {
        do {
            _ = try TextEncoding.utf8.decodeToUTF8(ByteBuffer(bytes: [0x31, 0x2B, 0xC3, 0x28]))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidText)
            #expect(error.offset == 2)
        }
        // Overlong forms and surrogates are invalid too.
        #expect(throws: TextProtocolError.self) { try TextEncoding.utf8.decodeToUTF8(ByteBuffer(bytes: [0xC0, 0xAF])) }
        #expect(throws: TextProtocolError.self) { try TextEncoding.utf8.decodeToUTF8(ByteBuffer(bytes: [0xED, 0xA0, 0x80])) }
    }
}
