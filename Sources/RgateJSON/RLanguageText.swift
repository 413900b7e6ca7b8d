internal import RgateModel

/// Calls (R language objects) as R source text in prefix form, the way rjson carries them.
///
/// `serializeJSON` writes a call as its `deparse()`, which `unserializeJSON` parses back. Infix
/// deparses (`x + 1`) need a full R parser to read, so rgate writes every call in prefix form,
/// which R parses back to an identical call: `` `+`(x, 1) ``, `` `[`(df, , "a") ``,
/// `f(x, y = 1L, "s", NULL)`. Names are backquoted only when not syntactic. rgate reads the same
/// subset: names, backquoted names, constants and nested calls `f(…)(…)` with optional tags, so
/// it also reads jsonlite's deparse of simple calls such as `f(x, y = 1)`; anything else
/// (operators, `function`, `if`, a leading `-`) is refused with ``RJSONError/Code/unsupportedLanguage``.
///
/// Doubles in calls have 17 significant digits (``RDouble/seventeenDigits(_:)``), which R's
/// parser reads exactly (`1`, `0.5`, `0.10000000000000001`); strings are R literals with `\"`,
/// `\\`, `\n`, `\r`, `\t` and `\xhh` escapes and raw UTF-8.
///
/// Constants R's parser cannot produce inside a call are refused when writing: negative numbers
/// and `-0` (R reads `-1` as the call `` `-`(1) ``), `-Inf`, complex numbers other than `0+yi`
/// with y ≥ 0, vectors whose length is not 1, constants with attributes, lists, raw vectors,
/// pairlists (function formals) and opaque objects.
enum RLanguageText {
    static let reservedWords: Set<String> = [
        "if", "else", "repeat", "while", "function", "for", "next", "break", "in",
        "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_",
    ]

    /// Whether R reads `name` as a symbol without backquotes (ASCII letters only; others are quoted).
    static func isSyntacticName(_ name: String) -> Bool {
        let utf8 = Array(name.utf8)
        guard let first = utf8.first, !reservedWords.contains(name) else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if first == UInt8(ascii: ".") {
            if utf8.count > 1 && isDigit(utf8[1]) { return false }
        } else if !isLetter(first) {
            return false
        }
        return utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") }
    }

    /// `name` as R source: as is when syntactic, else backquoted.
    static func name(_ name: String) -> String { isSyntacticName(name) ? name : backquoted(name) }

    /// An R string literal.
    static func quoted(_ text: String) -> String { escaped(text, quote: UInt8(ascii: "\"")) }

    /// A backquoted R name.
    static func backquoted(_ text: String) -> String { escaped(text, quote: UInt8(ascii: "`")) }

