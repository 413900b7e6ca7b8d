import RgateModel
import Testing

/// One eval result as Rserve 1.8-11 (`encoding utf8`) sends it: the response payload, i.e. the
/// DT_SEXP parameter header `0a LL LL LL` followed by the SEXP.
///
/// The rows of notes/rserve-qap1.md §1.8, re-captured byte for byte from the Debian package
/// (Rserve 1.8-11, R 4.2.2) with a raw-socket client, plus a few more rows captured the same way.
struct Golden: Sendable, CustomTestStringConvertible {
    /// The R expression that was evaluated.
    var r: String
    /// The response payload.
    var bytes: [UInt8]
    /// What it decodes to.
    var value: RValue
    /// Whether encoding `value` gives back exactly `bytes` (false where the value model is
    /// lossy, e.g. expression vectors, closures, or bytes that are not valid UTF-8).
    var encodes: Bool

    init(_ r: String, _ hexDump: String, _ value: RValue, encodes: Bool = true) {
        self.r = r
        self.bytes = hex(hexDump)
        self.value = value
        self.encodes = encodes
    }

    var testDescription: String { r }

    /// The SEXP without the DT_SEXP header.
    var sexp: [UInt8] { Array(bytes.dropFirst(bytes[0] & 0x40 != 0 ? 8 : 4)) }
}

extension Golden {
    static let names = "13 08 00 00 6e 61 6d 65 73 00 00 00" // XT_SYMNAME "names"
    static let klass = "13 08 00 00 63 6c 61 73 73 00 00 00" // XT_SYMNAME "class"

