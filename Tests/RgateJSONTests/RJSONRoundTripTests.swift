import RgateJSON
import RgateModel
import Testing

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Double {
    /// A double from random bits: every exponent and mantissa, NaN and Inf mapped to finite values.
    static func randomBits(using g: inout SplitMix64) -> Double {
        let d = Double(bitPattern: g.next())
        return d.isFinite ? d : Double(bitPattern: g.next() & 0x7FEF_FFFF_FFFF_FFFF)
    }
}

@Suite("rjson round trips in Swift")
struct RJSONRoundTripTests {
    func roundTrip(_ value: RValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try RJSON.encode(value)
        let back = try RJSON.decode(bytes)
        #expect(back == value, "\(String(decoding: bytes, as: UTF8.self).prefix(300))", sourceLocation: sourceLocation)
    }

    @Test func specialDoublesStayApart() throws {
        let values: [Double?] = [nil, .nan, .infinity, -.infinity, -0.0, 0.0, .leastNonzeroMagnitude, .leastNormalMagnitude,
                                 .leastNormalMagnitude.nextDown, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e308, Double.leastNonzeroMagnitude,
                                 0.1 + 0.2, 0.1, 1.0 / 3, 2.0.squareRoot(), .pi, 9007199254740991, 1e23, 8.41e21, 0x1.5p-1040, 1e22, 1e-7]
        try roundTrip(.double(values))
        let back = try RJSON.decode(try RJSON.encode(.double([-0.0])))
        guard case .double(let d) = back.payload else { Issue.record("not a double"); return }
        #expect(d[0]?.bitPattern == (-0.0).bitPattern, "-0 keeps its sign")
        #expect(d[0]?.bitPattern != 0)
    }

    @Test func naInDoubleIsNotNaN() throws {
        let back = try RJSON.decode(try RJSON.encode(.double([nil, .nan])))
        guard case .double(let d) = back.payload else { Issue.record("not a double"); return }
        #expect(d[0] == nil)
        #expect(d[1]?.isNaN == true)
    }

    @Test func rsNABitPatternIsWrittenAsNA() throws {
        let rNA = Double(bitPattern: 0x7FF0_0000_0000_07A2)
        #expect(String(decoding: try RJSON.encode(.double([rNA])), as: UTF8.self).hasSuffix(#"["NA"]}"#))
    }

    @Test func randomDoublesRoundTripBitExactly() throws {
        var g = SplitMix64(seed: 0x5EED)
        var values: [Double?] = []
        for _ in 0..<100_000 { values.append(.randomBits(using: &g)) }
        // And values with few digits, integers, and near powers of ten.
        for _ in 0..<20_000 {
            values.append(Double(Int64.random(in: -1_000_000...1_000_000, using: &g)) / 1000)
            values.append(Double(Int64.random(in: Int64.min...Int64.max, using: &g)))
            let p = Double(sign: .plus, exponent: Int.random(in: -1074...1023, using: &g), significand: 1)
            values.append(p)
            values.append(p.nextUp)
        }
        let bytes = try RJSON.encode(.double(values))
        let back = try RJSON.decode(bytes)
        guard case .double(let d) = back.payload else { Issue.record("not a double"); return }
        #expect(d.count == values.count)
        var mismatches = 0
        for (a, b) in zip(values, d) where a?.bitPattern != b?.bitPattern {
            mismatches += 1
            if mismatches < 5 { Issue.record("\(String(describing: a)) came back as \(String(describing: b))") }
        }
        #expect(mismatches == 0)
    }

    /// The digits (significand without sign, point, exponent or zeros at either end) of a number's text.
    static func digits(_ text: String) -> Substring {
        let mantissa = text.split(separator: "e", maxSplits: 1)[0].filter { $0 != "-" && $0 != "." }
        let trimmed = mantissa.drop { $0 == "0" }
        return Substring(trimmed.reversed().drop { $0 == "0" }.reversed())
    }

