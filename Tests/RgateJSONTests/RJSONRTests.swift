import Foundation
import RgateJSON
import RgateModel
import Testing

/// Runs `Rscript` (with jsonlite) when installed; the suite is skipped otherwise.
enum Rscript {
    static let path: String? = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin").split(separator: ":")
        return directories.map { "\($0)/Rscript" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static let available: Bool = {
        guard path != nil else { return false }
        return (try? run(#"quit(status = if (requireNamespace("jsonlite", quietly = TRUE)) 0 else 3)"#))?.status == 0
    }()

    /// Runs `script` with `Rscript --vanilla` in a UTF-8 locale; returns the exit status and
    /// everything it printed (stdout and stderr).
    static func run(_ script: String) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rjson-\(UUID().uuidString).R")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path!)
        process.arguments = ["--vanilla", file.path]
        var environment = ProcessInfo.processInfo.environment
        environment["LANG"] = "C.UTF-8"
        environment["LC_ALL"] = "C.UTF-8"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// rgate's rjson read by R itself: `identical(expected, jsonlite::unserializeJSON(json))`.
@Suite("rjson read by R's jsonlite", .enabled(if: Rscript.available, "Rscript with jsonlite is not installed"), .serialized)
struct RJSONRTests {
    /// An R expression and the same value built in Swift; `nil` means: take R's own
    /// `serializeJSON(expr, digits = NA)` and decode it (which also tests reading jsonlite's output).
    struct Case: Sendable {
        var expression: String
        var value: RValue?
        /// Whether decoding R's `serializeJSON` output must give exactly `value`.
        var matchesJsonlite = false
        /// What `unserializeJSON` returns instead, where jsonlite's reader cannot recreate the value.
        var jsonliteReads: String?
    }

    static func chr(_ v: [String?]) -> RValue { RValue(.character(v)) }
    static func sym(_ s: String) -> RValue { RValue(.symbol(s)) }
    static func attr(_ name: String, _ value: RValue) -> RAttribute { RAttribute(name: name, value: value) }
    static func call(_ items: [RValue], tags: [String]? = nil) -> RValue {
        RValue(.language(items), attributes: tags.map { [attr("names", chr($0))] } ?? [])
    }

    static let cases: [Case] = {
        var nested = RValue.integer([1])
        for _ in 0..<40 { nested = .list([nested]) }  // R's own serializeJSON overflows its C stack near 150
        var cases: [Case] = [
            Case(expression: "NULL", value: .null, matchesJsonlite: true),
            Case(expression: "logical(0)", value: .logical([]), matchesJsonlite: true),
            Case(expression: "c(TRUE, NA, FALSE)", value: .logical([true, nil, false]), matchesJsonlite: true),
            Case(expression: "c(1L, NA, -2147483647L, 2147483647L)", value: .integer([1, nil, -2147483647, 2147483647]), matchesJsonlite: true),
            Case(expression: "c(a = 1L, b = NA)", value: .integer([1, nil], names: ["a", "b"]), matchesJsonlite: true),
            Case(expression: "c(1.5, NA, NaN, Inf, -Inf, 0, -0, 0.1 + 0.2, 1/3, 1e308, .Machine$double.xmax, 5e-324, 3 * 5e-324, 2.2250738585072014e-308, 1e16, 1e15 + 0.5, 2^53, 2^53 + 2, -1e-5, 1e-7, 123456789.125, pi, exp(1), 1e23, 8.41e21)",
                 value: .double([1.5, nil, .nan, .infinity, -.infinity, 0, -0.0, 0.1 + 0.2, 1.0 / 3, 1e308, .greatestFiniteMagnitude, Double.leastNonzeroMagnitude, 3 * Double.leastNonzeroMagnitude,
                                 2.2250738585072014e-308, 1e16, 1e15 + 0.5, 9007199254740992, 9007199254740994, -1e-5, 1e-7, 123456789.125, .pi,
                                 2.718281828459045, 1e23, 8.41e21])),
            Case(expression: "(0:1000) / 7", value: .double((0...1000).map { Double($0) / 7 })),
            Case(expression: "(1:100000) / 3", value: .double((1...100_000).map { Double($0) / 3 })),
            Case(expression: "complex(real = c(1, NaN, Inf, 0, 1/3, -0.5, 5e-324), imaginary = c(2, -Inf, -0, 1e-300, -2/3, NaN, .Machine$double.xmax))",
                 value: .complex([RComplex(1, 2), RComplex(.nan, -.infinity), RComplex(.infinity, -0.0), RComplex(0, 1e-300), RComplex(1.0 / 3, -2.0 / 3),
                                  RComplex(-0.5, .nan), RComplex(Double.leastNonzeroMagnitude, .greatestFiniteMagnitude)])),
            Case(expression: "c(1+2i, NA_complex_)", value: .complex([RComplex(1, 2), nil])),
            Case(expression: #"c("a", NA, "NA", "\u00e9", "\"q\" \\ b", "tab\tnl\n", "\U0001F600", "", "x\001y")"#,
                 value: chr(["a", nil, "NA", "é", "\"q\" \\ b", "tab\tnl\n", "😀", "", "x\u{1}y"]), matchesJsonlite: true),
            Case(expression: #"c("NA", "Inf")"#, value: chr(["NA", "Inf"]), matchesJsonlite: true, jsonliteReads: #"c(NA, "Inf")"#),
            Case(expression: "as.raw(c(0, 1, 255))", value: .raw([0, 1, 255]), matchesJsonlite: true),
            Case(expression: "raw(0)", value: .raw([]), matchesJsonlite: true),
            Case(expression: "as.raw(rep(0:255, 3))", value: .raw(Array(0...255) + Array(0...255) + Array(0...255)), matchesJsonlite: true),
            Case(expression: #"structure(1:3, names = c("a", NA, ""))"#, value: .integer([1, 2, 3], names: nil).with(names: ["a", nil, ""]), matchesJsonlite: true),
            Case(expression: #"factor(c("x", "y", NA, "x"))"#, value: .factor(codes: [1, 2, nil, 1], levels: ["x", "y"]), matchesJsonlite: true),
            Case(expression: #"factor(c("lo", "hi"), levels = c("lo", "hi"), ordered = TRUE)"#),
            Case(expression: #"as.Date(c("2024-01-02", NA))"#, value: RValue(.double([19724, nil]), attributes: [attr("class", chr(["Date"]))]), matchesJsonlite: true),
            Case(expression: #"as.POSIXct("2024-01-02 03:04:05.5", tz = "UTC")"#,
                 value: RValue(.double([1704164645.5]), attributes: [attr("class", chr(["POSIXct", "POSIXt"])), attr("tzone", chr(["UTC"]))]), matchesJsonlite: true),
            Case(expression: #"as.POSIXct(c("2024-03-10 01:30:00", "2024-11-03 01:30:00", NA), tz = "America/New_York")"#),
            Case(expression: "matrix(1:6, 2)", value: RValue(.integer([1, 2, 3, 4, 5, 6]), attributes: [attr("dim", .integer([2, 3]))]), matchesJsonlite: true),
            Case(expression: #"matrix(c(1.5, NA, 3, 4), 2, dimnames = list(c("a", "b"), NULL))"#,
                 value: RValue(.double([1.5, nil, 3, 4]), attributes: [attr("dim", .integer([2, 2])), attr("dimnames", .list([chr(["a", "b"]), .null]))]),
                 matchesJsonlite: true),
            Case(expression: "array(1:24, c(2, 3, 4))"),
            Case(expression: #"data.frame(x = 1:2, y = c("a", NA), z = c(0.1, NaN))"#,
                 value: .dataFrame([("x", .integer([1, 2])), ("y", chr(["a", nil])), ("z", .double([0.1, .nan]))])),
            Case(expression: #"data.frame(x = 1:2, y = c("a", NA))"#),
            Case(expression: #"data.frame(x = 1:2, row.names = c("r1", "r2"))"#,
                 value: RValue(.list([.integer([1, 2])]), attributes: [attr("names", chr(["x"])), attr("class", chr(["data.frame"])), attr("row.names", chr(["r1", "r2"]))]),
                 matchesJsonlite: true),
            Case(expression: "mtcars"),
            Case(expression: "iris"),
            Case(expression: "airquality"),
            Case(expression: "ts(1:10, start = 2000)"),
            Case(expression: #"list(1L, list(a = "x", b = list(NULL, TRUE)), NULL)"#,
                 value: .list([.integer([1]), .list([chr(["x"]), .list([.null, .logical([true])])], names: ["a", "b"]), .null]), matchesJsonlite: true),
            Case(expression: "list()", value: .list([]), matchesJsonlite: true),
            Case(expression: "list(a = NULL, b = 1)", value: .list([.null, .double([1])], names: ["a", "b"]), matchesJsonlite: true),
            Case(expression: #"structure(1:3, foo = "bar", baz = list(1L))"#,
                 value: RValue(.integer([1, 2, 3]), attributes: [attr("foo", chr(["bar"])), attr("baz", .list([.integer([1])]))]), matchesJsonlite: true),
            Case(expression: #"structure(list(1), class = "myclass", extra = c(k = 2L))"#,
                 value: RValue(.list([.double([1])]), attributes: [attr("class", chr(["myclass"])), attr("extra", .integer([2], names: ["k"]))]), matchesJsonlite: true),
            Case(expression: "local({x <- 1L; for (i in 1:40) x <- list(x); x})", value: nested, matchesJsonlite: true),
            Case(expression: #"as.pairlist(list(a = 1, b = "x"))"#,
                 value: RValue(.pairlist([.double([1]), chr(["x"])]), attributes: [attr("names", chr(["a", "b"]))]), matchesJsonlite: true),
            Case(expression: "quote(x)", value: sym("x"), matchesJsonlite: true),
            Case(expression: #"as.name("a b")"#, value: sym("a b")),
            Case(expression: "quote(f(x, y = 1))", value: call([sym("f"), sym("x"), .double([1])], tags: ["", "", "y"]), matchesJsonlite: true),
            Case(expression: "quote(x + 1)", value: call([sym("+"), sym("x"), .double([1])])),
            Case(expression: "quote(x[, 1L])", value: call([sym("["), sym("x"), sym(""), .integer([1])])),
            Case(expression: "quote({ a; (b) })", value: call([sym("{"), sym("a"), call([sym("("), sym("b")])])),
            Case(expression: "quote(f(x)(y))", value: call([call([sym("f"), sym("x")]), sym("y")])),
            Case(expression: "quote(next)", value: call([sym("next")])),
            Case(expression: #"quote(f(g(1L), "s\n\"", NULL, NA, TRUE, 2i, Inf, NaN, NA_real_, NA_integer_, NA_character_, 0.1, 1e-300, 1e300, "\u00e9"))"#,
                 value: call([sym("f"), call([sym("g"), .integer([1])]), chr(["s\n\""]), .null, .logical([nil]), .logical([true]), .complex([RComplex(0, 2)]),
                              .double([.infinity]), .double([.nan]), .double([nil]), .integer([nil]), chr([nil]), .double([0.1]), .double([1e-300]),
                              .double([1e300]), chr(["é"])])),
            Case(expression: "quote(`my fun`(`a b` = b, `if` = 1, ... = z))",
                 value: call([sym("my fun"), sym("b"), .double([1]), sym("z")], tags: ["", "a b", "if", "..."])),
        ]
        // A random-ish mix of NA everywhere.
        cases.append(Case(expression: #"list(l = NA, i = NA_integer_, d = NA_real_, c = NA_complex_, s = NA_character_)"#,
                          value: .list([.logical([nil]), .integer([nil]), .double([nil]), .complex([nil]), chr([nil])], names: ["l", "i", "d", "c", "s"])))
        return cases
    }()

    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rjson-r-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func rString(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }

    @Test func rReadsRgatesEncodingIdentically() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = Self.cases

        // 1. R's own serializeJSON for the cases that need or check it.
        var script = "suppressMessages(library(jsonlite))\n"
        for (i, c) in cases.enumerated() where c.value == nil || c.matchesJsonlite {
            script += "writeLines(serializeJSON(\(c.expression), digits = NA), \(Self.rString(dir.appendingPathComponent("r_\(i).json").path)), useBytes = TRUE)\n"
        }
        let serialized = try Rscript.run(script)
        try #require(serialized.status == 0, "R could not serialize the cases:\n\(serialized.output)")

        var values: [RValue] = []
        for (i, c) in cases.enumerated() {
            var value = c.value
            if c.value == nil || c.matchesJsonlite {
                let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("r_\(i).json")))
                let fromR: RValue
                do { fromR = try RJSON.decode(bytes) } catch {
                    Issue.record("decoding serializeJSON(\(c.expression)): \(error)")
                    continue
                }
                if let expected = c.value {
                    #expect(fromR == expected, "serializeJSON(\(c.expression)) decodes to a different value")
                }
                value = value ?? fromR
            }
            values.append(value!)
            try Data(RJSON.encode(value!)).write(to: dir.appendingPathComponent("s_\(i).json"))
        }
        try #require(values.count == cases.count)

        // 2. R reads rgate's encoding and compares with the expression.
        script = """
            suppressMessages(library(jsonlite))
            check <- function(i, expected) {
              f <- \(Self.rString(dir.path + "/"))
              text <- paste(readLines(paste0(f, "s_", i, ".json"), encoding = "UTF-8", warn = FALSE), collapse = "\\n")
              got <- tryCatch(unserializeJSON(text), error = function(e) structure(conditionMessage(e), class = "failure"))
              if (inherits(got, "failure")) cat("ERROR", i, got, "\\n")
              else if (identical(expected, got)) cat("OK", i, "\\n")
              else cat("DIFF", i, paste(deparse(got), collapse = " "), "\\n")
            }

            """
        for (i, c) in cases.enumerated() {
            script += "tryCatch(check(\(i), \(c.jsonliteReads ?? c.expression)), error = function(e) cat(\"ERROR\", \(i), conditionMessage(e), \"\\n\"))\n"
        }
        let checked = try Rscript.run(script)
        #expect(checked.status == 0, "\(checked.output)")
        var lines: [Int: Substring] = [:]
        for line in checked.output.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 2)
            if words.count >= 2, let i = Int(words[1]) { lines[i] = line }
        }
        for (i, c) in cases.enumerated() {
            let line = lines[i] ?? "no answer"
            #expect(line.hasPrefix("OK"), "identical(\(c.jsonliteReads ?? c.expression), unserializeJSON(rjson)): \(line)")
        }
    }

    @Test func rReadsRandomDoublesAndComplexBitExactly() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = SplitMix64(seed: 0xD0B1E)
        var doubles: [Double] = [Double(bitPattern: 0x7FF0_0000_0000_07A2), .nan, .infinity, -.infinity, -0.0, 0, Double.leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for _ in 0..<30_000 { doubles.append(.randomBits(using: &g)) }
        for _ in 0..<5_000 { doubles.append(Double(Int64.random(in: -100_000...100_000, using: &g)) / 100) }
        var parts: [Double] = []
        for _ in 0..<5_000 { parts.append(.randomBits(using: &g)); parts.append(.randomBits(using: &g)) }
        parts += [.nan, 1, .infinity, -.infinity, -0.0, -0.0, Double.leastNonzeroMagnitude, .nan]

        func bits(_ v: [Double]) -> Data { v.withUnsafeBytes { Data($0) } }
        try bits(doubles).write(to: dir.appendingPathComponent("d.bin"))
        try bits(parts).write(to: dir.appendingPathComponent("z.bin"))
        let na = { (d: Double) -> Double? in d.isNaN && d.bitPattern & 0xFFFF_FFFF == 1954 ? nil : d }
        try Data(RJSON.encode(.double(doubles.map(na)))).write(to: dir.appendingPathComponent("d.json"))
        let complex = stride(from: 0, to: parts.count, by: 2).map { RComplex(parts[$0], parts[$0 + 1]) }
        try Data(RJSON.encode(.complex(complex))).write(to: dir.appendingPathComponent("z.json"))

        let script = """
            suppressMessages(library(jsonlite))
            f <- function(name) paste0(\(Self.rString(dir.path + "/")), name)
            read <- function(name) unserializeJSON(paste(readLines(f(name), warn = FALSE), collapse = ""))
            d <- readBin(f("d.bin"), "double", n = \(doubles.count))
            got <- read("d.json")
            cat("doubles", identical(d, got), identical(writeBin(d, raw()), writeBin(got, raw())), sum(d != got, na.rm = TRUE), "\\n")
            differ <- function(a, b) {
              ra <- matrix(writeBin(a, raw()), 8); rb <- matrix(writeBin(b, raw()), 8)
              w <- which(colSums(ra != rb) > 0)
              for (k in head(w, 5)) cat("  element", k, sprintf("%a", a[k]), "came back as", sprintf("%a", b[k]), "\\n")
            }
            differ(d, got)
            z <- readBin(f("z.bin"), "double", n = \(parts.count))
            z <- complex(real = z[c(TRUE, FALSE)], imaginary = z[c(FALSE, TRUE)])
            got <- read("z.json")
            cat("complex", identical(z, got), identical(writeBin(z, raw()), writeBin(got, raw())), "\\n")
            differ(Re(z), Re(got)); differ(Im(z), Im(got))
            """
        let result = try Rscript.run(script)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("doubles TRUE TRUE 0"), "\(result.output)")
        #expect(result.output.contains("complex TRUE TRUE"), "\(result.output)")
    }
}

extension RValue {
    /// This value with a `names` attribute that may hold NA.
    func with(names: [String?]) -> RValue {
        var copy = self
        copy[attribute: "names"] = RValue(.character(names))
        return copy
    }
}
