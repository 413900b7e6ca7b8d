import RgateJSON
import RgateModel
import Testing

@Suite("rjson decoder: what it accepts and what it refuses")
struct RJSONDecoderTests {
    func decode(_ text: String) throws(RJSONError) -> RValue { try RJSON.decode(Array(text.utf8)) }
    func node(_ type: String, _ value: String) -> String { #"{"type":"\#(type)","attributes":{},"value":\#(value)}"# }

    // MARK: - What jsonlite writes and reads

    @Test func readsJsonlitesForms() throws {
        // null as NA in numeric vectors, "name" for symbols, attributes anywhere or missing,
        // expanded row names, base64 with line breaks, e+ exponents, 15-digit doubles.
        #expect(try decode(node("double", #"[null,1e+20,1E5,3.14159265358979,-0.0]"#))
            == .double([nil, 1e20, 1e5, 3.14159265358979, -0.0]))
        #expect(try decode(node("integer", #"[null,"NA",3]"#)) == .integer([nil, nil, 3]))
        #expect(try decode(node("complex", #"["0.33333333-0i","NA","NaN+1i","1e+308+0i","NA+2i","Inf-Infi"]"#))
            == .complex([RComplex(0.33333333, -0.0), nil, RComplex(.nan, 1), RComplex(1e308, 0), nil, RComplex(.infinity, -.infinity)]))
        #expect(try decode(#"{"type":"name","attributes":{},"value":["x"]}"#) == RValue(.symbol("x")))
        #expect(try decode(#"{"type":"integer","value":[1,2]}"#) == .integer([1, 2]))
        #expect(try decode(#"{"type":"logical","value":[true],"attributes":{"names":{"type":"character","attributes":{},"value":["a"]}}}"#)
            == .logical([true], names: ["a"]))
        #expect(try decode(#"{"type":"NULL","attributes":{},"value":null}"#) == .null)
        #expect(try decode(node("raw", #""AQID\nBAUG""#)) == .raw([1, 2, 3, 4, 5, 6]))
        #expect(try decode(node("language", #"["f(x,", "  y = 1)"]"#))
            == RValue(.language([RValue(.symbol("f")), RValue(.symbol("x")), .double([1])]), attributes: [RAttribute(name: "names", value: .character(["", "", "y"]))]))
        #expect(try decode(node("symbol", #"[""]"#)) == RValue(.symbol("")))
        #expect(try decode(node("character", #"["\u00e9\ud83d\ude00\/"]"#)) == .character(["é😀/"]))
    }

    @Test func readsCallTextForms() throws {
        func call(_ text: String) throws -> RValue { try decode(node("language", "[\"\(text)\"]")) }
        func sym(_ s: String) -> RValue { RValue(.symbol(s)) }
        #expect(try call("f()") == RValue(.language([sym("f")])))
        #expect(try call("f(,)") == RValue(.language([sym("f"), sym(""), sym("")])))
        #expect(try call(#"\"f\"(x)"#) == RValue(.language([sym("f"), sym("x")])), "a string as the function is a symbol, as in R")
        #expect(try call("f(x)(y)") == RValue(.language([RValue(.language([sym("f"), sym("x")])), sym("y")])))
        #expect(try call("f(1e5L, .5, 2i)") == RValue(.language([sym("f"), .integer([100000]), .double([0.5]), .complex([RComplex(0, 2)])])))
        #expect(try call(#"f('a\\tb', \"\\u{e9}\\x41\\101\")"#) == RValue(.language([sym("f"), .character(["a\tb"]), .character(["éAA"])])))
        #expect(try call("`my f`(`a b` = T, ...)") == RValue(.language([sym("my f"), sym("T"), sym("...")]),
                                                              attributes: [RAttribute(name: "names", value: .character(["", "a b", ""]))]))
        for unsupported in ["x + 1", "-1", "f(-1)", "function(x) x", "if (a) b", "(x)", "x[1]", "f(x", "f(x))", "f(0x10)", "f(1 2)", "x == 1"] {
            expectRJSONError(.unsupportedLanguage) { try call(unsupported) }
        }
        expectRJSONError(.typeMismatch) { try call("x") }
    }

    // MARK: - Refusals

    @Test func refusesMalformedJSON() {
        let cases: [(String, RJSONError.Code)] = [
            ("", .truncated),
            ("   ", .truncated),
            (#"{"type":"NULL"}x"#, .trailingData),
            (#"{"type":"NULL"}{"type":"NULL"}"#, .trailingData),
            (#"{"type":"integer","attributes":{},"value":[1,2"#, .truncated),
            (#"{"type":"integer","attributes":{},"value":[1,2,]}"#, .syntax),
            (#"{"type":"integer","attributes":{},"value":[01]}"#, .syntax),
            (#"{"type":"integer","attributes":{},"value":[+1]}"#, .typeMismatch),
            (#"{"type":"double","attributes":{},"value":[NaN]}"#, .typeMismatch),
            (#"{"type":"double","attributes":{},"value":[1.]}"#, .syntax),
            (#"{"type":"double","attributes":{},"value":[.5]}"#, .typeMismatch),
            (#"{"type":"double","attributes":{},"value":[1e]}"#, .syntax),
            (#"{"type":"double","attributes":{},"value":[-]}"#, .syntax),
            (#"{"type":"logical","attributes":{},"value":[tru]}"#, .syntax),
            (#"{"type":"logical","attributes":{},"value":[nul"#, .truncated),
            (#"{"type":"NULL",}"#, .syntax),
            (#"{"type" "NULL"}"#, .syntax),
            (#"{'type':'NULL'}"#, .syntax),
            (#"{"type":"NULL"} // comment"#, .trailingData),
            ("\u{FEFF}{\"type\":\"NULL\"}", .syntax),
            (#"{"type":"character","attributes":{},"value":["\q"]}"#, .invalidString),
            (#"{"type":"character","attributes":{},"value":["\u12"]}"#, .invalidString),
            (#"{"type":"character","attributes":{},"value":["\ud800"]}"#, .invalidString),
            (#"{"type":"character","attributes":{},"value":["\ud800\u0041"]}"#, .invalidString),
            (#"{"type":"character","attributes":{},"value":["\udc00"]}"#, .invalidString),
            (#"{"type":"character","attributes":{},"value":["\u0000"]}"#, .invalidString),
            ("{\"type\":\"character\",\"attributes\":{},\"value\":[\"a\tb\"]}", .invalidString),
            (#"{"type":"character","attributes":{},"value":["abc"#, .truncated),
            (#"{"type":"character","attributes":{},"value":["abc\"#, .truncated),
        ]
        for (text, code) in cases {
            expectRJSONError(code) { try decode(text) }
        }
    }

    @Test func refusesInvalidUTF8() throws {
        let prefix = Array(#"{"type":"character","attributes":{},"value":[""#.utf8)
        let suffix = Array(#""]}"#.utf8)
        let bad: [[UInt8]] = [
            [0xC0, 0xAF],  // overlong '/'
            [0xE0, 0x80, 0xAF],  // overlong
            [0xED, 0xA0, 0x80],  // a UTF-16 surrogate in UTF-8
            [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
            [0xF5, 0x80, 0x80, 0x80],
            [0x80],  // a stray continuation byte
            [0xC3],  // a truncated sequence
            [0xE2, 0x82],
            [0xFF],
        ]
        for bytes in bad {
            expectRJSONError(.invalidUTF8) { try RJSON.decode(prefix + bytes + suffix) }
        }
        expectRJSONError(.truncated) { try RJSON.decode(prefix + [0xE2, 0x82]) }
        #expect(try RJSON.decode(prefix + [0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80] + suffix) == .character(["€😀"]))
    }

    @Test func refusesDepthBombsWithoutRecursingIntoThem() {
        let opener = #"{"type":"list","attributes":{},"value":["#
        let bomb = String(repeating: opener, count: 100_000)
        expectRJSONError(.tooDeep) { try decode(bomb) }
        // "value" before "type" is refused at once (it would have to be buffered or read twice).
        expectRJSONError(.invalidNode) { try decode(String(repeating: #"{"value":["#, count: 100_000)) }
        expectRJSONError(.invalidNode) { try decode(#"{"value":"# + String(repeating: "[", count: 100_000) + #","type":"list"}"#) }
        expectRJSONError(.tooDeep) { try decode(String(repeating: #"{"type":"NULL","attributes":{"a":"#, count: 100_000)) }
        // Within the limit it decodes; the limit is adjustable.
        let depth = 200
        let nested = String(repeating: opener, count: depth) + #"{"type":"NULL"}"# + String(repeating: "]}", count: depth)
        #expect(throws: Never.self) { try decode(nested) }
        expectRJSONError(.tooDeep) { try RJSON.decode(Array(nested.utf8), maximumDepth: 100) }
    }

    @Test func refusesTypeValueMismatches() {
        let cases: [(String, String)] = [
            ("logical", "[1]"), ("logical", #"["TRUE"]"#), ("logical", "true"),
            ("integer", "[1.5]"), ("integer", "[1e2]"), ("integer", #"["1"]"#), ("integer", "[true]"), ("integer", #"["NaN"]"#),
            ("double", #"["x"]"#), ("double", "[true]"), ("double", "[[1]]"), ("double", "{}"), ("double", "1"),
            ("complex", "[1]"), ("complex", #"["1+2"]"#), ("complex", #"["1+2j"]"#), ("complex", #"["i"]"#), ("complex", #"["1 + 2i"]"#),
            ("character", "[1]"), ("character", "[true]"), ("character", #""a""#),
            ("raw", "[1,2]"), ("raw", #""AAE""#), ("raw", #""A===""#), ("raw", #""AAE=AAAA""#), ("raw", #""AB==""#), ("raw", #""!!!!""#),
            ("list", "[1]"), ("list", #"["a"]"#), ("list", "[[]]"), ("list", "{}"),
            ("symbol", "[]"), ("symbol", #"["a","b"]"#), ("symbol", "[null]"), ("symbol", #""x""#),
            ("language", "[]"), ("language", "[null]"), ("language", "[1]"),
            ("NULL", "[]"), ("NULL", "{}"),
        ]
        for (type, value) in cases {
            expectRJSONError(.typeMismatch) { try decode(node(type, value)) }
        }
        expectRJSONError(.typeMismatch) { try decode("[1,2,3]") }
        expectRJSONError(.typeMismatch) { try decode("null") }
    }

    @Test func refusesBadNodesAndAttributes() {
        let cases: [(String, RJSONError.Code)] = [
            ("{}", .invalidNode),
            (#"{"attributes":{},"value":[1]}"#, .invalidNode),
            (#"{"value":[1],"type":"integer"}"#, .invalidNode),
            (#"{"type":"integer","attributes":{}}"#, .invalidNode),
            (#"{"type":"integer","type":"integer","value":[1]}"#, .invalidNode),
            (#"{"type":"integer","value":[1],"value":[1]}"#, .invalidNode),
            (#"{"type":"integer","value":[1],"extra":1}"#, .invalidNode),
            (#"{"type":"integer","attributes":{"a":{"type":"NULL"},"a":{"type":"NULL"}},"value":[1]}"#, .invalidAttribute),
            (#"{"type":"integer","attributes":{"":{"type":"NULL"}},"value":[1]}"#, .invalidAttribute),
            (#"{"type":"NULL","attributes":{"a":{"type":"NULL"}}}"#, .invalidAttribute),
            (#"{"type":"symbol","attributes":{"a":{"type":"NULL"}},"value":["x"]}"#, .invalidAttribute),
            (#"{"type":"language","attributes":{"names":{"type":"character","attributes":{},"value":["","a"]}},"value":["f(b = 1)"]}"#, .invalidAttribute),
            (#"{"type":"closure","attributes":{},"value":[]}"#, .unsupportedType),
            (#"{"type":"environment","attributes":{},"value":{}}"#, .unsupportedType),
            (#"{"type":"S4","attributes":{},"value":{"class":"x","package":"y"}}"#, .unsupportedType),
            (#"{"type":"whatever","attributes":{},"value":[]}"#, .unsupportedType),
            (#"{"type":1,"value":[]}"#, .syntax),
        ]
        for (text, code) in cases {
            expectRJSONError(code) { try decode(text) }
        }
    }

    @Test func refusesHugeNumbers() throws {
        expectRJSONError(.numberOutOfRange) { try decode(node("double", "[1e400]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("double", "[-1e99999999999999999999]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("double", "[1e-400]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("double", "[" + String(repeating: "9", count: 400) + "]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("integer", "[2147483648]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("integer", "[-2147483648]")) }
        expectRJSONError(.numberOutOfRange) { try decode(node("integer", "[99999999999999999999999]")) }
        #expect(try decode(node("double", "[0e-99999, 1.7976931348623157e308, 2.4703282292062328e-324]")) == .double([0, .greatestFiniteMagnitude, Double.leastNonzeroMagnitude]))
        #expect(try decode(node("double", "[0.1000000000000000055511151231257827021181583404541015625]")) == .double([0.1]))
    }

    @Test func readsDecimalTextCorrectlyRounded() throws {
        // Random digit strings of every length around the fast paths' limits (15 and 19
        // digits), every exponent, compared with strtod (Double(String)).
        var g = SplitMix64(seed: 0xDEC)
        var texts: [String] = ["9007199254740993", "9007199254740992.5", "2.2250738585072011e-308", "2.2250738585072012e-308",
                               "1.7976931348623158e308", "4.9406564584124654e-324", "1e23", "8.41e21", "7.3177701707893310e15",
                               "18446744073709551615", "18446744073709551616", "1.00000000000000011102230246251565404236316680908203125",
                               "1.00000000000000011102230246251565404236316680908203124", "0.000000000000000000000000000001"]
        for _ in 0..<60_000 {
            let count = Int.random(in: 1...24, using: &g)
            var digits = String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &g))) })
            if digits.first == "0" { digits = "1" + digits.dropFirst() }
            let point = Int.random(in: 0...count, using: &g)
            var text = point == count ? digits : String(digits.prefix(max(point, 1))) + "." + digits.dropFirst(max(point, 1))
            if text.hasSuffix(".") { text.removeLast() }
            if Bool.random(using: &g) { text += "e\(Int.random(in: -340...300, using: &g))" }
            texts.append(Bool.random(using: &g) ? "-" + text : text)
        }
        let body = node("double", "[" + texts.joined(separator: ",") + "]")
        var refused = 0
        var wrong = 0
        for text in texts {
            guard let expected = Double(text) else { Issue.record("Double(\(text)) failed"); continue }
            do {
                let value = try decode(node("double", "[\(text)]"))
                guard case .double(let d) = value.payload, let got = d[0] else { wrong += 1; continue }
                if got.bitPattern != expected.bitPattern {
                    wrong += 1
                    if wrong < 5 { Issue.record("\(text) read as \(got), strtod says \(expected)") }
                }
            } catch {
                refused += 1
                #expect(error.code == .numberOutOfRange)
                #expect(expected.isInfinite || expected == 0, "\(text) refused: \(error)")
            }
        }
        #expect(wrong == 0)
        #expect(refused < texts.count / 4)
        _ = body
    }

    @Test func errorsCarryThePathAndOffset() throws {
        let text = #"{"type":"list","attributes":{"names":{"type":"character","attributes":{},"value":["a","b"]}},"value":[{"type":"NULL"},{"type":"list","attributes":{},"value":[{"type":"NULL"},{"type":"logical","attributes":{},"value":[1]}]}]}"#
        let error = expectRJSONError(.typeMismatch, path: "$b[[2]]") { try decode(text) }
        let offset = try #require(error?.offset)
        #expect(Array(text.utf8)[offset] == UInt8(ascii: "1"))
        #expect(error?.description.contains("$b[[2]]") == true)
        expectRJSONError(.typeMismatch, path: "@levels") {
            try decode(#"{"type":"integer","attributes":{"levels":{"type":"character","attributes":{},"value":[1]}},"value":[1]}"#)
        }
        expectRJSONError(.typeMismatch, path: "$x@dim") {
            try decode(#"{"type":"list","attributes":{"names":{"type":"character","attributes":{},"value":["x"]}},"value":[{"type":"integer","attributes":{"dim":{"type":"integer","attributes":{},"value":[true]}},"value":[]}]}"#)
        }
    }
}
