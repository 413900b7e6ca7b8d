import NIOCore
import RgateModel
import RgateQAP1
import Testing

/// What clients send that Rserve accepts. Each expectation here was checked against Rserve
/// 1.8-11 (CMD_setSEXP then deparse) unless it says otherwise.
@Suite("SEXP decoder tolerances")
struct DecoderToleranceTests {
    func decode(_ bytes: [UInt8]) throws(QAP1Error) -> RValue { try QAP1SEXP.decode(buffer(bytes)) }

    @Test("XT_NULL's declared length is ignored (pyRserve sends length 4 with no body)")
    func nullWithDeclaredLength() throws {
        // Rserve: list(NULL, 1L)
        #expect(try decode(hex("10 0c 00 00 | 00 04 00 00 | 20 04 00 00 01 00 00 00")) == .list([.null, .integer([1])]))
        #expect(try decode(hex("00 04 00 00")) == .null)
        #expect(try decode(hex("00 ff ff ff")) == .null)
        // The same in pyRserve's all-large form.
        let pyRserve = largeHead(0x10, 20) + largeHead(0x00, 4) + largeHead(0x20, 4) + le32(1)
        #expect(try decode(pyRserve) == .list([.null, .integer([1])]))
    }

    @Test("XT_NULL with attributes skips them (Rserve: list(NULL, 1L))")
    func nullWithAttributes() throws {
        let bytes = hex("10 20 00 00 | 80 14 00 00 15 10 00 00 20 04 00 00 05 00 00 00 13 04 00 00 61 00 00 00 | 20 04 00 00 01 00 00 00")
        #expect(try decode(bytes) == .list([.null, .integer([1])]))
    }

    @Test("Any logical byte other than 0 and 1 is NA", arguments: [UInt8(2), 3, 0x80, 0xfe, 0xff])
    func logicalNA(byte: UInt8) throws {
        #expect(try decode(hex("24 08 00 00 03 00 00 00 01 00") + [byte, 3]) == .logical([true, false, nil]))
        // Java pads with 3.
        #expect(try decode(hex("24 08 00 00 01 00 00 00") + [byte, 3, 3, 3]) == .logical([nil]))
    }

    @Test("A logical count beyond the data is an error")
    func logicalCountTooLarge() {
        #expect(throws: QAP1Error.self) { try decode(hex("24 08 00 00 05 00 00 00 01 00 01 00")) }
        #expect(throws: QAP1Error.self) { try decode(hex("24 04 00 00 ff ff ff ff")) }
        #expect(throws: QAP1Error.self) { try decode(hex("24 00 00 00")) }
    }

    @Test("A raw count beyond the data is an error; padding of any value is ignored")
    func rawCount() throws {
        #expect(throws: QAP1Error.self) { try decode(hex("25 08 00 00 05 00 00 00 01 02 03 04")) }
        #expect(try decode(hex("25 08 00 00 01 00 00 00 09 aa bb cc")) == .raw([9]))
    }

    @Test("NUL padding in a string vector makes extra empty strings, as in Rserve")
    func nulPadding() throws {
        // Rserve: c("ab", "")
        #expect(try decode(hex("22 04 00 00 61 62 00 00")) == .character(["ab", ""]))
        #expect(try decode(hex("22 04 00 00 61 00 00 00")) == .character(["a", "", ""]))
        #expect(try decode(hex("22 04 00 00 00 00 00 00")) == .character(["", "", "", ""]))
    }

    @Test("Bytes after the last NUL are padding, whatever they are (Rserve: character(0))")
    func noTerminator() throws {
        #expect(try decode(hex("22 04 00 00 61 62 63 01")) == .character([]))
        #expect(try decode(hex("22 08 00 00 61 00 62 63 64 65 66 67")) == .character(["a"]))
    }

