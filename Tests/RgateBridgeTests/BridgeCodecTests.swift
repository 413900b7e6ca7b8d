import NIOCore
import NIOTestUtils
import RgateBridge
import Testing

/// Sample frames that reach every field of the codec.
enum Samples {
    static func value(_ format: BridgeValueFormat, _ bytes: [UInt8]) -> BridgeValue {
        BridgeValue(format: format, bytes: ByteBuffer(bytes: bytes))
    }

    static let requests: [BridgeRequest] = [
        .evaluate(code: ByteBuffer(string: "x <- 1:10\nsum(x)"), format: .qap1, transcript: true),
        .evaluate(code: ByteBuffer(), format: .none, transcript: false),
        .call(function: "score", arguments: [
            BridgeArgument(label: nil, value: value(.qap1, [1, 2, 3])),
            BridgeArgument(label: "weights", value: value(.rds, Array("X\n".utf8))),
        ], format: .rds),
        .call(function: "f", arguments: [], format: .print),
        .assign(name: "d", value: value(.rds, [0x58, 0x0a, 0, 0, 0, 3])),
        .fetch(name: "mtcars", format: .print),
        .listObjects,
        .cancel,
    ]

    static var replies: [BridgeReply] {
        var ok = BridgeReply()
        ok.visible = true
        ok.durationMicroseconds = 1234
        ok.console = [BridgeConsoleChunk(isStderr: false, text: "[1] 55\n"), BridgeConsoleChunk(isStderr: true, text: "Warning message:\nhé\n")]
        ok.warnings = [BridgeCondition(message: "NAs introduced", call: "f(x)"), BridgeCondition(message: "top", call: nil)]
        ok.messages = ["hello\n"]
        ok.plots = [value(.init(rawValue: 16), [0x89, 0x50])]
        ok.value = value(.qap1, [0x21, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x4b, 0x40])
        var failed = BridgeReply()
        failed.failure = BridgeFailure(code: .rError, message: "boom", call: "stop(\"boom\")", classes: ["simpleError", "error", "condition"])
        failed.consoleTruncated = true
        var listed = BridgeReply()
        listed.objects = [BridgeObjectInfo(name: "x", classes: ["integer"], type: "integer", length: 10, bytes: 96)]
        return [BridgeReply(), ok, failed, listed]
    }

    static var frames: [BridgeFrame] {
        requests.enumerated().map { .request($1, id: UInt32($0 + 1)) }
            + replies.enumerated().map { .reply($1, id: UInt32($0 + 100)) }
    }
}

@Suite("Data-plane codec")
struct BridgeCodecTests {
    static func decodeAll(_ bytes: ByteBuffer, side: BridgeFrameDecoder.Side) throws -> [BridgeFrame] {
        var decoder = BridgeFrameDecoder(side: side, maximumPayloadBytes: 1 << 20)
        var buffer = bytes
        var frames: [BridgeFrame] = []
        while let f = try decoder.decodeFrame(buffer: &buffer) { frames.append(f) }
        #expect(buffer.readableBytes == 0)
        return frames
    }

    @Test("Every sample request and reply round-trips", arguments: Samples.frames)
    func roundTrip(_ frame: BridgeFrame) throws {
        let side: BridgeFrameDecoder.Side = if case .reply = frame.body { .supervisor } else { .session }
        #expect(try Self.decodeAll(frame.encoded, side: side) == [frame])
    }