    private static func escaped(_ text: String, quote: UInt8) -> String {
        var out: [UInt8] = [quote]
        let hex = Array("0123456789abcdef".utf8)
        for b in text.utf8 {
            switch b {
            case quote, UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), b]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20, 0x7F: out += [UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(quote)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Writing

    /// The prefix-form source text of a call; `value` is a `.language` value.
    static func deparse(_ value: RValue, path: RJSONPath) throws(RJSONError) -> String {
        try Deparser(path: path).call(value, depth: 0)
    }

    private struct Deparser {
        let path: RJSONPath
        static let maximumDepth = 256

        func fail(_ message: String) -> RJSONError { RJSONError(.unsupportedLanguage, message, path: path.rendered) }

        func call(_ value: RValue, depth: Int) throws(RJSONError) -> String {
            guard depth < Self.maximumDepth else { throw RJSONError(.tooDeep, "calls nested more than \(Self.maximumDepth) deep", path: path.rendered) }
            guard case .language(let items) = value.payload else { throw fail("not a call") }
            guard let head = items.first else { throw fail("a call without a function") }
            var tags: [String] = Array(repeating: "", count: items.count)
            for attribute in value.attributes {
                guard attribute.name == "names" else {
                    if depth == 0 { continue }  // the top-level call's other attributes are rjson attributes
                    throw fail("a call inside a call carries the attribute '\(attribute.name)', which R source cannot express")
                }
                guard case .character(let names) = attribute.value.payload, names.count == items.count,
                      attribute.value.attributes.isEmpty, !names.contains(nil)
                else { throw fail("the argument names of a call must be a character vector without NA, one per element") }
                tags = names.map { $0 ?? "" }
            }
            guard tags[0].isEmpty else { throw fail("the function of a call cannot have a tag ('\(tags[0])')") }
            var text: String
            switch head.payload {
            case .symbol(let s) where s.isEmpty: throw fail("the function of a call is the empty symbol")
            case .character: throw fail("a string as the function of a call: R's parser would make it a symbol")
            default: text = try expression(head, depth: depth + 1)
            }
            if items.count == 2, tags[1].isEmpty, case .symbol("") = items[1].payload {
                throw fail("a call whose only argument is the empty symbol: R would read f() as no arguments")
            }
            text += "("
            for i in items.indices.dropFirst() {
                if i > 1 { text += ", " }
                if !tags[i].isEmpty { text += Self.tag(tags[i]) + " = " }
                text += try expression(items[i], depth: depth + 1)
            }
            return text + ")"
        }

        static func tag(_ t: String) -> String { RLanguageText.name(t) }

        func expression(_ value: RValue, depth: Int) throws(RJSONError) -> String {
            if case .language = value.payload { return try call(value, depth: depth) }
            guard value.attributes.isEmpty else {
                throw fail("a constant with attributes (\(value.attributes.map(\.name).joined(separator: ", "))) inside a call")
            }
            func single<T>(_ v: [T], _ type: String) throws(RJSONError) -> T {
                guard v.count == 1 else { throw fail("a \(type) vector of length \(v.count) inside a call; R source has only length-1 constants") }
                return v[0]
            }
            switch value.payload {
            case .symbol(let s):
                return s.isEmpty ? "" : RLanguageText.name(s)
            case .null:
                return "NULL"
            case .logical(let v):
                guard let b = try single(v, "logical") else { return "NA" }
                return b ? "TRUE" : "FALSE"
            case .integer(let v):
                guard let i = try single(v, "integer") else { return "NA_integer_" }
                guard i >= 0 else { throw fail("the negative integer \(i) inside a call; R reads -n as a call to `-`") }
                return "\(i)L"
            case .double(let v):
                guard let d = try single(v, "double"), !RDouble.isNA(d) else { return "NA_real_" }
                if d.isNaN { return "NaN" }
                guard d.sign == .plus else { throw fail("the negative double \(d) inside a call; R reads -x as a call to `-`") }
                if d.isInfinite { return "Inf" }
                return RDouble.seventeenDigits(d)
            case .complex(let v):
                guard let z = try single(v, "complex") else { return "NA_complex_" }
                guard z.real.bitPattern == 0, z.imaginary.isFinite, z.imaginary.sign == .plus else {
                    throw fail("the complex number \(z.real)+\(z.imaginary)i inside a call; R source has only imaginary constants like 2i")
                }
                return RDouble.seventeenDigits(z.imaginary) + "i"
            case .character(let v):
                guard let s = try single(v, "character") else { return "NA_character_" }
                return RLanguageText.quoted(s)
            case .raw: throw fail("a raw vector inside a call")
            case .list: throw fail("a list inside a call")
            case .pairlist: throw fail("a pairlist inside a call (a function definition?)")
            case .opaque(let type, _): throw fail("an object of type \(type) inside a call")
            case .language: throw fail("unreachable")
            }
        }
    }

    // MARK: - Reading

    /// Parses prefix-form source text into a `.language` value (tags become a leading `names`
    /// attribute, as RgateEngine converts calls).
    static func parse(_ text: String, path: RJSONPath) throws(RJSONError) -> RValue {
        var parser = Parser(bytes: Array(text.utf8), path: path)
        parser.skipSpace()
        let value = try parser.expression(depth: 0)
        parser.skipSpace()
        guard parser.i == parser.bytes.count else { throw parser.unsupported() }
        guard case .language = value.payload else {
            throw RJSONError(.typeMismatch, "a language node whose text is not a call", path: path.rendered)
        }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let path: RJSONPath
        var i = 0
        static let maximumDepth = 256

        init(bytes: [UInt8], path: RJSONPath) {
            self.bytes = bytes
            self.path = path
        }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        func unsupported() -> RJSONError {
            let rest = String(decoding: bytes[min(i, bytes.count)...].prefix(20), as: UTF8.self)
            return RJSONError(
                .unsupportedLanguage,
                "call text outside the prefix form rgate reads (f(x, y = 1), `+`(x, 1)) at \"\(rest)\"; jsonlite::unserializeJSON reads any R code",
                path: path.rendered)
        }

        func fail(_ message: String) -> RJSONError { RJSONError(.unsupportedLanguage, message, path: path.rendered) }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
        }

        static func isNameByte(_ b: UInt8) -> Bool {
            (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b >= 0x80
        }

        static func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }

        enum Token {
            case name(String)
            case quotedName(String)
            case string(String)
        }

        /// A name, backquoted name or string at the cursor, if any.
        mutating func nameLike() throws(RJSONError) -> Token? {
            guard let b = peek else { return nil }
            if b == UInt8(ascii: "`") { return .quotedName(try quotedText(b)) }
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") { return .string(try quotedText(b)) }
            if b == UInt8(ascii: "."), Self.isDigit(i + 1 < bytes.count ? bytes[i + 1] : nil) { return nil }
            guard Self.isNameByte(b), !Self.isDigit(b), b != UInt8(ascii: "_") else { return nil }
            let start = i
            while let c = peek, Self.isNameByte(c) { i += 1 }
            guard let name = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("invalid UTF-8 in a name") }
            return .name(name)
        }

        mutating func expression(depth: Int) throws(RJSONError) -> RValue {
            guard depth < Self.maximumDepth else { throw RJSONError(.tooDeep, "calls nested more than \(Self.maximumDepth) deep", path: path.rendered) }
            var value: RValue
            var isStringConstant = false
            if let token = try nameLike() {
                switch token {
                case .quotedName(let n): value = RValue(.symbol(n))
                case .string(let s):
                    value = .character([s])
                    isStringConstant = true
                case .name(let n):
                    switch n {
                    case "TRUE": value = .logical([true])
                    case "FALSE": value = .logical([false])
                    case "NA": value = .logical([nil])
                    case "NULL": value = .null
                    case "Inf": value = .double([.infinity])
                    case "NaN": value = .double([.nan])
                    case "NA_integer_": value = .integer([nil])
                    case "NA_real_": value = .double([nil])
                    case "NA_character_": value = .character([nil])
                    case "NA_complex_": value = .complex([nil])
                    default:
                        guard !RLanguageText.reservedWords.contains(n) else { throw fail("the R keyword '\(n)' in call text") }
                        value = RValue(.symbol(n))
                    }
                }
            } else if Self.isDigit(peek) || peek == UInt8(ascii: ".") {
                value = try number()
            } else {
                throw unsupported()
            }
            while true {
                let save = i
                skipSpace()
                guard peek == UInt8(ascii: "(") else {
                    i = save
                    return value
                }
                i += 1
                var head = value
                if isStringConstant, case .character(let s) = value.payload, let name = s[0] { head = RValue(.symbol(name)) }
                isStringConstant = false
                value = try arguments(head: head, depth: depth)
            }
        }

        mutating func arguments(head: RValue, depth: Int) throws(RJSONError) -> RValue {
            var items = [head]
            var tags = [""]
            var subs = 0
            var lastEmpty = false
            while true {
                skipSpace()
                var tag = ""
                var value = RValue(.symbol(""))
                var empty = true
                if peek != UInt8(ascii: ",") && peek != UInt8(ascii: ")") {
                    let save = i
                    if let token = try nameLike() {
                        skipSpace()
                        if peek == UInt8(ascii: "="), i + 1 >= bytes.count || bytes[i + 1] != UInt8(ascii: "=") {
                            i += 1
                            switch token {
                            case .name(let n), .quotedName(let n), .string(let n): tag = n
                            }
                            if case .name(let n) = token, RLanguageText.reservedWords.contains(n) {
                                throw fail("the R keyword '\(n)' as an argument name")
                            }
                            empty = false
                        } else {
                            i = save
                        }
                    }
                    skipSpace()
                    if peek != UInt8(ascii: ",") && peek != UInt8(ascii: ")") {
                        value = try expression(depth: depth + 1)
                        empty = false
                        skipSpace()
                    }
                }
                subs += 1
                lastEmpty = empty
                items.append(value)
                tags.append(tag)
                guard let b = peek else { throw fail("call text ends inside a call") }
                i += 1
                if b == UInt8(ascii: ")") { break }
                guard b == UInt8(ascii: ",") else {
                    i -= 1
                    throw unsupported()
                }
            }
            if subs == 1 && lastEmpty {
                items.removeLast()
                tags.removeLast()
            }
            var attributes: [RAttribute] = []
            if tags.contains(where: { !$0.isEmpty }) {
                attributes.append(RAttribute(name: "names", value: .character(tags)))
            }
            return RValue(.language(items), attributes: attributes)
        }

        mutating func number() throws(RJSONError) -> RValue {
            let start = i
            while Self.isDigit(peek) { i += 1 }
            if peek == UInt8(ascii: "x") || peek == UInt8(ascii: "X") { throw fail("hexadecimal constants in call text") }
            if peek == UInt8(ascii: ".") {
                i += 1
                while Self.isDigit(peek) { i += 1 }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard Self.isDigit(peek) else { throw fail("a number without exponent digits in call text") }
                while Self.isDigit(peek) { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard text != ".", let d = Double(text) else { throw unsupported() }
            guard d.isFinite else { throw RJSONError(.numberOutOfRange, "the number \(text) in call text overflows a double", path: path.rendered) }
            switch peek {
            case UInt8(ascii: "L"):
                i += 1
                guard d == d.rounded(), let n = Int32(exactly: d), n != Int32.min else {
                    throw fail("\(text)L is not an R integer")
                }
                return .integer([n])
            case UInt8(ascii: "i"):
                i += 1
                return .complex([RComplex(0, d)])
            default:
                return .double([d])
            }
        }

        /// The text of a quoted string or name; the cursor is on the opening quote.
        mutating func quotedText(_ quote: UInt8) throws(RJSONError) -> String {
            i += 1
            var scalars = String.UnicodeScalarView()
            let start = i
            var plain = true
            func hexValue(_ b: UInt8) -> UInt32? {
                switch b {
                case 0x30...0x39: UInt32(b - 0x30)
                case 0x41...0x46: UInt32(b - 0x41 + 10)
                case 0x61...0x66: UInt32(b - 0x61 + 10)
                default: nil
                }
            }
            while true {
                guard let b = peek else { throw fail("call text ends inside a quoted string or name") }
                if b == quote {
                    let text: String
                    if plain {
                        guard let t = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("invalid UTF-8 in call text") }
                        text = t
                    } else {
                        text = String(scalars)
                    }
                    i += 1
                    return text
                }
                if b != UInt8(ascii: "\\") {
                    if !plain {
                        // Copy one UTF-8 sequence.
                        var end = i + 1
                        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
                        guard let piece = String(validating: bytes[i..<end], as: UTF8.self) else { throw fail("invalid UTF-8 in call text") }
                        scalars.append(contentsOf: piece.unicodeScalars)
                        i = end
                    } else {
                        i += 1
                    }
                    continue
                }
                if plain {
                    guard let prefix = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("invalid UTF-8 in call text") }
                    scalars.append(contentsOf: prefix.unicodeScalars)
                    plain = false
                }
                i += 1
                guard let e = peek else { throw fail("call text ends inside an escape") }
                i += 1
                var code: UInt32
                switch e {
                case UInt8(ascii: "n"): code = 0x0A
                case UInt8(ascii: "r"): code = 0x0D
                case UInt8(ascii: "t"): code = 0x09
                case UInt8(ascii: "b"): code = 0x08
                case UInt8(ascii: "a"): code = 0x07
                case UInt8(ascii: "f"): code = 0x0C
                case UInt8(ascii: "v"): code = 0x0B
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "`"), UInt8(ascii: " "): code = UInt32(e)
                case 0x30...0x37:
                    code = UInt32(e - 0x30)
                    var n = 1
                    while n < 3, let d = peek, d >= 0x30 && d <= 0x37 {
                        code = code * 8 + UInt32(d - 0x30)
                        i += 1
                        n += 1
                    }
                case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let limit = e == UInt8(ascii: "x") ? 2 : e == UInt8(ascii: "u") ? 4 : 8
                    let braced = e != UInt8(ascii: "x") && peek == UInt8(ascii: "{")
                    if braced { i += 1 }
                    code = 0
                    var n = 0
                    while n < limit, let d = peek, let h = hexValue(d) {
                        code = code * 16 + h
                        i += 1
                        n += 1
                    }
                    guard n > 0 else { throw fail("an escape without hex digits in call text") }
                    if braced {
                        guard peek == UInt8(ascii: "}") else { throw fail("an unclosed \\u{…} escape in call text") }
                        i += 1
                    }
                    if e == UInt8(ascii: "x") && code >= 0x80 {
                        throw fail("a \\x escape above 0x7f in call text (a byte, not a character)")
                    }
                default:
                    throw fail("the escape \\\(Character(Unicode.Scalar(e))) in call text")
                }
                guard code != 0 else { throw fail("a NUL character in call text") }
                if (e >= 0x30 && e <= 0x37) && code >= 0x80 { throw fail("an octal escape above 0x7f in call text (a byte, not a character)") }
                guard let scalar = Unicode.Scalar(code) else { throw fail("the escape for U+\(String(code, radix: 16)) is not a Unicode scalar") }
                scalars.append(scalar)
            }
        }
    }
}
