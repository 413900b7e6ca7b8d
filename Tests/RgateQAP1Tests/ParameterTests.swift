import NIOCore
import RgateModel
import RgateQAP1
import Testing

@Suite("Command parameters, parsed as Rserve parses them")
struct ParameterTests {
    func parse(_ bytes: [UInt8]) throws(QAP1Error) -> [QAP1Parameter] { try QAP1Parameter.parse(buffer(bytes)) }

    /// The payload Java's `RTalk.request(cmd, String)` sends: a padded DT_STRING plus one stray 0.
    func javaString(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        let padded = (bytes.count + 1 + 3) & ~3
        return head(4, padded) + bytes + [UInt8](repeating: 0, count: padded - bytes.count) + [0]
    }

    @Test("A padded DT_STRING", arguments: ["", "1", "1+", "1+1", "x <- 1:10; sum(x)", "héllo"])
    func paddedString(text: String) throws {
        var payload = ByteBuffer()
        QAP1Parameter.string(text).encode(into: &payload)
        #expect(payload.readableBytes.isMultiple(of: 4))
        let parameters = try QAP1Parameter.parse(payload)
        #expect(parameters == [.string(Array(text.utf8))])
        #expect(parameters.first?.stringValue == text)
    }

    @Test("DT_STRING with Java's extra trailing 0 byte", arguments: ["", "1+1", "abcd", "R.version.string"])
    func javaTrailingByte(text: String) throws {
        let payload = javaString(text)
        #expect(!payload.count.isMultiple(of: 4))
        #expect(try parse(payload) == [.string(Array(text.utf8))])
    }

    @Test("Unaligned DT_STRING (length nchar+1, old R client), followed by more parameters")
    func unalignedString() throws {
        let login = Array("user\npwd".utf8) + [0]
        let payload = head(4, login.count) + login + head(1, 4) + le32(7) + head(4, 3) + Array("ab\0".utf8)
        #expect(try parse(payload) == [.string(Array("user\npwd".utf8)), .int(7), .string(Array("ab".utf8))])
        // Without any terminator at all the string is the whole parameter.
        #expect(try parse(head(4, 3) + Array("abc".utf8)) == [.string(Array("abc".utf8))])
    }

    @Test("A string is used up to its first NUL")
    func stringStopsAtNUL() throws {
        #expect(try parse(head(4, 8) + Array("ab\0cdef\0".utf8)) == [.string(Array("ab".utf8))])
    }

    @Test("DT_LARGE on small string and SEXP parameters (pyRserve)")
    func largeFlag() throws {
        #expect(try parse(largeHead(4, 4) + Array("1+1\0".utf8)) == [.string(Array("1+1".utf8))])
        let sexp = hex("20 04 00 00 01 00 00 00")
        let parameters = try parse(largeHead(0x0a, sexp.count) + sexp + largeHead(1, 4) + le32(9))
        #expect(parameters == [.sexp(buffer(sexp)), .int(9)])
        #expect(hex("4a 08 00 00 00 00 00 00") == largeHead(0x0a, 8))
    }

    @Test("A zero header ends the list")
    func zeroHeader() throws {
        let payload = head(4, 4) + Array("ab\0\0".utf8) + [0, 0, 0, 0] + head(1, 4) + le32(5)
        #expect(try parse(payload) == [.string(Array("ab".utf8))])
        #expect(try parse([0, 0, 0, 0]) == [])
        #expect(try parse([]) == [])
        // Fewer than 4 trailing bytes are ignored.
        #expect(try parse(head(1, 4) + le32(5) + [1, 2, 3]) == [.int(5)])
    }

    @Test("At most 16 parameters are read")
    func atMostSixteen() throws {
        let payload = (0..<20).flatMap { head(1, 4) + le32(UInt32($0)) }
        #expect(try parse(payload) == (0..<16).map { QAP1Parameter.int(Int32($0)) })
        // The rest is ignored, even when it would be malformed.
        let bad = (0..<16).flatMap { head(1, 4) + le32(UInt32($0)) } + head(4, 1000)
        #expect(try parse(bad).count == 16)
    }

