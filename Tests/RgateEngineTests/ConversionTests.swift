import RgateEngine
import RgateModel
import Testing

// Conversion between R objects and `RValue`, against the real embedded R.
//
// Every test that assigns and then reads does both inside one `SharedEngine.run` job: tests run in
// parallel, and only a single job is guaranteed not to interleave with another test's use of `x`.

@Suite("R values to Swift and back")
struct ConversionTests {
    // MARK: R -> Swift

    @Test("R values convert to the expected RValue", arguments: Conversion.all)
    func convertsFromR(_ c: Conversion) async throws {
        let value = try await valueOf(c.code)
        #expect(value == c.expected)
    }

    @Test func naAndNaNStayDistinct() async throws {
        let value = try await valueOf("c(NA, NaN, 0/0, NA_real_ + 1)")
        let doubles = try #require(value.doubles)
        #expect(doubles.count == 4)
        #expect(doubles[0] == nil)
        #expect(doubles[1].map(\.isNaN) == true)
        #expect(doubles[2].map(\.isNaN) == true)
        #expect(doubles[3] == nil, "NA stays NA through arithmetic")
    }

    @Test func naCharacterIsNotTheStringNA() async throws {
        let value = try await valueOf("c(NA_character_, 'NA')")
        #expect(value.strings == [nil, "NA"])
    }

    @Test func factorKeepsCodesLevelsAndClass() async throws {
        let value = try await valueOf("factor(c('b', 'a', NA, 'b'))")
        #expect(value == .factor(codes: [2, 1, nil, 2], levels: ["a", "b"]))
        #expect(value.classNames == ["factor"])
        #expect(value[attribute: "levels"] == .character(["a", "b"]))
        #expect(value.strings == ["b", "a", nil, "b"])
    }

    @Test func orderedFactorLabels() async throws {
        let value = try await valueOf("factor(c('hi', 'lo'), levels = c('lo', 'hi'), ordered = TRUE)")
        #expect(value.payload == .integer([2, 1]))
        #expect(value.classNames == ["ordered", "factor"])
        #expect(value.strings == ["hi", "lo"])
    }

    @Test func matrixHasDim() async throws {
        let value = try await valueOf("matrix(1:6, nrow = 2)")
        #expect(value == .matrix(.integer([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3))
    }

    @Test func matrixHasDimnames() async throws {
        let value = try await valueOf("matrix(c(1, 2, 3, 4, 5, 6), nrow = 2, dimnames = list(c('r1', 'r2'), c('a', 'b', 'c')))")
        #expect(value.payload == .double([1, 2, 3, 4, 5, 6]))
        #expect(value.attributes.map(\.name) == ["dim", "dimnames"])
        #expect(value[attribute: "dim"] == .integer([2, 3]))
        #expect(value[attribute: "dimnames"] == .list([.character(["r1", "r2"]), .character(["a", "b", "c"])]))
    }

    @Test func arrayHasThreeDimensions() async throws {
        let value = try await valueOf("array(1:24, dim = c(2, 3, 4))")
        #expect(value.payload == .integer((1...24).map { Int32($0) }))
        #expect(value.attributes == [RAttribute(name: "dim", value: .integer([2, 3, 4]))])
    }