    @Test func digitsAreSwiftsShortestDigits() throws {
        var g = SplitMix64(seed: 42)
        var values: [Double] = [0.1, 1e23, Double.leastNonzeroMagnitude, 2.2250738585072014e-308, 1.7976931348623157e308, 4.35, 0.3, 2.0 / 3]
        for _ in 0..<100_000 { values.append(.randomBits(using: &g)) }
        for _ in 0..<10_000 { values.append(Double(Float.random(in: -1e6...1e6, using: &g))) }
        let bytes = try RJSON.encode(.double(values.map { $0 }))
        let text = String(decoding: bytes, as: UTF8.self)
        let list = text.split(separator: "[")[1].dropLast(2).split(separator: ",")
        #expect(list.count == values.count)
        var mismatches = 0
        for (v, written) in zip(values, list) {
            let ours = String(written)
            if Double(ours)?.bitPattern != v.bitPattern || Self.digits(ours) != Self.digits(v.description) {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(v.description) written as \(ours)") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func everyVectorTypeWithNARoundTrips() throws {
        try roundTrip(.logical([true, false, nil]))
        try roundTrip(.integer([Int32.max, -Int32.max, nil, 0]))
        try roundTrip(.complex([RComplex(1, -1), nil, RComplex(.nan, .nan), RComplex(.infinity, -.infinity), RComplex(-0.0, -0.0),
                                RComplex(Double.leastNonzeroMagnitude, 1.7976931348623157e308), RComplex(-.infinity, .nan)]))
        try roundTrip(.character(["", nil, "NA", "NaN", "Inf", "-Inf", "null", "\u{7F}x", "\u{10FFFF}", "é"]))
        try roundTrip(.raw(Array(0...255) + [0, 1]))
        try roundTrip(.raw([7]))
        try roundTrip(.raw([7, 8]))
    }

    @Test func allNAStringsCharacterVectorRoundTripsExactly() throws {
        // jsonlite::unserializeJSON reads this back as c(NA, "NaN", "Inf", "-Inf"); rgate goes by the type.
        let value = RValue.character(["NA", "NaN", "Inf", "-Inf", nil])
        try roundTrip(value)
        #expect(String(decoding: try RJSON.encode(value), as: UTF8.self)
            == #"{"type":"character","attributes":{},"value":["NA","NaN","Inf","-Inf",null]}"#)
    }

    @Test func structuredValuesRoundTrip() throws {
        try roundTrip(.dataFrame([("x", .integer([1, 2])), ("y", .double([0.1, nil])), ("f", .factor(codes: [1, nil], levels: ["a"]))]))
        var characterRows = RValue.dataFrame([("x", .integer([1, 2]))])
        characterRows[attribute: "row.names"] = .character(["r1", "r2"])
        try roundTrip(characterRows)
        try roundTrip(RValue(.double([19724, nil]), attributes: [RAttribute(name: "class", value: .character(["Date"]))]))
        try roundTrip(RValue(.integer(Array(1...24)), attributes: [RAttribute(name: "dim", value: .integer([2, 3, 4]))]))
        try roundTrip(.list([.null, .list([]), .list([.null], names: ["a"]), .character([])]))
        var nested = RValue.integer([1])
        for i in 0..<200 { nested = .list([nested], names: ["n\(i)"]) }
        try roundTrip(nested)
        try roundTrip(RValue(.pairlist([.double([1]), RValue(.symbol(""))]), attributes: [RAttribute(name: "names", value: .character(["a", "b"]))]))
        try roundTrip(RValue(.integer([1]), attributes: [
            RAttribute(name: "z", value: .integer([1])), RAttribute(name: "a", value: .list([])),
            RAttribute(name: "names", value: .character(["only"])),
        ]))
    }

    @Test func callsRoundTrip() throws {
        func sym(_ s: String) -> RValue { RValue(.symbol(s)) }
        try roundTrip(RValue(.language([sym("+"), sym("x"), .double([1])])))
        try roundTrip(RValue(.language([sym("f"), sym("a b"), .character(["é\n\"`"]), .integer([0]), .double([1e-300])]),
                             attributes: [RAttribute(name: "names", value: .character(["", "`tag`", "x", "", "y z"]))]))
        try roundTrip(RValue(.language([RValue(.language([sym("f"), sym("x")])), sym("y")])))
        try roundTrip(RValue(.language([sym("next")])))
        try roundTrip(RValue(.language([sym("["), sym("x"), sym(""), sym("")])))
        try roundTrip(RValue(.language([sym("f"), sym("")]), attributes: [RAttribute(name: "names", value: .character(["", "a"]))]))
        // A call's other attributes are rjson attributes.
        try roundTrip(RValue(.language([sym("f")]), attributes: [RAttribute(name: "srcref", value: .integer([1, 2]))]))
    }

    @Test func nonDataIsRefusedWithThePath() {
        let value = RValue.list([.integer([1]), .list([.null, RValue(.opaque(type: "closure", description: "function(x) x"))])], names: ["a", "b"])
        let error = expectRJSONError(.unsupportedType, path: "$b[[2]]") { try RJSON.encode(value) }
        #expect(error?.message.contains("closure") == true)
        let env = RValue.list([RValue(.opaque(type: "environment", description: "<environment>"))], names: ["my env"])
        expectRJSONError(.unsupportedType, path: #"[["my env"]]"#) { try RJSON.encode(env) }
        let attribute = RValue(.integer([1]), attributes: [RAttribute(name: "fn", value: RValue(.opaque(type: "closure", description: "")))])
        expectRJSONError(.unsupportedType, path: "@fn") { try RJSON.encode(attribute) }
    }

    @Test func inexpressibleCallsAreRefused() {
        func sym(_ s: String) -> RValue { RValue(.symbol(s)) }
        let bad: [RValue] = [
            RValue(.language([sym("f"), .double([-1])])),
            RValue(.language([sym("f"), .integer([-1])])),
            RValue(.language([sym("f"), .double([-0.0])])),
            RValue(.language([sym("f"), .double([-.infinity])])),
            RValue(.language([sym("f"), .double([1, 2])])),
            RValue(.language([sym("f"), .list([])])),
            RValue(.language([sym("f"), RValue(.pairlist([.double([1])]))])),
            RValue(.language([sym("f"), RValue(.double([1]), attributes: [RAttribute(name: "class", value: .character(["x"]))])])),
            RValue(.language([sym("f"), .complex([RComplex(1, 1)])])),
            RValue(.language([.character(["f"]), sym("x")])),
            RValue(.language([sym("f"), sym("")])),
            RValue(.language([])),
        ]
        for value in bad {
            expectRJSONError(.unsupportedLanguage) { try RJSON.encode(value) }
        }
    }

    @Test func invalidValuesAreRefused() {
        expectRJSONError(.invalidAttribute) { try RJSON.encode(RValue(.null, attributes: [RAttribute(name: "a", value: .null)])) }
        expectRJSONError(.invalidAttribute) { try RJSON.encode(RValue(.integer([1]), attributes: [RAttribute(name: "a", value: .null), RAttribute(name: "a", value: .null)])) }
        expectRJSONError(.invalidAttribute) { try RJSON.encode(RValue(.symbol("x"), attributes: [RAttribute(name: "a", value: .null)])) }
        var deep = RValue.null
        for _ in 0..<300 { deep = .list([deep]) }
        expectRJSONError(.tooDeep) { try RJSON.encode(deep) }
        #expect(throws: Never.self) { try RJSON.encode(deep, maximumDepth: 1000) }
    }

    @Test func decodesFromAnyCollection() throws {
        let bytes = try RJSON.encode(.integer([1, 2, 3]))
        #expect(try RJSON.decode(bytes[...]) == .integer([1, 2, 3]))
        #expect(try RJSON.decode(AnyCollection(bytes)) == .integer([1, 2, 3]))
        #expect(try RJSON.decode(Array(" \n\t\r".utf8) + bytes + Array("\n".utf8)) == .integer([1, 2, 3]))
    }
}
