import NIOCore
import RgateModel
import RgateQAP1
import Testing

/// A ``QAP1SEXPSource`` backed by Swift arrays, standing in for R's memory.
struct ArraySource: QAP1SEXPSource {
    var kind: QAP1ObjectKind
    var ints: [Int32] = []
    var doubles: [Double] = []
    var bytes: [UInt8] = []
    var strings: [[UInt8]?] = []
    var elements: [ArraySource] = []
    var tags: [String?] = []
    var name = ""
    var attributes: [(name: String, value: ArraySource)] = []
    /// Formals and body, for closures.
    var closure: [ArraySource] = []

    var qapKind: QAP1ObjectKind { kind }
    var qapCount: Int {
        switch kind {
        case .null, .s4, .closure, .unknown: 0
        case .logical, .integer: ints.count
        case .double: doubles.count
        case .complex: doubles.count / 2
        case .character: strings.count
        case .raw: bytes.count
        case .list, .expression, .language, .pairlist: elements.count
        case .symbol: 1
        }
    }
    func qapAttributes() -> [(name: String, value: ArraySource)] { attributes }
    func qapElement(_ i: Int) -> ArraySource { elements[i] }
    func qapTag(_ i: Int) -> String? { i < tags.count ? tags[i] : nil }
    var qapSymbolName: String { name }
    var qapClosureParts: (formals: ArraySource, body: ArraySource)? { closure.count == 2 ? (closure[0], closure[1]) : nil }
    func withQAPInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T { try ints.withUnsafeBufferPointer(body) }
    func withQAPDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T { try doubles.withUnsafeBufferPointer(body) }
    func withQAPBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T { try bytes.withUnsafeBytes(body) }
    func withQAPString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T {
        guard let s = strings[i] else { return try body(nil) }
        return try s.withUnsafeBytes { try body($0) }
    }

    static let na = Double(bitPattern: QAP1SEXP.naRealBits)

    /// The source R would present for `value`.
    init(_ value: RValue) {
        switch value.payload {
        case .null: kind = .null
        case .logical(let v): kind = .logical; ints = v.map { $0.map { $0 ? 1 : 0 } ?? Int32.min }
        case .integer(let v): kind = .integer; ints = v.map { $0 ?? Int32.min }
        case .double(let v): kind = .double; doubles = v.map { $0 ?? Self.na }
        case .complex(let v): kind = .complex; doubles = v.flatMap { [$0?.real ?? Self.na, $0?.imaginary ?? Self.na] }
        case .character(let v): kind = .character; strings = v.map { $0.map { Array($0.utf8) } }
        case .raw(let v): kind = .raw; bytes = v
        case .list(let v): kind = .list; elements = v.map(ArraySource.init)
        case .symbol(let s): kind = .symbol; name = s
        case .language(let v), .pairlist(let v):
            if case .language = value.payload { kind = .language } else { kind = .pairlist }
            elements = v.map(ArraySource.init)
            tags = value.names ?? []
        case .opaque(let type, _):
            let codes = ["closure": 3, "environment": 4, "promise": 5, "special": 7, "builtin": 8, "bytecode": 21, "externalptr": 22, "weakref": 23]
            kind = type == "S4" ? .s4 : .unknown(Int32(codes[type] ?? Int(type.dropFirst(4)) ?? 0))
        }
        let isCall: Bool
        switch value.payload {
        case .language, .pairlist: isCall = true
        default: isCall = false
        }
        attributes = value.attributes.filter { !(isCall && $0.name == "names") }.map { ($0.name, ArraySource($0.value)) }
    }

    init(kind: QAP1ObjectKind, elements: [ArraySource] = [], tags: [String?] = [], closure: [ArraySource] = []) {
        self.kind = kind
        self.elements = elements
        self.tags = tags
        self.closure = closure
    }

