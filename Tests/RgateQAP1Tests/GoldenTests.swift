import NIOCore
import RgateModel
import RgateQAP1
import Testing

@Suite("SEXP encoding against live Rserve 1.8-11 bytes")
struct GoldenTests {
    @Test("Decoding Rserve's eval payload gives the value", arguments: Golden.all)
    func decodesGoldenPayload(golden: Golden) throws {
        let parameters = try QAP1Parameter.parse(buffer(golden.bytes))
        try #require(parameters.count == 1)
        guard case .sexp(let body) = parameters[0] else {
            Issue.record("expected a DT_SEXP parameter, got \(parameters[0])")
            return
        }
        #expect(Array(body.readableBytesView) == golden.sexp)
        #expect(try QAP1SEXP.decode(body) == golden.value)
    }

    @Test("Decoding the bare SEXP gives the value", arguments: Golden.all)
    func decodesGoldenSEXP(golden: Golden) throws {
        #expect(try QAP1SEXP.decode(buffer(golden.sexp)) == golden.value)
    }

    @Test("Encoding the value gives Rserve's bytes exactly", arguments: Golden.all.filter(\.encodes))
    func encodesGolden(golden: Golden) {
        let sexp = encoded(golden.value)
        #expect(sexp == golden.sexp, "got \(dump(sexp))\nwant \(dump(golden.sexp))")
        #expect(encodedSize(golden.value) == golden.sexp.count)
        let parameter = encodedParameter(golden.value)
        #expect(parameter == golden.bytes, "got \(dump(parameter))\nwant \(dump(golden.bytes))")
    }

    @Test("An eval response is RESP_OK, the payload length, zeros, then the payload", arguments: Golden.notes.filter(\.encodes))
    func encodesResponseMessage(golden: Golden) {
        var payload = ByteBuffer()
        try! QAP1Parameter.sexp(golden.value).encode(into: &payload)
        var wire = ByteBuffer()
        QAP1Message(command: .responseOK, payload: payload).encode(into: &wire)
        let expected = hex("01 00 01 00") + le32(UInt32(golden.bytes.count)) + [UInt8](repeating: 0, count: 8) + golden.bytes
        #expect(Array(wire.readableBytesView) == expected)
    }

    @Test("Decoding lossy rows and encoding again is stable", arguments: Golden.all.filter { !$0.encodes })
    func lossyRowsAreStableAfterOneTrip(golden: Golden) throws {
        let once = try QAP1SEXP.decode(buffer(golden.sexp))
        #expect(try QAP1SEXP.decode(buffer(encoded(once))) == once)
    }

    @Test func expressionVectorsAreListsInTheValueModel() {
        // Rserve answers eval("") with `1a 00 00 00` (an empty expression()); the model has no
        // expression type, so the same value re-encodes as an empty list.
        #expect(encoded(.list([])) == hex("10 00 00 00"))
    }

    @Test func naDoublesAreCanonicalOnTheWire() {
        // Any NaN with low word 1954 is NA, and NA is always written with R's canonical bits.
        let quietNA = Double(bitPattern: 0x7FF8_0000_0000_07A2)
        #expect(QAP1SEXP.isNA(quietNA))
        #expect(QAP1SEXP.isNA(Double(bitPattern: QAP1SEXP.naRealBits)))
        #expect(!QAP1SEXP.isNA(.nan))
        #expect(!QAP1SEXP.isNA(1954))
        #expect(encoded(.double([nil])) == hex("21 08 00 00 a2 07 00 00 00 00 f0 7f"))
        // Other NaN payloads pass through unchanged.
        let payloadNaN = Double(bitPattern: 0x7FF8_0000_DEAD_BEEF)
        let decoded = try? QAP1SEXP.decode(buffer(encoded(.double([payloadNaN]))))
        #expect(decoded == .double([payloadNaN]))
    }

    @Test func stringsNeedOnePaddingByteOrMore() {
        // Padding is 0x01, never 0x00 (a NUL would be another, empty, element).
        #expect(encoded(.character(["abc"])) == hex("22 04 00 00 61 62 63 00"))
        #expect(encoded(.character(["ab"])) == hex("22 04 00 00 61 62 00 01"))
        #expect(encoded(.character(["abcd"])) == hex("22 08 00 00 61 62 63 64 00 01 01 01"))
        #expect(encoded(.character([nil])) == hex("22 04 00 00 ff 00 01 01"))
        #expect(encoded(.character([""])) == hex("22 04 00 00 00 01 01 01"))
    }

    @Test func symbolsArePaddedWithNUL() {
        #expect(encoded(sym("")) == hex("13 04 00 00 00 00 00 00"))
        #expect(encoded(sym("abc")) == hex("13 04 00 00 61 62 63 00"))
        #expect(encoded(sym("abcd")) == hex("13 08 00 00 61 62 63 64 00 00 00 00"))
        #expect(encoded(sym("é")) == hex("13 04 00 00 c3 a9 00 00"))
    }

    @Test func logicalPaddingIsFF() {
        #expect(encoded(.logical([])) == hex("24 04 00 00 00 00 00 00"))
        #expect(encoded(.logical([nil, true, false, true])) == hex("24 08 00 00 04 00 00 00 02 01 00 01"))
        #expect(encoded(.logical([false, false])) == hex("24 08 00 00 02 00 00 00 00 00 ff ff"))
    }

    @Test func opaqueObjectsAreXTUnknownWithTheirSEXPType() throws {
        for (type, code) in [("closure", 3), ("environment", 4), ("promise", 5), ("special", 7), ("builtin", 8), ("bytecode", 21), ("externalptr", 22), ("weakref", 23), ("type17", 17)] {
            let bytes = encoded(RValue(.opaque(type: type, description: "anything")))
            #expect(bytes == hex("30 04 00 00") + le32(UInt32(code)), "\(type)")
            #expect(try QAP1SEXP.decode(buffer(bytes)) == RValue(.opaque(type: type, description: "<\(type)>")))
        }
    }
}