    @Test("A length running past the payload is ERR_inv_par", arguments: [
        hex("04 10 00 00 61 62 00 00"),
        hex("01 04 00 00 05 00"),
        hex("44 08 00 00"),
        hex("44 04 00 00 01 00 00 00 61 62 63 00"),
        hex("0a ff ff ff 00"),
        hex("4a 00 00 00 ff ff ff ff"),
        hex("01 04 00 00 05 00 00 00 04 08 00 00 61 62 63 00"),
    ])
    func lengthPastPayload(bytes: [UInt8]) {
        do {
            let parameters = try parse(bytes)
            Issue.record("parsed \(parameters)")
        } catch {
            #expect(error.status == .invalidParameter)
            #expect(error.offset != nil)
        }
    }

    @Test("DT_INT", arguments: [Int32(0), 1, -1, 32768, Int32.max, Int32.min])
    func int(value: Int32) throws {
        var payload = ByteBuffer()
        QAP1Parameter.int(value).encode(into: &payload)
        #expect(Array(payload.readableBytesView) == hex("01 04 00 00") + le32(UInt32(bitPattern: value)))
        #expect(try QAP1Parameter.parse(payload) == [.int(value)])
    }

    @Test("A DT_INT shorter than 4 bytes is an error; a longer one uses the first 4")
    func intSizes() throws {
        #expect(throws: QAP1Error.self) { try parse(head(1, 2) + [1, 0]) }
        #expect(try parse(head(1, 8) + le32(3) + le32(4)) == [.int(3)])
    }

    @Test("Bytestreams, other types and empty parameters keep their bytes")
    func otherTypes() throws {
        let payload = head(5, 5) + [1, 2, 3, 4, 5] + head(0x20, 0) + head(3, 8) + le64(1.5) + head(5, 0)
        #expect(try parse(payload) == [
            .bytes(buffer([1, 2, 3, 4, 5])),
            .other(type: 0x20, buffer([])),
            .other(type: 3, buffer(le64(1.5))),
            .bytes(buffer([])),
        ])
    }

    @Test("Encoding writes Rserve's forms")
    func encoding() {
        func bytes(_ p: QAP1Parameter) -> [UInt8] {
            var b = ByteBuffer()
            p.encode(into: &b)
            return Array(b.readableBytesView)
        }
        #expect(bytes(.string("1+1")) == hex("04 04 00 00 31 2b 31 00"))
        #expect(bytes(.string("")) == hex("04 04 00 00 00 00 00 00"))
        #expect(bytes(.string("abcd")) == hex("04 08 00 00 61 62 63 64 00 00 00 00"))
        #expect(bytes(.bytes(buffer([9, 8, 7]))) == hex("05 03 00 00 09 08 07"))
        #expect(encodedParameter(.integer([1])) == hex("0a 08 00 00 20 04 00 00 01 00 00 00"))
        // CMD_detachSession's answer: DT_INT port, DT_BYTESTREAM(32) key.
        let detach = bytes(.int(6311)) + bytes(.bytes(buffer([UInt8](repeating: 0xab, count: 32))))
        #expect(detach.count == 44)
        #expect(Array(detach.prefix(12)) == hex("01 04 00 00 a7 18 00 00 05 20 00 00"))
    }

    @Test("A CMD_setSEXP payload: name then value")
    func setSEXP() throws {
        var payload = ByteBuffer()
        QAP1Parameter.string("x").encode(into: &payload)
        try QAP1Parameter.sexp(.double([1, 2])).encode(into: &payload)
        let parameters = try QAP1Parameter.parse(payload)
        try #require(parameters.count == 2)
        #expect(parameters[0].stringValue == "x")
        guard case .sexp(let body) = parameters[1] else { Issue.record("not a DT_SEXP: \(parameters[1])"); return }
        #expect(try QAP1SEXP.decode(body) == .double([1, 2]))
    }

    @Test("Parsing does not consume the caller's buffer and honours its reader index")
    func readerIndex() throws {
        var payload = ByteBuffer(bytes: [0xde, 0xad] + head(1, 4) + le32(5))
        payload.moveReaderIndex(forwardBy: 2)
        #expect(try QAP1Parameter.parse(payload) == [.int(5)])
        #expect(payload.readableBytes == 8)
    }
}