    func encoded() throws -> [UInt8] {
        var b = ByteBuffer()
        try QAP1SEXP.encode(source: self, into: &b)
        return Array(b.readableBytesView)
    }
}

@Suite("Encoding straight from a QAP1SEXPSource")
struct SourceEncoderTests {
    @Test("Gives Rserve's bytes", arguments: Golden.all.filter(\.encodes))
    func golden(golden: Golden) throws {
        let source = ArraySource(golden.value)
        let bytes = try source.encoded()
        #expect(bytes == golden.sexp, "got \(dump(bytes))\nwant \(dump(golden.sexp))")
        #expect(try QAP1SEXP.encodedSize(source: source) == golden.sexp.count)
    }

    @Test("Expression vectors and closures, which the value model cannot hold")
    func expressionsAndClosures() throws {
        func row(_ r: String) throws -> Golden { try #require(Golden.all.first { $0.r.hasPrefix(r) }) }
        let plus = ArraySource(RValue(.language([sym("+"), .double([1]), .double([2])])))
        #expect(try ArraySource(kind: .expression, elements: [plus]).encoded() == row("expression(1+2)").sexp)
        #expect(try ArraySource(kind: .expression).encoded() == row("eval(\"\")").sexp)

        // function(x,y=2) x+y: XT_CLOS[formals (tagged pairlist, missing default = empty symbol), body].
        let formals = ArraySource(kind: .pairlist, elements: [ArraySource(sym("")), ArraySource(.double([2]))], tags: ["x", "y"])
        let body = ArraySource(RValue(.language([sym("+"), sym("x"), sym("y")])))
        let closure = ArraySource(kind: .closure, closure: [formals, body])
        #expect(try closure.encoded() == row("function(x,y=2) x+y").sexp)
        #expect(try QAP1SEXP.encodedSize(source: closure) == row("function(x,y=2) x+y").sexp.count)
        #expect(try QAP1SEXP.decode(buffer(closure.encoded())) == RValue(.opaque(type: "closure", description: "<closure>")))
    }

    @Test("Agrees with the RValue encoder on 3,000 random values")
    func agreesWithValueEncoder() throws {
        var generator = RandomValues(rng: SplitMix64(seed: 4242))
        for i in 0..<3_000 {
            let value = generator.value()
            let source = ArraySource(value)
            let bytes = try source.encoded()
            let expected = encoded(value)
            #expect(bytes == expected, "value \(i): \(value)")
            #expect(try QAP1SEXP.encodedSize(source: source) == bytes.count, "value \(i)")
            if bytes != expected { return }
        }
    }

    @Test("1:5e6 straight from memory: large headers, one copy")
    func largeIntegers() throws {
        var source = ArraySource(kind: .integer)
        source.ints = Array(1...5_000_000)
        var list = ArraySource(kind: .list, elements: [source])
        list.attributes = [("names", ArraySource(.character(["a"])))]
        var payload = ByteBuffer()
        QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: try QAP1SEXP.encodedSize(source: list), into: &payload)
        try QAP1SEXP.encode(source: list, into: &payload)
        #expect(payload.readableBytes == 20_000_048)
        let expected = hex("""
            4a 28 2d 31 01 00 00 00 | d0 20 2d 31 01 00 00 00 | 15 14 00 00 22 04 00 00 61 00 01 01 13 08 00 00 6e 61 6d 65 73 00 00 00 \
            | 60 00 2d 31 01 00 00 00 | 01 00 00 00 02 00 00 00
            """)
        #expect(payload.getBytes(at: 0, length: expected.count) == expected)
        #expect(payload.getBytes(at: payload.writerIndex - 4, length: 4) == le32(5_000_000))
    }

    @Test("Logical data: any non-zero int is TRUE, INT_MIN is NA, padding is 0xFF")
    func logicalFromInts() throws {
        var source = ArraySource(kind: .logical)
        source.ints = [1, 0, Int32.min, 5, -1]
        #expect(try source.encoded() == hex("24 0c 00 00 05 00 00 00 01 00 02 01 01 ff ff ff"))
    }