    @Test func dataFrameKeepsCompactRowNames() async throws {
        let value = try await valueOf("data.frame(n = 1:3, s = c('x', NA, 'z'), f = factor(c('u', 'v', 'u')))")
        #expect(value == .dataFrame([
            ("n", .integer([1, 2, 3])),
            ("s", .character(["x", nil, "z"])),
            ("f", .factor(codes: [1, 2, 1], levels: ["u", "v"])),
        ]))
        #expect(value[attribute: "row.names"] == .integer([nil, -3]))
        let columns = try #require(value.columns)
        #expect(columns.map(\.name) == ["n", "s", "f"])
        #expect(columns[1].value.strings == ["x", nil, "z"])
        #expect(columns[2].value.strings == ["u", "v", "u"])
    }

    @Test func dataFrameWithCharacterRowNames() async throws {
        let value = try await valueOf("data.frame(v = 1:2, row.names = c('r1', 'r2'))")
        #expect(value[attribute: "row.names"] == .character(["r1", "r2"]))
        #expect(value.columns?.map(\.name) == ["v"])
    }

    @Test func builtInDataFrame() async throws {
        let value = try await valueOf("iris")
        let columns = try #require(value.columns)
        #expect(columns.map(\.name) == ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"])
        #expect(columns.allSatisfy { $0.value.count == 150 })
        #expect(value[attribute: "row.names"] == .integer([nil, -150]))
        #expect(columns[4].value.strings?.first == "setosa")
        #expect(columns[4].value.strings?.last == "virginica")
    }

    @Test func dateIsADoubleWithClass() async throws {
        let value = try await valueOf("as.Date(c('2024-01-02', NA))")
        #expect(value == RValue(.double([19724, nil]), attributes: [RAttribute(name: "class", value: .character(["Date"]))]))
        #expect(value.classNames == ["Date"])
    }

    @Test func posixctKeepsClassAndTimeZone() async throws {
        let value = try await valueOf("as.POSIXct('2024-01-02 03:04:05', tz = 'UTC')")
        #expect(value == RValue(.double([1_704_164_645]), attributes: [
            RAttribute(name: "class", value: .character(["POSIXct", "POSIXt"])),
            RAttribute(name: "tzone", value: .character(["UTC"])),
        ]))
    }

    @Test func nestedListsConvertRecursively() async throws {
        let value = try await valueOf("list(a = 1, b = list(TRUE, list(deep = 'yes')), c = NULL)")
        #expect(value == .list([
            .double([1]),
            .list([.logical([true]), .list([.character(["yes"])], names: ["deep"])]),
            .null,
        ], names: ["a", "b", "c"]))
    }

    @Test("Objects without a data model are opaque", arguments: OpaqueCase.all)
    func opaqueObjects(_ c: OpaqueCase) async throws {
        let value = try await valueOf(c.code)
        guard case .opaque(let type, let description) = value.payload else {
            Issue.record("expected an opaque value, got \(value.payload.typeName)")
            return
        }
        #expect(type == c.type)
        #expect(value.payload.typeName == c.type)
        #expect(value.count == 0)
        if let expected = c.description {
            #expect(description == expected)
        } else {
            #expect(!description.isEmpty)
        }
    }

    @Test func callsAndSymbolsHaveAModel() async throws {
        let call = try await valueOf("quote(f(x, y = 1))")
        #expect(call == RValue(.language([RValue(.symbol("f")), RValue(.symbol("x")), .double([1])]),
                               attributes: [RAttribute(name: "names", value: .character(["", "", "y"]))]))
        #expect(try await valueOf("quote(abc)") == RValue(.symbol("abc")))
        #expect(try await valueOf("pairlist(a = 1, 2)") == RValue(.pairlist([.double([1]), .double([2])]),
                                                                  attributes: [RAttribute(name: "names", value: .character(["a", ""]))]))
    }

    @Test func callsBuiltInSwiftEvaluateInR() async throws {
        let call = RValue(.language([RValue(.symbol("paste")), .character(["a"]), .character(["b"]), .character([""])]),
                          attributes: [RAttribute(name: "names", value: .character(["", "", "", "sep"]))])
        let result = await SharedEngine.run { engine -> String? in
            guard let object = try? engine.makeObject(call) else { return nil }
            let (evaluation, value) = engine.evaluate(object: object, options: EvaluationOptions(printVisible: false, convertValue: false))
            guard evaluation.succeeded, let value, let converted = try? engine.value(of: value) else { return nil }
            return converted.strings?.first ?? nil
        }
        #expect(result == "ab")
    }

    @Test func closureDescriptionIsItsDeparse() async throws {
        let value = try await valueOf("function(x) x + 1")
        guard case .opaque("closure", let description) = value.payload else {
            Issue.record("expected an opaque closure, got \(value.payload)")
            return
        }
        #expect(description.hasPrefix("function (x)"))
    }

    // MARK: Swift -> R -> Swift

    @Test("Swift values round-trip through R, and R sees them right", arguments: RoundTrip.all)
    func roundTrip(_ c: RoundTrip) async throws {
        let result = try await assignThenRead(c.value, probes: c.probes.map(\.code))
        #expect(result.back == c.value)
        for (probe, got) in zip(c.probes, result.probes) {
            #expect(got == probe.expected, "\(probe.code)")
        }
    }

    @Test("Values made by R are identical() after a trip through Swift", arguments: rExpressions)
    func rValueRoundTripIsIdentical(_ code: String) async throws {
        let identical: RValue = try await SharedEngine.run { engine in
            Result { () throws(any Error) -> RValue in
                let value = try engine.value(of: code)
                try engine.assign("x", value)
                return try engine.value(of: "identical(x, {\(code)})")
            }
        }.get()
        #expect(identical == .logical([true]))
    }

    @Test(.timeLimit(.minutes(1)))
    func millionDoublesRoundTrip() async throws {
        var data: [Double?] = (0..<1_000_000).map { Double($0) / 4 }
        data[10] = nil
        data[999_999] = .nan
        let value = RValue.double(data)
        let result = try await assignThenRead(value, probes: [
            "length(x)", "sum(x[-c(11, 1e6)])", "which(is.na(x))", "which(is.nan(x))",
        ])
        #expect(result.back == value)
        #expect(result.probes == [
            .integer([1_000_000]),
            .double([124_999_624_997.75]),
            .integer([11, 1_000_000]),
            .integer([1_000_000]),
        ])
    }

    @Test(.timeLimit(.minutes(1)))
    func millionDoublesFromR() async throws {
        let value = try await valueOf("seq(0, by = 0.5, length.out = 1e6)")
        let doubles = try #require(value.doubles)
        #expect(doubles.count == 1_000_000)
        #expect(doubles.first == 0)
        #expect(doubles.last == 499_999.5)
    }

    // MARK: What cannot be sent to R

    @Test func assigningAnOpaqueValueThrows() async throws {
        let outcome = try await SharedEngine.run { engine in
            var failures: [EngineError?] = []
            var closure: RValue = .null
            var after: RValue = .null
            do {
                try engine.assign("x", .double([1]))
                closure = try engine.value(of: "function(a) a")
            } catch {
                return Result<OpaqueOutcome, any Error>.failure(error)
            }
            let attempts: [RValue] = [
                closure,
                RValue(.opaque(type: "environment", description: "<environment>")),
                .list([.double([1]), closure]),
                RValue(.integer([1]), attributes: [RAttribute(name: "fn", value: closure)]),
            ]
            for attempt in attempts {
                do throws(EngineError) {
                    try engine.assign("x", attempt)
                    failures.append(nil)
                } catch {
                    failures.append(error)
                }
            }
            do { after = try engine.value(of: "x") } catch { return .failure(error) }
            return .success(OpaqueOutcome(closure: closure, errors: failures, after: after))
        }.get()
        #expect(outcome.closure.payload.typeName == "closure")
        #expect(outcome.errors.count == 4)
        for error in outcome.errors {
            #expect(error != nil, "assigning an opaque value must throw EngineError")
        }
        #expect(outcome.after == .double([1]), "a failed assign leaves the old binding alone")
    }

    @Test("Values R rejects throw EngineError and leave R usable", arguments: RejectedCase.all)
    func rejectedValuesThrow(_ c: RejectedCase) async throws {
        let outcome = await SharedEngine.run { engine in
            let failure: EngineError?
            do throws(EngineError) {
                try engine.assign("x", c.value)
                failure = nil
            } catch {
                failure = error
            }
            let next = Result { () throws(EvaluationError) -> RValue in try engine.value(of: "1L + 1L") }
            return (failure, next)
        }
        #expect(outcome.0 != nil, "\(c.label) must throw EngineError")
        #expect(try outcome.1.get() == .integer([2]))
    }
}