    /// The rows of the notes' §1.8 that the value model can express.
    static let notes: [Golden] = [
        Golden("1L", "0a 08 00 00 | 20 04 00 00 01 00 00 00", .integer([1])),
        Golden("NA_integer_", "0a 08 00 00 | 20 04 00 00 00 00 00 80", .integer([nil])),
        Golden(
            "c(1.5,NA,NaN,Inf)",
            "0a 24 00 00 | 21 20 00 00 | 00 00 00 00 00 00 f8 3f | a2 07 00 00 00 00 f0 7f | 00 00 00 00 00 00 f8 7f | 00 00 00 00 00 00 f0 7f",
            .double([1.5, nil, .nan, .infinity])
        ),
        Golden(
            "c('a',NA,'','héllo')",
            "0a 10 00 00 | 22 0c 00 00 61 00 ff 00 00 68 c3 a9 6c 6c 6f 00",
            .character(["a", nil, "", "héllo"])
        ),
        // A Swift String cannot hold the byte 0xFF: the doubled lead byte is dropped and the
        // remaining lone 0xFF is not UTF-8, so it decodes as U+FFFD.
        Golden("'\\xff'", "0a 08 00 00 | 22 04 00 00 ff ff 00 01", .character(["\u{FFFD}"]), encodes: false),
        Golden("c(TRUE,FALSE,NA)", "0a 0c 00 00 | 24 08 00 00 03 00 00 00 01 00 02 ff", .logical([true, false, nil])),
        Golden("TRUE", "0a 0c 00 00 | 24 08 00 00 01 00 00 00 01 ff ff ff", .logical([true])),
        Golden("NULL", "0a 04 00 00 | 00 00 00 00", .null),
        Golden("character(0)", "0a 04 00 00 | 22 00 00 00", .character([])),
        // Rserve leaves XT_RAW's padding uninitialised (the live capture had ff); we write 00.
        Golden("as.raw(c(1,2,255))", "0a 0c 00 00 | 25 08 00 00 03 00 00 00 01 02 ff 00", .raw([1, 2, 255])),
        // The notes label this row complex(1,-2), but in R that is -2+0i (length.out = 1,
        // real = -2); the bytes <1.0><-2.0> are complex(real=1, imaginary=-2).
        Golden(
            "complex(real=1,imaginary=-2)",
            "0a 14 00 00 | 26 10 00 00 | 00 00 00 00 00 00 f0 3f | 00 00 00 00 00 00 00 c0",
            .complex([RComplex(1, -2)])
        ),
        Golden("as.name('foo')", "0a 08 00 00 | 13 04 00 00 66 6f 6f 00", sym("foo")),
        Golden(
            "new.env()", "0a 08 00 00 | 30 04 00 00 04 00 00 00",
            RValue(.opaque(type: "environment", description: "<environment>"))
        ),
        Golden("sum", "0a 08 00 00 | 30 04 00 00 08 00 00 00", RValue(.opaque(type: "builtin", description: "<builtin>"))),
        Golden(
            "list(1L,'x')",
            "0a 14 00 00 | 10 10 00 00 | 20 04 00 00 01 00 00 00 | 22 04 00 00 78 00 01 01",
            .list([.integer([1]), .character(["x"])])
        ),
        Golden("list(NULL)", "0a 08 00 00 | 10 04 00 00 | 00 00 00 00", .list([.null])),
        Golden(
            "list(a=1L,b='x')",
            "0a 2c 00 00 | 90 28 00 00 | 15 14 00 00 22 04 00 00 61 00 62 00 \(names) | 20 04 00 00 01 00 00 00 | 22 04 00 00 78 00 01 01",
            .list([.integer([1]), .character(["x"])], names: ["a", "b"])
        ),
        Golden(
            "c(a=1.0)",
            "0a 24 00 00 | a1 20 00 00 | 15 14 00 00 22 04 00 00 61 00 01 01 \(names) | 00 00 00 00 00 00 f0 3f",
            .double([1], names: ["a"])
        ),
        Golden(
            "matrix(1:4,2)",
            "0a 2c 00 00 | a0 28 00 00 | 15 14 00 00 20 08 00 00 02 00 00 00 02 00 00 00 13 04 00 00 64 69 6d 00 | 01 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00",
            .matrix(.integer([1, 2, 3, 4]), rows: 2, columns: 2)
        ),
        Golden(
            "factor(c('u','v','u'))",
            "0a 40 00 00 | a0 3c 00 00 | 15 2c 00 00 22 04 00 00 75 00 76 00 13 08 00 00 6c 65 76 65 6c 73 00 00 22 08 00 00 66 61 63 74 6f 72 00 01 \(klass) | 01 00 00 00 02 00 00 00 01 00 00 00",
            .factor(codes: [1, 2, 1], levels: ["u", "v"])
        ),
        Golden(
            "data.frame(x=1:2,y=c('a','b'))",
            """
            0a 68 00 00 | 90 64 00 00 | 15 4c 00 00 22 04 00 00 78 00 79 00 \(names) 22 0c 00 00 64 61 74 61 2e 66 72 61 6d 65 00 01 \(klass) \
            20 08 00 00 00 00 00 80 fe ff ff ff 13 0c 00 00 72 6f 77 2e 6e 61 6d 65 73 00 00 00 | 20 08 00 00 01 00 00 00 02 00 00 00 | 22 04 00 00 61 00 62 00
            """,
            .dataFrame([("x", .integer([1, 2])), ("y", .character(["a", "b"]))])
        ),
        Golden(
            "quote(f(x,y=1))",
            "0a 30 00 00 | 17 2c 00 00 | 13 04 00 00 66 00 00 00 00 00 00 00 | 13 04 00 00 78 00 00 00 00 00 00 00 | 21 08 00 00 00 00 00 00 00 00 f0 3f 13 04 00 00 79 00 00 00",
            RValue(.language([sym("f"), sym("x"), .double([1])]), attributes: [RAttribute(name: "names", value: .character(["", "", "y"]))])
        ),
        // Closures have no data model: decoded as opaque, not re-encodable as XT_CLOS.
        Golden(
            "function(x,y=2) x+y",
            """
            0a 48 00 00 | 12 44 00 00 | 15 24 00 00 13 04 00 00 00 00 00 00 13 04 00 00 78 00 00 00 21 08 00 00 00 00 00 00 00 00 00 40 13 04 00 00 79 00 00 00 \
            | 16 18 00 00 13 04 00 00 2b 00 00 00 13 04 00 00 78 00 00 00 13 04 00 00 79 00 00 00
            """,
            RValue(.opaque(type: "closure", description: "<closure>")), encodes: false
        ),
        // Expression vectors have no data model: they decode as lists (and re-encode as XT_VECTOR).
        Golden(
            "expression(1+2)",
            "0a 28 00 00 | 1a 24 00 00 | 16 20 00 00 13 04 00 00 2b 00 00 00 21 08 00 00 00 00 00 00 00 00 f0 3f 21 08 00 00 00 00 00 00 00 00 00 40",
            .list([RValue(.language([sym("+"), .double([1]), .double([2])]))]), encodes: false
        ),
        Golden(
            "pairlist(a=1,2)",
            "0a 28 00 00 | 15 24 00 00 | 21 08 00 00 00 00 00 00 00 00 f0 3f 13 04 00 00 61 00 00 00 | 21 08 00 00 00 00 00 00 00 00 00 40 00 00 00 00",
            RValue(.pairlist([.double([1]), .double([2])]), attributes: [RAttribute(name: "names", value: .character(["a", ""]))])
        ),
        Golden("eval(\"\") (empty expression())", "0a 04 00 00 | 1a 00 00 00", .list([]), encodes: false),
        Golden(
            "Sys.time() (structure(1700000000.5, class=c('POSIXct','POSIXt')))",
            "0a 30 00 00 | a1 2c 00 00 | 15 20 00 00 22 10 00 00 50 4f 53 49 58 63 74 00 50 4f 53 49 58 74 00 01 \(klass) | 00 00 20 40 fc 54 d9 41",
            RValue(.double([1_700_000_000.5]), attributes: [RAttribute(name: "class", value: .character(["POSIXct", "POSIXt"]))])
        ),
    ]