    @Test("Golden bytes: an evaluate request")
    func goldenEvaluate() {
        let bytes = Array(BridgeFrame.request(.evaluate(code: ByteBuffer(string: "1+1"), format: .qap1, transcript: true), id: 7).encoded.readableBytesView)
        #expect(bytes == [
            1, 1, 0, 0, 7, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, // version, evaluate, reserved, id 7, length 13
            1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0x31, 0x2b, 0x31, // qap1, transcript, u64 3, "1+1"
        ])
    }

    @Test("Golden bytes: an empty successful reply and a fetch")
    func goldenReply() {
        let reply = Array(BridgeFrame.reply(BridgeReply(), id: 2).encoded.readableBytesView)
        #expect(reply == [1, 0x81, 0, 0, 2, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0]
            + [0, 0] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 0] + [0] + [UInt8](repeating: 0, count: 16) + [0])
        let fetch = Array(BridgeFrame.request(.fetch(name: "x", format: .rds), id: 1).encoded.readableBytesView)
        #expect(fetch == [1, 4, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x78, 2])
    }

    @Test("ByteToMessageDecoderVerifier: frames in any split, both sides")
    func verifier() throws {
        let requests = Samples.frames.filter { if case .request = $0.body { true } else { false } }
        let replies = Samples.frames.filter { if case .reply = $0.body { true } else { false } }
        for (side, frames) in [(BridgeFrameDecoder.Side.session, requests), (.supervisor, replies)] {
            let pairs = frames.map { ($0.encoded, [$0]) }
            try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
                BridgeFrameDecoder(side: side, maximumPayloadBytes: 1 << 20)
            }
        }
    }

    @Test("A length over the maximum is refused before the payload is buffered")
    func oversized() {
        var header = ByteBuffer()
        BridgeHeader(type: .evaluate, requestID: 1, length: 1 << 40).encode(into: &header)
        var decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: 1 << 20)
        #expect(throws: BridgeError.self) { _ = try decoder.decodeFrame(buffer: &header) }
        do { _ = try decoder.decodeFrame(buffer: &header) } catch { #expect(error.code == .tooLarge) }
    }

    @Test("Each side refuses the other side's frames and unknown types")
    func wrongSide() {
        for (frame, side) in [(BridgeFrame.reply(BridgeReply(), id: 1), BridgeFrameDecoder.Side.session),
                              (.request(.listObjects, id: 1), .supervisor)] {
            var decoder = BridgeFrameDecoder(side: side, maximumPayloadBytes: 1 << 20)
            var buffer = frame.encoded
            do { _ = try decoder.decodeFrame(buffer: &buffer); Issue.record("accepted \(frame) on \(side)") } catch {
                #expect(error.code == .unexpectedFrame)
            }
        }
        var unknown = ByteBuffer()
        BridgeHeader(type: BridgeFrameType(rawValue: 42), requestID: 1, length: 0).encode(into: &unknown)
        var decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: 1 << 20)
        #expect(throws: BridgeError.self) { _ = try decoder.decodeFrame(buffer: &unknown) }
    }

    @Test("Bad versions, reserved bytes, trailing bytes, invalid UTF-8 and end of stream inside a frame")
    func malformed() throws {
        var frame = BridgeFrame.request(.fetch(name: "x", format: .rds), id: 1).encoded
        func fails(_ mutate: (inout [UInt8]) -> Void, _ code: BridgeError.Code) {
            var bytes = Array(frame.readableBytesView)
            mutate(&bytes)
            var buffer = ByteBuffer(bytes: bytes)
            var decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: 1 << 20)
            do { _ = try decoder.decodeFrame(buffer: &buffer); Issue.record("accepted \(bytes)") } catch { #expect(error.code == code, "\(bytes)") }
        }
        fails({ $0[0] = 2 }, .badFrame)
        fails({ $0[3] = 1 }, .badFrame)
        fails({ $0[8] += 1; $0.append(0) }, .badPayload) // one byte left over
        fails({ $0[20] = 0xff }, .badPayload) // "x" -> invalid UTF-8
        fails({ $0[8] -= 1; $0.removeLast() }, .badPayload) // the format byte missing
        var decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: 1 << 20)
        var cut = frame.readSlice(length: 10)!
        #expect(try decoder.decodeLast(buffer: &cut, seenEOF: false) == nil)
        #expect(throws: BridgeError.self) { _ = try decoder.decodeLast(buffer: &cut, seenEOF: true) }
    }

    @Test("Counts larger than the payload are refused without allocating")
    func hugeCounts() {
        var payload = ByteBuffer()
        payload.writeInteger(UInt8(1)) // format
        payload.writeInteger(UInt32(1), endianness: .little)
        payload.writeString("f")
        payload.writeInteger(UInt32.max, endianness: .little) // 4 billion arguments
        var frame = ByteBuffer()
        BridgeHeader(type: .call, requestID: 1, length: UInt64(payload.readableBytes)).encode(into: &frame)
        frame.writeBuffer(&payload)
        var decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: 1 << 20)
        do { _ = try decoder.decodeFrame(buffer: &frame); Issue.record("accepted") } catch { #expect(error.code == .badPayload) }
    }
}