// MARK: - Helpers

/// Evaluates `code` on the shared engine and returns its value.
private func valueOf(_ code: String) async throws -> RValue {
    try await SharedEngine.run { engine in
        Result { () throws(EvaluationError) -> RValue in try engine.value(of: code) }
    }.get()
}

/// What ``assignThenRead(_:probes:)`` saw.
private struct Readback: Sendable {
    var back: RValue
    var probes: [RValue]
}

/// Assigns `value` to `x`, evaluates each probe, then reads `x` back, all in one job on the R thread.
private func assignThenRead(_ value: RValue, probes: [String] = []) async throws -> Readback {
    try await SharedEngine.run { engine in
        Result { () throws(any Error) -> Readback in
            try engine.assign("x", value)
            let results = try probes.map { code throws(EvaluationError) in try engine.value(of: code) }
            return Readback(back: try engine.value(of: "x"), probes: results)
        }
    }.get()
}

private struct OpaqueOutcome: Sendable {
    var closure: RValue
    var errors: [EngineError?]
    var after: RValue
}

// MARK: - Cases

/// An R expression and the RValue it must convert to.
struct Conversion: Sendable, CustomTestStringConvertible {
    var code: String
    var expected: RValue
    var testDescription: String { code }

    static let all: [Conversion] = [
        Conversion(code: "NULL", expected: .null),
        Conversion(code: "c(TRUE, NA, FALSE)", expected: .logical([true, nil, false])),
        Conversion(code: "NA", expected: .logical([nil])),
        Conversion(code: "c(1L, NA, -2147483647L, 2147483647L)", expected: .integer([1, nil, -Int32.max, Int32.max])),
        Conversion(code: "NA_integer_", expected: .integer([nil])),
        Conversion(code: "1:5", expected: .integer([1, 2, 3, 4, 5])),
        Conversion(code: "c(1.5, NA, -Inf, Inf, 0, -2e-300)", expected: .double([1.5, nil, -.infinity, .infinity, 0, -2e-300])),
        Conversion(code: "NA_real_", expected: .double([nil])),
        Conversion(code: "c(NA, NaN)", expected: .double([nil, .nan])),
        Conversion(code: "c(1+2i, NA, 0-1i)", expected: .complex([RComplex(1, 2), nil, RComplex(0, -1)])),
        Conversion(code: "complex(real = 1, imaginary = NA)", expected: .complex([nil])),
        Conversion(code: "NA_complex_", expected: .complex([nil])),
        Conversion(code: "c('a', NA, 'NA', '')", expected: .character(["a", nil, "NA", ""])),
        Conversion(code: "NA_character_", expected: .character([nil])),
        Conversion(code: "as.raw(c(0, 1, 127, 255))", expected: .raw([0, 1, 127, 255])),
        Conversion(code: "logical(0)", expected: .logical([])),
        Conversion(code: "integer(0)", expected: .integer([])),
        Conversion(code: "numeric(0)", expected: .double([])),
        Conversion(code: "complex(0)", expected: .complex([])),
        Conversion(code: "character(0)", expected: .character([])),
        Conversion(code: "raw(0)", expected: .raw([])),
        Conversion(code: "list()", expected: .list([])),
        Conversion(code: "c(a = 1, b = 2)", expected: .double([1, 2], names: ["a", "b"])),
        Conversion(code: "c(x = TRUE)", expected: .logical([true], names: ["x"])),
        Conversion(
            code: "setNames(1:2, c('a', NA))",
            expected: RValue(.integer([1, 2]), attributes: [RAttribute(name: "names", value: .character(["a", nil]))])
        ),
        Conversion(code: "list(a = 1L, b = 'x')", expected: .list([.integer([1]), .character(["x"])], names: ["a", "b"])),
        Conversion(code: "c('héllo ✓', '日本語', '😀', 'Ωmega')", expected: .character(["héllo ✓", "日本語", "😀", "Ωmega"])),
        Conversion(code: "'\\u00e9t\\u00e9'", expected: .character(["été"])),
        Conversion(code: "iconv('café', 'UTF-8', 'latin1')", expected: .character(["café"])),
        Conversion(code: "as.character(1:3)", expected: .character(["1", "2", "3"])),
        Conversion(code: "sort(c(3, 1, 2))", expected: .double([1, 2, 3])),
        Conversion(
            code: "structure(1:2, myattr = 'v')",
            expected: RValue(.integer([1, 2]), attributes: [RAttribute(name: "myattr", value: .character(["v"]))])
        ),
    ]
}

