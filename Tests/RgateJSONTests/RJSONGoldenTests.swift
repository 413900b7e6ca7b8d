import RgateJSON
import RgateModel
import Testing

/// Values whose rjson is known: each is encoded and compared byte for byte, then decoded back.
/// Where serializeJSON is exact (no doubles beyond 15 digits), the strings are what
/// `jsonlite::serializeJSON(x, digits = NA)` prints (jsonlite 1.8.4).
@Suite("rjson golden encodings")
struct RJSONGoldenTests {
    struct Golden: CustomTestStringConvertible, Sendable {
        let name: String
        let value: RValue
        let json: String
        var testDescription: String { name }
    }

    static func chr(_ v: [String?]) -> RValue { RValue(.character(v)) }
    static func attr(_ name: String, _ value: RValue) -> RAttribute { RAttribute(name: name, value: value) }
    static let empty = #""attributes":{}"#

    static let goldens: [Golden] = [
        Golden(name: "NULL", value: .null, json: #"{"type":"NULL"}"#),
        Golden(name: "logical with NA", value: .logical([true, nil, false]),
               json: #"{"type":"logical","attributes":{},"value":[true,null,false]}"#),
        Golden(name: "empty logical", value: .logical([]), json: #"{"type":"logical","attributes":{},"value":[]}"#),
        Golden(name: "named integer with NA (serializeJSON's bytes)", value: .integer([1, nil], names: ["a", "b"]),
               json: #"{"type":"integer","attributes":{"names":{"type":"character","attributes":{},"value":["a","b"]}},"value":[1,"NA"]}"#),
        Golden(name: "integer extremes", value: .integer([2147483647, -2147483647, 0]),
               json: #"{"type":"integer","attributes":{},"value":[2147483647,-2147483647,0]}"#),
        Golden(name: "doubles: NA, NaN, Inf, -0, shortest digits",
               value: .double([1.5, nil, .nan, .infinity, -.infinity, -0.0, 0.1 + 0.2, 1e16, Double.leastNonzeroMagnitude, 100, 0.00001, 1e-6, 1.7976931348623157e308, 9007199254740992, 123456.789e3]),
               json: #"{"type":"double","attributes":{},"value":[1.5,"NA","NaN","Inf","-Inf",-0.0,0.30000000000000004,1e16,5e-324,100,0.00001,1e-6,1.7976931348623157e308,9007199254740992,123456789]}"#),
        Golden(name: "complex", value: .complex([RComplex(1, 2), nil, RComplex(.nan, -.infinity), RComplex(-0.5, -0.0), RComplex(0, 1e-300)]),
               json: #"{"type":"complex","attributes":{},"value":["1+2i","NA","NaN-Infi","-0.5-0i","0+1e-300i"]}"#),
        Golden(name: "character: NA, \"NA\", escapes, UTF-8", value: chr(["a", nil, "NA", "é\"\\\n\t\u{1}", "😀", ""]),
               json: #"{"type":"character","attributes":{},"value":["a",null,"NA","é\"\\\n\t\u0001","😀",""]}"#),
        Golden(name: "raw (serializeJSON's bytes)", value: .raw([0, 1, 2, 3, 4, 5]),
               json: #"{"type":"raw","attributes":{},"value":"AAECAwQF"}"#),
        Golden(name: "empty raw", value: .raw([]), json: #"{"type":"raw","attributes":{},"value":""}"#),
        Golden(name: "list(a = 1L, b = c(x = NA, y = 2.5)) (serializeJSON's bytes)",
               value: .list([.integer([1]), .double([nil, 2.5], names: ["x", "y"])], names: ["a", "b"]),
               json: #"{"type":"list","attributes":{"names":{"type":"character","attributes":{},"value":["a","b"]}},"value":[{"type":"integer","attributes":{},"value":[1]},{"type":"double","attributes":{"names":{"type":"character","attributes":{},"value":["x","y"]}},"value":["NA",2.5]}]}"#),
        Golden(name: "list()", value: .list([]), json: #"{"type":"list","attributes":{},"value":[]}"#),
        Golden(name: "factor (serializeJSON's bytes)", value: .factor(codes: [1, 2, nil], levels: ["x", "y"]),
               json: #"{"type":"integer","attributes":{"levels":{"type":"character","attributes":{},"value":["x","y"]},"class":{"type":"character","attributes":{},"value":["factor"]}},"value":[1,2,"NA"]}"#),
        Golden(name: "data frame with compact row names",
               value: .dataFrame([("x", .integer([1, 2])), ("y", chr(["a", nil]))]),
               json: #"{"type":"list","attributes":{"names":{"type":"character","attributes":{},"value":["x","y"]},"class":{"type":"character","attributes":{},"value":["data.frame"]},"row.names":{"type":"integer","attributes":{},"value":["NA",-2]}},"value":[{"type":"integer","attributes":{},"value":[1,2]},{"type":"character","attributes":{},"value":["a",null]}]}"#),
        Golden(name: "matrix with dimnames (serializeJSON's bytes)",
               value: RValue(.integer([1, 2, 3, 4]), attributes: [
                   attr("dim", .integer([2, 2])), attr("dimnames", .list([chr(["a", "b"]), .null])),
               ]),
               json: #"{"type":"integer","attributes":{"dim":{"type":"integer","attributes":{},"value":[2,2]},"dimnames":{"type":"list","attributes":{},"value":[{"type":"character","attributes":{},"value":["a","b"]},{"type":"NULL"}]}},"value":[1,2,3,4]}"#),
        Golden(name: "POSIXct (serializeJSON's bytes)",
               value: RValue(.double([1704164645]), attributes: [attr("class", chr(["POSIXct", "POSIXt"])), attr("tzone", chr(["UTC"]))]),
               json: #"{"type":"double","attributes":{"class":{"type":"character","attributes":{},"value":["POSIXct","POSIXt"]},"tzone":{"type":"character","attributes":{},"value":["UTC"]}},"value":[1704164645]}"#),
        Golden(name: "symbol (serializeJSON's bytes)", value: RValue(.symbol("x")),
               json: #"{"type":"symbol","attributes":{},"value":["x"]}"#),
        Golden(name: "non-syntactic symbol, not deparsed", value: RValue(.symbol("a b")),
               json: #"{"type":"symbol","attributes":{},"value":["a b"]}"#),
        Golden(name: "call f(x, y = 1) (serializeJSON's bytes)",
               value: RValue(.language([RValue(.symbol("f")), RValue(.symbol("x")), .double([1])]), attributes: [attr("names", chr(["", "", "y"]))]),
               json: #"{"type":"language","attributes":{},"value":["f(x, y = 1)"]}"#),
        Golden(name: "call x + 1 in prefix form",
               value: RValue(.language([RValue(.symbol("+")), RValue(.symbol("x")), .double([1])])),
               json: #"{"type":"language","attributes":{},"value":["`+`(x, 1)"]}"#),
        Golden(name: "call x[, 1L] with the empty symbol",
               value: RValue(.language([RValue(.symbol("[")), RValue(.symbol("x")), RValue(.symbol("")), .integer([1])])),
               json: #"{"type":"language","attributes":{},"value":["`[`(x, , 1L)"]}"#),
        Golden(name: "call with constants",
               value: RValue(.language([
                   RValue(.symbol("g")), chr(["s\"q"]), .null, .logical([nil]), .logical([true]), .integer([nil]), .double([nil]),
                   .double([.nan]), .double([.infinity]), chr([nil]), .complex([RComplex(0, 2)]), .complex([nil]), .double([0.1]), .double([0.25]),
                   RValue(.language([RValue(.symbol("h")), RValue(.symbol("a b"))]), attributes: [attr("names", chr(["", "if"]))]),
               ])),
               json: #"{"type":"language","attributes":{},"value":["g(\"s\\\"q\", NULL, NA, TRUE, NA_integer_, NA_real_, NaN, Inf, NA_character_, 2i, NA_complex_, 0.10000000000000001, 0.25, h(`if` = `a b`))"]}"#),
        Golden(name: "pairlist (serializeJSON's bytes)", value: RValue(.pairlist([.double([1])]), attributes: [attr("names", chr(["a"]))]),
               json: #"{"type":"pairlist","attributes":{"names":{"type":"character","attributes":{},"value":["a"]}},"value":[{"type":"double","attributes":{},"value":[1]}]}"#),
        Golden(name: "attributes in order, names with NA (serializeJSON's bytes)",
               value: RValue(.integer([1, 2]), attributes: [attr("foo", chr(["bar"])), attr("names", chr(["a", nil]))]),
               json: #"{"type":"integer","attributes":{"foo":{"type":"character","attributes":{},"value":["bar"]},"names":{"type":"character","attributes":{},"value":["a",null]}},"value":[1,2]}"#),
    ]

    @Test(arguments: goldens)
    func encodesToTheGoldenBytes(_ golden: Golden) throws {
        let bytes = try RJSON.encode(golden.value)
        #expect(String(decoding: bytes, as: UTF8.self) == golden.json)
    }

    @Test(arguments: goldens)
    func decodesTheGoldenBytesBack(_ golden: Golden) throws {
        let value = try RJSON.decode(Array(golden.json.utf8))
        #expect(value == golden.value)
    }
}