    @Test("A string whose first byte is 0xFF is sent with the byte doubled, as Rserve does")
    func leadingFF() throws {
        var source = ArraySource(kind: .character)
        source.strings = [[0xff], nil, [0xff, 0x61]]
        // '\xff' live: 22 04 00 00 ff ff 00 01
        let bytes = try source.encoded()
        #expect(bytes == hex("22 0c 00 00 ff ff 00 ff 00 ff ff 61 00 01 01 01"))
        #expect(try QAP1SEXP.encodedSize(source: source) == bytes.count)
        #expect(Array(try { var s = ArraySource(kind: .character); s.strings = [[0xff]]; return try s.encoded() }()) == Golden.notes.first { $0.r == "'\\xff'" }!.sexp)
    }
}

/// A source whose announced string sizes disagree with its strings (a buggy or changing source).
private struct LyingStringSource: QAP1SEXPSource {
    var base: ArraySource
    var lie: (bytes: Int, missing: Int, startingWith0xFF: Int)
    var qapKind: QAP1ObjectKind { base.qapKind }
    var qapCount: Int { base.qapCount }
    func qapAttributes() -> [(name: String, value: LyingStringSource)] { [] }
    func qapElement(_ i: Int) -> LyingStringSource { self }
    func qapTag(_ i: Int) -> String? { nil }
    var qapSymbolName: String { "" }
    var qapClosureParts: (formals: LyingStringSource, body: LyingStringSource)? { nil }
    func withQAPInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T { try base.withQAPInt32s(body) }
    func withQAPDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T { try base.withQAPDoubles(body) }
    func withQAPBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T { try base.withQAPBytes(body) }
    func withQAPString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T { try base.withQAPString(i, body) }
    func qapStringSizes() throws -> (bytes: Int, missing: Int, startingWith0xFF: Int) { lie }
}

@Suite("String sizes announced by a source")
struct StringSizeTests {
    static let strings = ArraySource(.character(["abc", nil, "\u{FF}x", ""]))

    @Test func theDefaultSizesMatchTheStrings() throws {
        let sizes = try Self.strings.qapStringSizes()
        // "\u{FF}x" is C3 BF 78 in UTF-8: it does not start with the byte 0xFF.
        #expect(sizes.bytes == 3 + 3 + 0 && sizes.missing == 1 && sizes.startingWith0xFF == 0)
        var leadingFF = ArraySource(kind: .character)
        leadingFF.strings = [[0xFF, 0x41], [0x41]]
        #expect(try leadingFF.qapStringSizes() == (bytes: 3, missing: 0, startingWith0xFF: 1))
        #expect(try leadingFF.encoded() == ArraySource(kind: .character).encodedHeaderless(strings: [0xFF, 0xFF, 0x41, 0, 0x41, 0]))
    }

    @Test("Sizes that disagree with the strings are an error, never a short or overrun buffer",
          arguments: [(0, 0, 0), (2, 1, 0), (6, 0, 0), (6, 1, 1), (600, 1, 0)])
    func lyingSizesThrow(bytes: Int, missing: Int, leading: Int) {
        let source = LyingStringSource(base: Self.strings, lie: (bytes, missing, leading))
        var out = ByteBuffer()
        #expect(throws: QAP1Error.self) { try QAP1SEXP.encode(source: source, into: &out) }
    }
}

extension ArraySource {
    /// The XT_STR encoding of a character vector whose content bytes are `strings`, padded with 0x01.
    func encodedHeaderless(strings: [UInt8]) -> [UInt8] {
        let padded = strings + [UInt8](repeating: 0x01, count: ((strings.count + 3) & ~3) - strings.count)
        return [0x22, UInt8(padded.count & 0xFF), UInt8((padded.count >> 8) & 0xFF), UInt8(padded.count >> 16)] + padded
    }
}
