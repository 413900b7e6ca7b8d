import NIOCore
import RgateModel
import RgateQAP1
import Testing

@Suite("Objects over 16 MiB use the large header")
struct LargeObjectTests {
    /// `1:5e6`.
    static func oneToFiveMillion() -> RValue {
        var values: [Int32?] = []
        values.reserveCapacity(5_000_000)
        for i in 1...Int32(5_000_000) { values.append(i) }
        return .integer(values)
    }

    /// One test for both notes rows, because encoding 5e6 integers takes seconds in a debug
    /// build: `list(a=1:5e6)` contains the encoding of `1:5e6` verbatim (the same code path
    /// writes a list element and a top-level object).
    @Test("1:5e6 and list(a=1:5e6): large headers, and a small attribute header inside a large vector")
    func integerSequence() throws {
        let vector = Self.oneToFiveMillion()
        let value = RValue.list([vector], names: ["a"])
        var payload = ByteBuffer()
        try QAP1Parameter.sexp(value).encode(into: &payload)

        // list(a=1:5e6): 4a 28 2d 31 01 00 00 00 | d0 20 2d 31 01 00 00 00 | 15 14 00 00 ... | 60 00 2d 31 01 00 00 00 ...
        #expect(payload.readableBytes == 20_000_048)
        let expected = hex("""
            4a 28 2d 31 01 00 00 00 | d0 20 2d 31 01 00 00 00 | 15 14 00 00 22 04 00 00 61 00 01 01 13 08 00 00 6e 61 6d 65 73 00 00 00 \
            | 60 00 2d 31 01 00 00 00 | 01 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00
            """)
        #expect(payload.getBytes(at: 0, length: expected.count) == expected)
        #expect(payload.getBytes(at: payload.writerIndex - 4, length: 4) == le32(5_000_000))

        // 1:5e6: 4a 08 2d 31 01 00 00 00 | 60 00 2d 31 01 00 00 00 | ints, in a message of length 0x01312d10.
        #expect(encodedSize(vector) == 20_000_008)
        var header = ByteBuffer()
        QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: try QAP1SEXP.encodedSize(vector), into: &header)
        #expect(Array(header.readableBytesView) == hex("4a 08 2d 31 01 00 00 00"))
        let sexp = payload.getSlice(at: 40, length: 20_000_008)!
        var message = ByteBuffer()
        message.writeImmutableBuffer(header)
        message.writeImmutableBuffer(sexp)
        var wire = ByteBuffer()
        QAP1Message(command: .responseOK, payload: message).encode(into: &wire)
        #expect(wire.getBytes(at: 0, length: 16) == hex("01 00 01 00 10 2d 31 01 00 00 00 00 00 00 00 00"))

        // Rserve's bytes for 1:5e6 decode to 1:5e6 (decoding the list is tested below with raw data).
        let parameters = try QAP1Parameter.parse(message)
        guard case .sexp(let body)? = parameters.first, parameters.count == 1 else { Issue.record("not one DT_SEXP: \(parameters)"); return }
        #expect(try QAP1SEXP.decode(body) == vector)
    }

    @Test("Decoding a large vector with small attributes inside a large list")
    func decodeLargeWithSmallAttributes() throws {
        // Raw data decodes in bulk, which keeps this fast in debug builds.
        let value = RValue.list([.raw([UInt8](repeating: 0x5a, count: 1 << 24))], names: ["a"])
        var payload = ByteBuffer()
        try QAP1Parameter.sexp(value).encode(into: &payload)
        #expect(payload.getBytes(at: 0, length: 1) == [0x4a])
        #expect(payload.getBytes(at: 8, length: 1) == [0xd0])
        #expect(payload.getBytes(at: 16, length: 4) == hex("15 14 00 00"))
        #expect(payload.getBytes(at: 40, length: 8) == hex("65 04 00 00 01 00 00 00"))
        let parameters = try QAP1Parameter.parse(payload)
        guard case .sexp(let body)? = parameters.first else { Issue.record("not a DT_SEXP"); return }
        #expect(try QAP1SEXP.decode(body) == value)
    }

    @Test("3e6 doubles (24 MB) round-trip")
    func doublesRoundTrip() throws {
        var rng = SplitMix64(seed: 3)
        var values: [Double?] = (0..<3_000_000).map { Double($0) * 0.5 }
        for _ in 0..<1000 { values[Int.random(in: 0..<values.count, using: &rng)] = rng.pick([nil, .nan, .infinity, -0.0]) }
        let value = RValue.double(values)
        let bytes = encoded(value)
        #expect(bytes.count == 24_000_008)
        #expect(Array(bytes.prefix(8)) == hex("61 00 36 6e 01 00 00 00"))
        #expect(try QAP1SEXP.decode(buffer(bytes)) == value)
    }

    @Test("The large form starts just above 0xfffff0 bytes")
    func threshold() throws {
        // 0xfffff0 bytes of raw data (with its 4-byte count) stays small; one more int does not.
        let small = RValue.raw([UInt8](repeating: 7, count: 0xff_fff0 - 4))
        let smallBytes = encoded(small)
        #expect(Array(smallBytes.prefix(4)) == hex("25 f0 ff ff"))
        #expect(try QAP1SEXP.decode(buffer(smallBytes)) == small)

        let large = RValue.raw([UInt8](repeating: 7, count: 0xff_fff0 - 3))
        let largeBytes = encoded(large)
        #expect(Array(largeBytes.prefix(8)) == hex("65 f4 ff ff 00 00 00 00"))
        #expect(largeBytes.count == 8 + 0xff_fff4)
        #expect(try QAP1SEXP.decode(buffer(largeBytes)) == large)
    }

    @Test("A parameter over 16 MiB uses the large DT header")
    func largeParameter() throws {
        let bytes = ByteBuffer(repeating: 0x78, count: 0x100_0004)
        var payload = ByteBuffer()
        QAP1Parameter.bytes(bytes).encode(into: &payload)
        #expect(payload.getBytes(at: 0, length: 8) == hex("45 04 00 00 01 00 00 00"))
        #expect(try QAP1Parameter.parse(payload) == [.bytes(bytes)])
        // The threshold is Rserve's: 0xfffff0 still fits the small header.
        var small = ByteBuffer()
        QAP1Parameter.bytes(ByteBuffer(repeating: 0, count: 0xff_fff0)).encode(into: &small)
        #expect(small.getBytes(at: 0, length: 4) == hex("05 f0 ff ff"))
        var large = ByteBuffer()
        QAP1Parameter.bytes(ByteBuffer(repeating: 0, count: 0xff_fff1)).encode(into: &large)
        #expect(large.getBytes(at: 0, length: 8) == hex("45 f1 ff ff 00 00 00 00"))
    }
}