    @Test("A leading 0xFF is dropped unless it is NA (Rserve: \"a\")")
    func leadingFF() throws {
        #expect(try decode(hex("22 04 00 00 ff 61 00 01")) == .character(["a"]))
        #expect(try decode(hex("22 04 00 00 ff 00 ff 00")) == .character([nil, nil]))
        #expect(try decode(hex("22 04 00 00 ff ff 00 01")) == .character(["\u{FFFD}"]))
    }

    @Test("Invalid UTF-8 is replaced, not rejected")
    func invalidUTF8() throws {
        #expect(try decode(hex("22 04 00 00 61 c3 00 01")) == .character(["a\u{FFFD}"]))
        #expect(try decode(hex("13 04 00 00 fe 00 00 00")) == sym("\u{FFFD}"))
    }

    @Test("Large headers on small objects (pyRserve writes every header large)")
    func largeHeadersEverywhere() throws {
        #expect(try decode(largeHead(0x20, 4) + le32(7)) == .integer([7]))
        #expect(try decode(largeHead(0x22, 4) + hex("61 62 63 00")) == .character(["abc"]))
        #expect(try decode(largeHead(0x21, 8) + le64(2.5)) == .double([2.5]))
        #expect(try decode(largeHead(0x24, 8) + hex("01 00 00 00 01 ff ff ff")) == .logical([true]))
        // list(a = 1L) with a large list header, a large attribute header and large elements.
        let names = largeHead(0x22, 4) + hex("61 00 01 01") + largeHead(0x13, 8) + Array("names\0\0\0".utf8)
        let attributes = largeHead(0x15, names.count) + names
        let element = largeHead(0x20, 4) + le32(1)
        let list = largeHead(0x90, attributes.count + element.count) + attributes + element
        #expect(try decode(list) == .list([.integer([1])], names: ["a"]))
        // The DT_SEXP wrapper can be large too.
        let parameters = try QAP1Parameter.parse(buffer(largeHead(0x0a, list.count) + list))
        guard case .sexp(let body)? = parameters.first else { Issue.record("not a DT_SEXP: \(parameters)"); return }
        #expect(try QAP1SEXP.decode(body) == .list([.integer([1])], names: ["a"]))
    }

    @Test("The deprecated scalar types XT_INT and XT_DOUBLE are vectors")
    func deprecatedScalars() throws {
        #expect(try decode(hex("01 04 00 00 05 00 00 00")) == .integer([5]))
        #expect(try decode(hex("01 08 00 00 05 00 00 00 00 00 00 80")) == .integer([5, nil]))
        #expect(try decode(head(0x02, 8) + le64(-1)) == .double([-1]))
    }

    @Test("XT_STR (one NUL-padded string, as Rserve decodes it with mkChar) and XT_SYMNAME read up to the first NUL")
    func strAndSymname() throws {
        #expect(try decode(hex("03 04 00 00 61 62 00 00")) == .character(["ab"]))
        #expect(try decode(hex("03 04 00 00 00 00 00 00")) == .character([""]))
        #expect(try decode(hex("13 08 00 00 61 62 00 63 64 00 00 00")) == sym("ab"))
    }

    @Test("Trailing bytes after the object, and a trailing partial header inside a list, are ignored")
    func trailingBytes() throws {
        #expect(try decode(hex("20 04 00 00 01 00 00 00 ff ff ff ff")) == .integer([1]))
        #expect(try decode(hex("10 0b 00 00 20 04 00 00 01 00 00 00 ff ff ff")) == .list([.integer([1])]))
        // Ints/doubles/complex ignore a partial last element, like Rserve (n = len / size).
        #expect(try decode(hex("20 06 00 00 01 00 00 00 02 00")) == .integer([1]))
        #expect(try decode(hex("21 0c 00 00") + le64(1) + hex("00 00 00 00")) == .double([1]))
    }