/// An R expression whose value has no data model.
struct OpaqueCase: Sendable, CustomTestStringConvertible {
    var code: String
    var type: String
    /// The exact description, when it is stable enough to check.
    var description: String?
    var testDescription: String { code }

    static let all: [OpaqueCase] = [
        OpaqueCase(code: "function(x) x", type: "closure"),
        OpaqueCase(code: "globalenv()", type: "environment", description: "<environment>"),
        OpaqueCase(code: "new.env()", type: "environment", description: "<environment>"),
        OpaqueCase(code: "sum", type: "builtin"),
        OpaqueCase(code: "`if`", type: "special"),
    ]
}

/// An R expression that R evaluates to `expected`.
struct Probe: Sendable {
    var code: String
    var expected: RValue
    init(_ code: String, _ expected: RValue) {
        self.code = code
        self.expected = expected
    }
}

/// A Swift value to send to R, with what R must say about it.
struct RoundTrip: Sendable, CustomTestStringConvertible {
    var label: String
    var value: RValue
    var probes: [Probe]
    var testDescription: String { label }

    static let yes = RValue.logical([true])

    static let all: [RoundTrip] = [
        RoundTrip(label: "NULL", value: .null, probes: [Probe("is.null(x)", yes)]),
        RoundTrip(label: "logical with NA", value: .logical([true, nil, false]), probes: [
            Probe("typeof(x)", .character(["logical"])),
            Probe("is.na(x)", .logical([false, true, false])),
        ]),
        RoundTrip(label: "integer with NA", value: .integer([1, nil, Int32.max, -Int32.max]), probes: [
            Probe("typeof(x)", .character(["integer"])),
            Probe("is.na(x)", .logical([false, true, false, false])),
            Probe("x[3]", .integer([Int32.max])),
        ]),
        RoundTrip(label: "double with NA and NaN", value: .double([1.5, nil, .nan, .infinity, -.infinity, -0.0]), probes: [
            Probe("typeof(x)", .character(["double"])),
            Probe("is.na(x)", .logical([false, true, true, false, false, false])),
            Probe("is.nan(x)", .logical([false, false, true, false, false, false])),
            Probe("identical(x[2], NA_real_)", yes),
            Probe("1 / x[6]", .double([-.infinity])),
        ]),
        RoundTrip(label: "complex with NA", value: .complex([RComplex(1, 2), nil, RComplex(-0.5, 0)]), probes: [
            Probe("typeof(x)", .character(["complex"])),
            Probe("is.na(x)", .logical([false, true, false])),
            Probe("Im(x[1])", .double([2])),
        ]),
        RoundTrip(label: "character with NA and \"NA\"", value: .character(["a", nil, "NA", ""]), probes: [
            Probe("is.na(x)", .logical([false, true, false, false])),
            Probe("x[3] == 'NA'", yes),
            Probe("nchar(x[4])", .integer([0])),
        ]),
        RoundTrip(label: "UTF-8 strings", value: .character(["héllo ✓", "日本語", "😀"]), probes: [
            Probe("nchar(x)", .integer([7, 3, 1])),
            Probe("Encoding(x)", .character(["UTF-8", "UTF-8", "UTF-8"])),
            Probe("x[2] == '\\u65e5\\u672c\\u8a9e'", yes),
        ]),
        RoundTrip(label: "raw", value: .raw([0, 1, 127, 255]), probes: [
            Probe("typeof(x)", .character(["raw"])),
            Probe("as.integer(x)", .integer([0, 1, 127, 255])),
        ]),
        RoundTrip(label: "empty logical", value: .logical([]), probes: [Probe("identical(x, logical(0))", yes)]),
        RoundTrip(label: "empty integer", value: .integer([]), probes: [Probe("identical(x, integer(0))", yes)]),
        RoundTrip(label: "empty double", value: .double([]), probes: [Probe("identical(x, numeric(0))", yes)]),
        RoundTrip(label: "empty complex", value: .complex([]), probes: [Probe("identical(x, complex(0))", yes)]),
        RoundTrip(label: "empty character", value: .character([]), probes: [Probe("identical(x, character(0))", yes)]),
        RoundTrip(label: "empty raw", value: .raw([]), probes: [Probe("identical(x, raw(0))", yes)]),
        RoundTrip(label: "empty list", value: .list([]), probes: [Probe("identical(x, list())", yes)]),
        RoundTrip(label: "named double", value: .double([1, 2], names: ["a", "b"]), probes: [
            Probe("names(x)", .character(["a", "b"])),
            Probe("x[['b']]", .double([2])),
        ]),
        RoundTrip(label: "matrix", value: .matrix(.double([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3), probes: [
            Probe("is.matrix(x)", yes),
            Probe("dim(x)", .integer([2, 3])),
            Probe("x[2, 3]", .double([6])),
        ]),
        RoundTrip(
            label: "matrix with dimnames",
            value: RValue(.integer([1, 2, 3, 4, 5, 6]), attributes: [
                RAttribute(name: "dim", value: .integer([2, 3])),
                RAttribute(name: "dimnames", value: .list([.character(["r1", "r2"]), .character(["a", "b", "c"])])),
            ]),
            probes: [
                Probe("rownames(x)", .character(["r1", "r2"])),
                Probe("colnames(x)", .character(["a", "b", "c"])),
                Probe("x['r2', 'b']", .integer([4])),
            ]
        ),
        RoundTrip(
            label: "3-d array",
            value: RValue(.integer((1...24).map { Int32($0) }), attributes: [RAttribute(name: "dim", value: .integer([2, 3, 4]))]),
            probes: [
                Probe("is.array(x)", yes),
                Probe("dim(x)", .integer([2, 3, 4])),
                Probe("x[2, 3, 4]", .integer([24])),
            ]
        ),
        RoundTrip(label: "factor", value: .factor(codes: [2, 1, nil, 2], levels: ["a", "b"]), probes: [
            Probe("is.factor(x)", yes),
            Probe("levels(x)", .character(["a", "b"])),
            Probe("nlevels(x)", .integer([2])),
            Probe("as.character(x)", .character(["b", "a", nil, "b"])),
            Probe("is.na(x)", .logical([false, false, true, false])),
            Probe("as.vector(table(x))", .integer([1, 2])),
        ]),
        RoundTrip(
            label: "ordered factor",
            value: RValue(.integer([2, 1]), attributes: [
                RAttribute(name: "levels", value: .character(["lo", "hi"])),
                RAttribute(name: "class", value: .character(["ordered", "factor"])),
            ]),
            probes: [
                Probe("is.ordered(x)", yes),
                Probe("x[1] > x[2]", yes),
            ]
        ),
        RoundTrip(
            label: "data frame",
            value: .dataFrame([
                ("n", .integer([1, 2, 3])),
                ("s", .character(["x", nil, "z"])),
                ("f", .factor(codes: [1, 2, 1], levels: ["u", "v"])),
                ("d", .double([0.5, nil, .nan])),
            ]),
            probes: [
                Probe("is.data.frame(x)", yes),
                Probe("nrow(x)", .integer([3])),
                Probe("ncol(x)", .integer([4])),
                Probe("names(x)", .character(["n", "s", "f", "d"])),
                Probe("rownames(x)", .character(["1", "2", "3"])),
                Probe(".row_names_info(x)", .integer([-3])),
                Probe("is.na(x$s)", .logical([false, true, false])),
                Probe("is.factor(x$f)", yes),
                Probe("sum(x$n)", .integer([6])),
                Probe("identical(x, data.frame(n = 1:3, s = c('x', NA, 'z'), f = factor(c('u', 'v', 'u')), d = c(0.5, NA, NaN)))", yes),
            ]
        ),
        RoundTrip(
            label: "data frame with character row names",
            value: RValue(.list([.integer([1, 2])]), attributes: [
                RAttribute(name: "names", value: .character(["v"])),
                RAttribute(name: "class", value: .character(["data.frame"])),
                RAttribute(name: "row.names", value: .character(["r1", "r2"])),
            ]),
            probes: [
                Probe("rownames(x)", .character(["r1", "r2"])),
                Probe("x['r2', 'v']", .integer([2])),
            ]
        ),
        RoundTrip(
            label: "Date",
            value: RValue(.double([19724, nil]), attributes: [RAttribute(name: "class", value: .character(["Date"]))]),
            probes: [
                Probe("inherits(x, 'Date')", yes),
                Probe("format(x)", .character(["2024-01-02", nil])),
                Probe("is.na(x)", .logical([false, true])),
            ]
        ),
        RoundTrip(
            label: "POSIXct in UTC",
            value: RValue(.double([1_704_164_645]), attributes: [
                RAttribute(name: "class", value: .character(["POSIXct", "POSIXt"])),
                RAttribute(name: "tzone", value: .character(["UTC"])),
            ]),
            probes: [
                Probe("inherits(x, 'POSIXct')", yes),
                Probe("format(x, '%Y-%m-%d %H:%M:%S')", .character(["2024-01-02 03:04:05"])),
                Probe("attr(x, 'tzone')", .character(["UTC"])),
            ]
        ),
        RoundTrip(
            label: "nested list",
            value: .list([
                .double([1]),
                .list([.character(["deep"]), .null, .list([.logical([nil])])], names: ["s", "n", "l"]),
            ], names: ["a", "b"]),
            probes: [
                Probe("x$b$s", .character(["deep"])),
                Probe("is.null(x$b$n)", yes),
                Probe("length(x$b)", .integer([3])),
                Probe("is.na(x$b$l[[1]])", yes),
            ]
        ),
        RoundTrip(
            label: "custom attribute",
            value: RValue(.integer([1, 2]), attributes: [RAttribute(name: "myattr", value: .character(["v"]))]),
            probes: [Probe("attr(x, 'myattr')", .character(["v"]))]
        ),
    ]
}

/// R expressions whose values must be `identical()` after R -> Swift -> R.
let rExpressions: [String] = [
    "NULL",
    "c(TRUE, NA)",
    "c(1L, NA)",
    "1:10",
    "c(1.5, NA, NaN, Inf, -0)",
    "0/0",
    "c(1+2i, NA)",
    "c('a', NA, 'NA', '')",
    "as.raw(0:255)",
    "character(0)",
    "list()",
    "c(a = 1, b = 2)",
    "matrix(1:6, 2, dimnames = list(c('a', 'b'), NULL))",
    "matrix(1:4, 2, dimnames = list(rows = c('a', 'b'), cols = c('x', 'y')))",
    "array(1:24, c(2, 3, 4))",
    "factor(c('b', 'a', NA))",
    "factor(c('lo', 'hi'), levels = c('lo', 'hi'), ordered = TRUE)",
    "data.frame(n = 1:3, s = c('x', NA, 'z'))",
    "data.frame(v = 1:2, row.names = c('r1', 'r2'))",
    "iris",
    "mtcars",
    "as.Date(c('2024-01-02', NA))",
    "as.POSIXct('2024-01-02 03:04:05', tz = 'UTC')",
    "as.POSIXlt('2024-01-02 03:04:05', tz = 'UTC')",
    "list(1, list(TRUE, list('deep')), NULL)",
    "c('héllo ✓', '日本語')",
    "iconv('café', 'UTF-8', 'latin1')",
    "table(c('a', 'b', 'a'))",
    "structure(1:3, myattr = 'v')",
    "as.character(1:3)",
]

/// A value R refuses to build.
struct RejectedCase: Sendable, CustomTestStringConvertible {
    var label: String
    var value: RValue
    var testDescription: String { label }

    static let all: [RejectedCase] = [
        RejectedCase(label: "string with an embedded NUL", value: .character(["a\u{0}b"])),
        RejectedCase(
            label: "factor class on a double",
            value: RValue(.double([1]), attributes: [RAttribute(name: "class", value: .character(["factor"]))])
        ),
        RejectedCase(
            label: "dim that does not match the length",
            value: RValue(.integer([1, 2, 3]), attributes: [RAttribute(name: "dim", value: .integer([2, 2]))])
        ),
        RejectedCase(
            label: "attribute on NULL",
            value: RValue(.null, attributes: [RAttribute(name: "names", value: .character(["a"]))])
        ),
    ]
}