    /// More rows captured live from the same Rserve.
    static let extra: [Golden] = [
        Golden("as.raw(c(1,2,255)) (live padding ff)", "0a 0c 00 00 | 25 08 00 00 03 00 00 00 01 02 ff ff", .raw([1, 2, 255]), encodes: false),
        Golden(
            "complex(1,-2) (= -2+0i)",
            "0a 14 00 00 | 26 10 00 00 | 00 00 00 00 00 00 00 c0 | 00 00 00 00 00 00 00 00",
            .complex([RComplex(-2, 0)])
        ),
        Golden(
            "NA_complex_",
            "0a 14 00 00 | 26 10 00 00 | a2 07 00 00 00 00 f0 7f | a2 07 00 00 00 00 f0 7f",
            .complex([nil])
        ),
        // NA with the quiet bit set (arithmetic on NA) is still NA.
        Golden("NA_real_+1", "0a 0c 00 00 | 21 08 00 00 a2 07 00 00 00 00 f8 7f", .double([nil]), encodes: false),
        Golden("as.raw(1:4)", "0a 0c 00 00 | 25 08 00 00 04 00 00 00 01 02 03 04", .raw([1, 2, 3, 4])),
        Golden("logical(0)", "0a 08 00 00 | 24 04 00 00 00 00 00 00", .logical([])),
        Golden("raw(0)", "0a 08 00 00 | 25 04 00 00 00 00 00 00", .raw([])),
        Golden("integer(0)", "0a 04 00 00 | 20 00 00 00", .integer([])),
        Golden("numeric(0)", "0a 04 00 00 | 21 00 00 00", .double([])),
        Golden("list()", "0a 04 00 00 | 10 00 00 00", .list([])),
        Golden(
            "structure(1:2, names=c('a',NA))",
            "0a 24 00 00 | a0 20 00 00 | 15 14 00 00 22 04 00 00 61 00 ff 00 \(names) | 01 00 00 00 02 00 00 00",
            RValue(.integer([1, 2]), attributes: [RAttribute(name: "names", value: .character(["a", nil]))])
        ),
        Golden(
            "c(a=1L,2L)",
            "0a 24 00 00 | a0 20 00 00 | 15 14 00 00 22 04 00 00 61 00 00 01 \(names) | 01 00 00 00 02 00 00 00",
            .integer([1, 2], names: ["a", ""])
        ),
        Golden(
            "structure(list(), names=character(0))",
            "0a 18 00 00 | 90 14 00 00 | 15 10 00 00 22 00 00 00 \(names)",
            .list([], names: [])
        ),
        Golden(
            "factor(character(0))",
            "0a 30 00 00 | a0 2c 00 00 | 15 28 00 00 22 00 00 00 13 08 00 00 6c 65 76 65 6c 73 00 00 22 08 00 00 66 61 63 74 6f 72 00 01 \(klass)",
            .factor(codes: [], levels: [])
        ),
        Golden("quote(f())", "0a 0c 00 00 | 16 08 00 00 | 13 04 00 00 66 00 00 00", RValue(.language([sym("f")]))),
        Golden(
            "quote(f(,x)) (the empty symbol is R_MissingArg)",
            "0a 1c 00 00 | 16 18 00 00 | 13 04 00 00 66 00 00 00 | 13 04 00 00 00 00 00 00 | 13 04 00 00 78 00 00 00",
            RValue(.language([sym("f"), sym(""), sym("x")]))
        ),
        Golden(
            "alist(a=)",
            "0a 24 00 00 | 90 20 00 00 | 15 14 00 00 22 04 00 00 61 00 01 01 \(names) | 13 04 00 00 00 00 00 00",
            .list([sym("")], names: ["a"])
        ),
        Golden(
            "pairlist(1,2)",
            "0a 1c 00 00 | 14 18 00 00 | 21 08 00 00 00 00 00 00 00 00 f0 3f | 21 08 00 00 00 00 00 00 00 00 00 40",
            RValue(.pairlist([.double([1]), .double([2])]))
        ),
        Golden(
            "quote(function(x) 1)",
            """
            0a 38 00 00 | 16 34 00 00 | 13 0c 00 00 66 75 6e 63 74 69 6f 6e 00 00 00 00 | 15 10 00 00 13 04 00 00 00 00 00 00 13 04 00 00 78 00 00 00 \
            | 21 08 00 00 00 00 00 00 00 00 f0 3f | 00 00 00 00
            """,
            RValue(.language([
                sym("function"),
                RValue(.pairlist([sym("")]), attributes: [RAttribute(name: "names", value: .character(["x"]))]),
                .double([1]),
                .null,
            ]))
        ),
        // An S4 object: XT_S4 has no body of its own, its slots are the attributes.
        Golden(
            "setClass('P', representation(x='numeric')); new('P', x=1)",
            """
            0a 50 00 00 | 87 4c 00 00 | 15 48 00 00 21 08 00 00 00 00 00 00 00 00 f0 3f 13 04 00 00 78 00 00 00 \
            a2 24 00 00 15 1c 00 00 22 0c 00 00 2e 47 6c 6f 62 61 6c 45 6e 76 00 01 13 08 00 00 70 61 63 6b 61 67 65 00 50 00 01 01 \(klass)
            """,
            RValue(.opaque(type: "S4", description: "<S4 object>"), attributes: [
                RAttribute(name: "x", value: .double([1])),
                RAttribute(name: "class", value: RValue(.character(["P"]), attributes: [
                    RAttribute(name: "package", value: .character([".GlobalEnv"])),
                ])),
            ])
        ),
    ]

    static let all = notes + extra
}