    @Test("Tagged pairlists: XT_NULL and empty symbols are untagged; a missing last tag is tolerated")
    func tags() throws {
        let bytes = hex("15 1c 00 00 | 20 04 00 00 01 00 00 00 | 00 00 00 00 | 20 04 00 00 02 00 00 00 | 13 04 00 00 62 00 00 00")
        #expect(try decode(bytes) == RValue(.pairlist([.integer([1]), .integer([2])]), attributes: [RAttribute(name: "names", value: .character(["", "b"]))]))
        #expect(try decode(hex("15 08 00 00 20 04 00 00 01 00 00 00")) == RValue(.pairlist([.integer([1])])))
        // A tag given as a string instead of a symbol.
        #expect(try decode(hex("15 10 00 00 20 04 00 00 01 00 00 00 22 04 00 00 61 00 01 01")) == RValue(.pairlist([.integer([1])]), attributes: [RAttribute(name: "names", value: .character(["a"]))]))
    }

    @Test("Attributes of a language object come after the names taken from its tags")
    func languageAttributes() throws {
        let value = RValue(.language([sym("f"), .integer([1])]), attributes: [
            RAttribute(name: "names", value: .character(["", "a"])),
            RAttribute(name: "srcref", value: .integer([1, 2])),
        ])
        let bytes = encoded(value)
        #expect(bytes[0] == 0x80 | 0x17)
        #expect(try decode(bytes) == value)
    }

    @Test("A call without a function is an error")
    func emptyCall() {
        #expect(throws: QAP1Error.self) { try decode(hex("16 00 00 00")) }
        #expect(throws: QAP1Error.self) { try decode(hex("17 00 00 00")) }
    }

    @Test("XT_S4 without attributes has no body")
    func bareS4() throws {
        #expect(try decode(hex("07 00 00 00")) == RValue(.opaque(type: "S4", description: "<S4 object>")))
        #expect(encoded(RValue(.opaque(type: "S4", description: "<S4 object>"))) == hex("07 00 00 00"))
        #expect(try decode(hex("10 0c 00 00 07 00 00 00 20 04 00 00 01 00 00 00")) == .list([RValue(.opaque(type: "S4", description: "<S4 object>")), .integer([1])]))
    }

    @Test("Attributes that are not a pairlist are an error; untagged attributes are dropped")
    func badAttributes() throws {
        #expect(throws: QAP1Error.self) { try decode(hex("a0 0c 00 00 20 04 00 00 01 00 00 00 05 00 00 00")) }
        #expect(try decode(hex("a0 10 00 00 14 08 00 00 20 04 00 00 01 00 00 00 05 00 00 00")) == .integer([5]))
    }

    @Test("Truncated input is an error with an offset")
    func truncated() {
        #expect(throws: QAP1Error.self) { try decode([]) }
        #expect(throws: QAP1Error.self) { try decode(hex("20 04 00")) }
        #expect(throws: QAP1Error.self) { try decode(hex("60 04 00 00 00 00")) }
        do {
            _ = try decode(hex("10 08 00 00 | 20 08 00 00 01 00 00 00 | 02 00 00 00"))
            Issue.record("decoded an object whose element runs past the list")
        } catch {
            #expect(error.status == .invalidParameter)
            #expect(error.offset == 4)
        }
        // Offsets count from the buffer's reader index, however deep the error is.
        var shifted = ByteBuffer(bytes: [0xee, 0xee] + hex("10 0c 00 00 | 10 08 00 00 | 20 08 00 00 01 00 00 00"))
        shifted.moveReaderIndex(forwardBy: 2)
        do {
            _ = try QAP1SEXP.decode(shifted)
            Issue.record("decoded an object whose element runs past its list")
        } catch {
            #expect(error.offset == 8)
        }
        // An attribute list that is not a pairlist is reported at its object.
        do {
            _ = try decode(hex("10 18 00 00 | 20 04 00 00 01 00 00 00 | a0 0c 00 00 20 04 00 00 01 00 00 00 05 00 00 00"))
            Issue.record("decoded attributes that are an integer vector")
        } catch {
            #expect(error.offset == 12)
            #expect(error.message.contains("pairlist"))
        }
    }
}
