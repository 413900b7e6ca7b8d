internal import RgateModel

/// Reads rjson bytes into an ``RValue``: a strict JSON parser and the rjson schema in one pass.
///
/// Strict JSON (RFC 8259): no BOM, comments, trailing commas, `NaN` literals, leading zeros or
/// `+` signs; whitespace is space, tab, CR and LF; strings must be valid UTF-8 and their
/// escapes valid, with surrogate pairs paired; every container opened beyond `maximumDepth`
/// levels is refused before descending, so hostile nesting costs neither stack nor memory.
/// Numbers longer than ``maximumNumberLength`` bytes are refused, as are doubles that overflow
/// to infinity or underflow to zero and integers outside R's range. Every failure is an
/// ``RJSONError`` with the byte offset and the node's path, never a trap. Time and memory are
/// linear in the input: a node's `"type"` must precede its `"value"`, so each value is read
/// once (attributes may come anywhere).
struct RJSONReader {
    static let maximumNumberLength = 100

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private let maximumDepth: Int
    private var path = RJSONPath()

    init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    /// The whole input: one node and nothing but whitespace after it.
    mutating func document() throws(RJSONError) -> RValue {
        skipSpace()
        let value = try node(depth: 1)
        skipSpace()
        guard i == bytes.count else { throw failure(.trailingData, "data after the end of the value") }
        return value
    }

    // MARK: - Errors

    private func failure(_ code: RJSONError.Code, _ message: String) -> RJSONError {
        RJSONError(code, message, path: path.rendered, offset: i)
    }

    private func unexpected(_ expected: String) -> RJSONError {
        guard let b = peek else { return failure(.truncated, "the input ends where \(expected) should be") }
        return failure(.syntax, "\(Self.describe(b)) where \(expected) should be")
    }

    private static func describe(_ b: UInt8) -> String {
        switch b {
        case 0x21...0x7E: "'\(Character(Unicode.Scalar(b)))'"
        default: "the byte 0x\(String(b, radix: 16, uppercase: true))"
        }
    }

    /// What the JSON value at the cursor is, for type-mismatch messages.
    private var kindAtCursor: String {
        switch peek {
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?: "a boolean"
        case UInt8(ascii: "n")?: "null"
        case UInt8(ascii: "\"")?: "a string"
        case UInt8(ascii: "[")?: "an array"
        case UInt8(ascii: "{")?: "an object"
        case UInt8(ascii: "-")?, (0x30...0x39)?: "a number"
        case nil: "missing"
        case let b?: Self.describe(b)
        }
    }

    private func mismatch(_ index: Int, _ type: String, _ allowed: String) -> RJSONError {
        guard peek != nil else { return failure(.truncated, "the input ends inside a \(type) vector") }
        return failure(.typeMismatch, "element \(index + 1) of a \(type) vector is \(kindAtCursor); it must be \(allowed)")
    }

    // MARK: - Lexing

    @inline(__always)
    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    @inline(__always)
    private mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    @inline(__always)
    private mutating func expect(_ b: UInt8, _ what: String) throws(RJSONError) {
        skipSpace()
        guard peek == b else { throw unexpected(what) }
        i += 1
    }

    private mutating func open(_ b: UInt8, depth: Int, _ what: String) throws(RJSONError) {
        guard peek == b else { throw unexpected(what) }
        guard depth <= maximumDepth else { throw failure(.tooDeep, "nesting deeper than \(maximumDepth) levels") }
        i += 1
    }

    /// After `[`: true when the array is empty (and the `]` consumed).
    @inline(__always)
    private mutating func arrayIsEmpty() -> Bool {
        skipSpace()
        if peek == UInt8(ascii: "]") {
            i += 1
            return true
        }
        return false
    }

    /// After an array element: true at the end (`]` consumed), false after a `,`.
    @inline(__always)
    private mutating func arrayEnds() throws(RJSONError) -> Bool {
        skipSpace()
        switch peek {
        case UInt8(ascii: ",")?:
            i += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { throw failure(.syntax, "a ',' before ']'") }
            return false
        case UInt8(ascii: "]")?:
            i += 1
            return true
        default:
            throw unexpected("',' or ']'")
        }
    }

    /// Consumes `word` (`true`, `false`, `null`) at the cursor.
    private mutating func word(_ word: StaticString) throws(RJSONError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else {
            throw failure(.truncated, "the input ends inside '\(word)'")
        }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] {
            i += k
            throw failure(.syntax, "a malformed literal (expected '\(word)')")
        }
        i += n
    }

    // MARK: - Strings

    /// A JSON string at the cursor (on the opening quote).
    private mutating func string() throws(RJSONError) -> String {
        guard peek == UInt8(ascii: "\"") else { throw unexpected("a string") }
        i += 1
        let start = i
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x80 { break }
            i += 1
        }
        var buffer = Array(UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while true {
            guard let b = peek else { throw failure(.truncated, "the input ends inside a string") }
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: buffer, as: UTF8.self)  // valid: sequences checked, escapes encoded
            case UInt8(ascii: "\\"):
                try escape(into: &buffer)
            case 0..<0x20:
                throw failure(.invalidString, "a raw control character (0x\(String(b, radix: 16))) in a string; it must be escaped")
            case 0x80...:
                let n = try utf8Sequence()
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<i + n]))
                i += n
            default:
                buffer.append(b)
                i += 1
            }
        }
    }

    /// The length of the valid UTF-8 sequence at the cursor (a non-ASCII lead byte).
    private func utf8Sequence() throws(RJSONError) -> Int {
        let b0 = bytes[i]
        func continuation(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) throws(RJSONError) {
            guard i + k < bytes.count else { throw failure(.truncated, "the input ends inside a UTF-8 sequence") }
            guard range.contains(bytes[i + k]) else { throw failure(.invalidUTF8, "an invalid UTF-8 sequence in a string") }
        }
        switch b0 {
        case 0xC2...0xDF:
            try continuation(1)
            return 2
        case 0xE0:
            try continuation(1, 0xA0...0xBF); try continuation(2)
            return 3
        case 0xED:
            try continuation(1, 0x80...0x9F); try continuation(2)  // no UTF-16 surrogates
            return 3
        case 0xE1...0xEC, 0xEE...0xEF:
            try continuation(1); try continuation(2)
            return 3
        case 0xF0:
            try continuation(1, 0x90...0xBF); try continuation(2); try continuation(3)
            return 4
        case 0xF1...0xF3:
            try continuation(1); try continuation(2); try continuation(3)
            return 4
        case 0xF4:
            try continuation(1, 0x80...0x8F); try continuation(2); try continuation(3)
            return 4
        default:
            throw failure(.invalidUTF8, "the byte 0x\(String(b0, radix: 16, uppercase: true)) cannot start a UTF-8 sequence")
        }
    }

    private mutating func escape(into buffer: inout [UInt8]) throws(RJSONError) {
        i += 1
        guard let e = peek else { throw failure(.truncated, "the input ends inside an escape") }
        i += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(e)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hex4()
            if (0xD800...0xDBFF).contains(code) {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw failure(.invalidString, "a lone high surrogate \\u\(String(code, radix: 16)) in a string")
                }
                i += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw failure(.invalidString, "a high surrogate not followed by a low one in a string")
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(code) {
                throw failure(.invalidString, "a lone low surrogate \\u\(String(code, radix: 16)) in a string")
            }
            guard code != 0 else { throw failure(.invalidString, "a NUL character (\\u0000) in a string; R strings cannot hold it") }
            buffer.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(code)!)!)
        default:
            i -= 1
            throw failure(.invalidString, "the escape \\\(Self.describe(e)) in a string")
        }
    }

    private mutating func hex4() throws(RJSONError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw failure(.truncated, "the input ends inside a \\u escape") }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let v: UInt32
            switch b {
            case 0x30...0x39: v = UInt32(b - 0x30)
            case 0x41...0x46: v = UInt32(b - 0x41 + 10)
            case 0x61...0x66: v = UInt32(b - 0x61 + 10)
            default: throw failure(.invalidString, "a \\u escape needs four hex digits")
            }
            code = code << 4 | v
            i += 1
        }
        return code
    }

    // MARK: - Numbers

    private struct Number {
        var start: Int
        var end: Int
        var negative: Bool
        var integral: Bool
        /// Up to 19 significant digits and whether any digit was dropped.
        var mantissa: UInt64
        var truncated: Bool
        var nonzero: Bool
        /// The decimal exponent of `mantissa`'s last digit (clamped far beyond any double).
        var exponent: Int
    }

    /// A JSON number at the cursor, validated and scanned (RFC 8259 grammar).
    private mutating func number() throws(RJSONError) -> Number {
        let start = i
        var n = Number(start: i, end: i, negative: false, integral: true, mantissa: 0, truncated: false, nonzero: false, exponent: 0)
        if peek == UInt8(ascii: "-") {
            n.negative = true
            i += 1
        }
        var significant = 0
        func digit(_ d: UInt8, _ n: inout Number, fraction: Bool) {
            if d != 0 { n.nonzero = true }
            if significant == 0 && d == 0 {
                if fraction { n.exponent -= 1 }
                return
            }
            if significant < 19 {
                n.mantissa = n.mantissa * 10 + UInt64(d)
                significant += 1
                if fraction { n.exponent -= 1 }
            } else {
                if d != 0 { n.truncated = true }
                if !fraction { n.exponent += 1 }
            }
        }
        guard let first = peek, first >= 0x30 && first <= 0x39 else { throw unexpected("a digit") }
        if first == 0x30 {
            i += 1
            if let b = peek, b >= 0x30 && b <= 0x39 { throw failure(.syntax, "a number with a leading zero") }
        } else {
            while let b = peek, b >= 0x30 && b <= 0x39 {
                digit(b - 0x30, &n, fraction: false)
                i += 1
            }
        }
        if peek == UInt8(ascii: ".") {
            n.integral = false
            i += 1
            guard let b = peek, b >= 0x30 && b <= 0x39 else { throw unexpected("a digit after '.'") }
            while let b = peek, b >= 0x30 && b <= 0x39 {
                digit(b - 0x30, &n, fraction: true)
                i += 1
            }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            n.integral = false
            i += 1
            var negativeExponent = false
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") {
                negativeExponent = peek == UInt8(ascii: "-")
                i += 1
            }
            guard let b = peek, b >= 0x30 && b <= 0x39 else { throw unexpected("a digit in the exponent") }
            var e = 0
            while let b = peek, b >= 0x30 && b <= 0x39 {
                if e < 100_000 { e = e * 10 + Int(b - 0x30) }
                i += 1
            }
            n.exponent += negativeExponent ? -e : e
        }
        n.end = i
        guard i - start <= Self.maximumNumberLength else {
            i = start
            throw failure(.numberOutOfRange, "a number longer than \(Self.maximumNumberLength) characters")
        }
        return n
    }

    private static let exactPowersOf10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The double nearest to a scanned number (correctly rounded).
    private func double(_ n: Number) throws(RJSONError) -> Double {
        var value: Double
        if !n.nonzero {
            value = 0
        } else if !n.truncated, n.mantissa <= 1 << 53, n.exponent >= -22, n.exponent <= 22 {
            // Clinger's fast path: both operands exact, one correctly rounded operation.
            value = Double(n.mantissa)
            value = n.exponent < 0 ? value / Self.exactPowersOf10[-n.exponent] : value * Self.exactPowersOf10[n.exponent]
        } else if !n.truncated, let fast = EiselLemire.double(mantissa: n.mantissa, exponent: n.exponent, negative: false) {
            value = fast
        } else {
            // Rare: more than 19 digits, a halfway case, subnormal or out of range.
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[n.start..<n.end]), as: UTF8.self)
            guard let parsed = Double(text) else {
                throw RJSONError(.syntax, "an unreadable number", path: path.rendered, offset: n.start)
            }
            value = parsed.magnitude
            guard value.isFinite else {
                throw RJSONError(.numberOutOfRange, "the number \(text) overflows a double", path: path.rendered, offset: n.start)
            }
            guard value != 0 else {
                throw RJSONError(.numberOutOfRange, "the number \(text) underflows to zero", path: path.rendered, offset: n.start)
            }
        }
        return n.negative ? -value : value
    }

    /// An R integer (a JSON integer in -2147483647...2147483647; R's -2^31 is its NA).
    private func integer(_ n: Number) throws(RJSONError) -> Int32 {
        let text = { String(decoding: UnsafeBufferPointer(rebasing: bytes[n.start..<n.end]), as: UTF8.self) }
        guard n.integral else {
            throw RJSONError(.typeMismatch, "\(text()) in an integer vector is not an integer", path: path.rendered, offset: n.start)
        }
        guard !n.truncated, n.exponent == 0, n.mantissa <= UInt64(Int32.max) else {
            throw RJSONError(.numberOutOfRange, "\(text()) is outside R's integers (±2147483647)", path: path.rendered, offset: n.start)
        }
        let magnitude = Int32(n.mantissa)
        return n.negative ? -magnitude : magnitude
    }

    // MARK: - Nodes

    private enum NodeType {
        case null, logical, integer, double, complex, character, raw, list, pairlist, symbol, language

        init?(_ name: String) {
            switch name {
            case "NULL": self = .null
            case "logical": self = .logical
            case "integer": self = .integer
            case "double": self = .double
            case "complex": self = .complex
            case "character": self = .character
            case "raw": self = .raw
            case "list": self = .list
            case "pairlist": self = .pairlist
            case "symbol", "name": self = .symbol
            case "language": self = .language
            default: return nil
            }
        }
    }

    private mutating func node(depth: Int) throws(RJSONError) -> RValue {
        let nodeStart = i
        switch peek {
        case UInt8(ascii: "[")?, UInt8(ascii: "\"")?, UInt8(ascii: "-")?, UInt8(ascii: "t")?, UInt8(ascii: "f")?, UInt8(ascii: "n")?, (0x30...0x39)?:
            // Some other JSON value (else: not JSON, a syntax error below).
            throw failure(.typeMismatch, "\(kindAtCursor) where an rjson node ({\"type\": …}) should be")
        default:
            break
        }
        try open(UInt8(ascii: "{"), depth: depth, "a node ({\"type\": …})")
        var type: NodeType?
        var attributes: [RAttribute]?
        var payload: RPayload?
        var hasValue = false
        skipSpace()
        if peek != UInt8(ascii: "}") {
            repeat {
                skipSpace()
                let keyStart = i
                let key = try string()
                try expect(UInt8(ascii: ":"), "':'")
                skipSpace()
                switch key {
                case "type":
                    guard type == nil else { i = keyStart; throw failure(.invalidNode, "a node with two \"type\" keys") }
                    let name = try string()
                    guard let t = NodeType(name) else {
                        i = keyStart
                        throw failure(.unsupportedType, Self.unsupportedTypeMessage(name))
                    }
                    type = t
                case "attributes":
                    guard attributes == nil else { i = keyStart; throw failure(.invalidNode, "a node with two \"attributes\" keys") }
                    attributes = try attributeList(depth: depth + 1)
                case "value":
                    guard !hasValue else { i = keyStart; throw failure(.invalidNode, "a node with two \"value\" keys") }
                    // The type must come first (as serializeJSON writes it), so every value is read
                    // once, in its type: buffering or re-reading values of unknown type would cost
                    // time or memory growing with the nesting.
                    guard let type else { i = keyStart; throw failure(.invalidNode, "\"value\" before \"type\" in a node; rjson gives the type first") }
                    payload = try value(type, names: Self.names(attributes), depth: depth + 1)
                    hasValue = true
                default:
                    i = keyStart
                    throw failure(.invalidNode, "the key \"\(key)\" in a node (only \"type\", \"attributes\" and \"value\")")
                }
                skipSpace()
            } while try memberFollows()
        } else {
            i += 1
        }
        guard let type else {
            i = nodeStart
            throw failure(.invalidNode, "a node without a \"type\"")
        }
        let attributeList = attributes ?? []
        switch type {
        case .null:
            guard attributeList.isEmpty else { i = nodeStart; throw failure(.invalidAttribute, "NULL cannot carry attributes") }
            return .null
        case .symbol:
            guard attributeList.isEmpty else { i = nodeStart; throw failure(.invalidAttribute, "an R symbol cannot carry attributes") }
        default:
            break
        }
        guard let payload else {
            i = nodeStart
            throw failure(.invalidNode, "a \(type) node without a \"value\"")
        }
        if type == .language, case .character(let lines) = payload {
            return try languageValue(lines, attributes: attributeList, at: nodeStart)
        }
        return RValue(payload, attributes: attributeList)
    }

    /// After an object member: true after a `,`, false at the `}` (consumed).
    private mutating func memberFollows() throws(RJSONError) -> Bool {
        switch peek {
        case UInt8(ascii: ",")?:
            i += 1
            return true
        case UInt8(ascii: "}")?:
            i += 1
            return false
        default:
            throw unexpected("',' or '}'")
        }
    }

    private static func unsupportedTypeMessage(_ name: String) -> String {
        switch name {
        case "closure", "builtin", "special":
            "a function (\(name)) is code, not data; rjson carries vectors, lists, NULL, symbols and calls"
        case "environment", "namespace", "externalptr", "S4", "expression", "promise", "bytecode", "weakref":
            "an R object of type \(name) has no rjson form in rgate; rjson carries vectors, lists, NULL, symbols and calls"
        default:
            "the unknown type \"\(name)\""
        }
    }

    private static func names(_ attributes: [RAttribute]?) -> [String?]? {
        guard let names = attributes?.first(where: { $0.name == "names" }), case .character(let v) = names.value.payload else { return nil }
        return v
    }

    private mutating func attributeList(depth: Int) throws(RJSONError) -> [RAttribute] {
        try open(UInt8(ascii: "{"), depth: depth, "an attributes object")
        var list: [RAttribute] = []
        var seen: Set<String> = []
        skipSpace()
        if peek == UInt8(ascii: "}") {
            i += 1
            return list
        }
        repeat {
            skipSpace()
            let keyStart = i
            let name = try string()
            guard !name.isEmpty else { i = keyStart; throw failure(.invalidAttribute, "an attribute with an empty name") }
            guard seen.insert(name).inserted else {
                i = keyStart
                throw failure(.invalidAttribute, "the attribute '\(name)' appears twice")
            }
            try expect(UInt8(ascii: ":"), "':'")
            skipSpace()
            path.push(.attribute(name))
            list.append(RAttribute(name: name, value: try node(depth: depth + 1)))
            path.pop()
            skipSpace()
        } while try memberFollows()
        return list
    }

    /// The `"value"` of a node of `type`, whose container opens at level `depth`.
    private mutating func value(_ type: NodeType, names: [String?]?, depth: Int) throws(RJSONError) -> RPayload? {
        switch type {
        case .null:
            guard peek == UInt8(ascii: "n") else {
                throw failure(.typeMismatch, "the value of a NULL node is \(kindAtCursor); it must be null or absent")
            }
            try word("null")
            return nil
        case .raw:
            guard peek == UInt8(ascii: "\"") else {
                throw failure(.typeMismatch, "the value of a raw node is \(kindAtCursor); it must be a base64 string")
            }
            let start = i
            let text = try string()
            guard let bytes = Base64.decode(text.utf8) else {
                i = start
                throw failure(.typeMismatch, "the value of a raw node is not valid base64")
            }
            return .raw(bytes)
        default:
            break
        }
        guard peek == UInt8(ascii: "[") else {
            throw failure(.typeMismatch, "the value of a \(type) node is \(kindAtCursor); it must be an array")
        }
        try open(UInt8(ascii: "["), depth: depth, "an array")
        switch type {
        case .logical: return .logical(try logicals())
        case .integer: return .integer(try integers())
        case .double: return .double(try doubles())
        case .complex: return .complex(try complexes())
        case .character: return .character(try strings())
        case .list: return .list(try elements(names: names, depth: depth + 1))
        case .pairlist: return .pairlist(try elements(names: names, depth: depth + 1))
        case .symbol:
            let lines = try strings()
            guard lines.count == 1, let name = lines[0] else {
                throw failure(.typeMismatch, "the value of a symbol node must be one string (its name)")
            }
            return .symbol(name)
        case .language:
            let lines = try strings()
            guard !lines.isEmpty, !lines.contains(nil) else {
                throw failure(.typeMismatch, "the value of a language node must be strings (R source lines)")
            }
            return .character(lines)  // R source, parsed by languageValue
        case .null, .raw:
            preconditionFailure("handled above")
        }
    }

    private mutating func languageValue(_ lines: [String?], attributes: [RAttribute], at start: Int) throws(RJSONError) -> RValue {
        var call = try RLanguageText.parse(lines.map { $0 ?? "" }.joined(separator: "\n"), path: path)
        if call[attribute: "names"] != nil, attributes.contains(where: { $0.name == "names" }) {
            i = start
            throw failure(.invalidAttribute, "a call with argument names both in its text and in a \"names\" attribute")
        }
        call.attributes += attributes
        return call
    }

    private mutating func elements(names: [String?]?, depth: Int) throws(RJSONError) -> [RValue] {
        var values: [RValue] = []
        if arrayIsEmpty() { return values }
        repeat {
            let index = values.count
            path.push(.element(index, name: names.flatMap { index < $0.count ? $0[index] : nil }))
            values.append(try node(depth: depth))
            path.pop()
        } while try !arrayEnds()
        return values
    }

    private mutating func logicals() throws(RJSONError) -> [Bool?] {
        var values: [Bool?] = []
        if arrayIsEmpty() { return values }
        repeat {
            switch peek {
            case UInt8(ascii: "t")?: try word("true"); values.append(true)
            case UInt8(ascii: "f")?: try word("false"); values.append(false)
            case UInt8(ascii: "n")?: try word("null"); values.append(nil)
            default: throw mismatch(values.count, "logical", "true, false or null (NA)")
            }
        } while try !arrayEnds()
        return values
    }

    private mutating func integers() throws(RJSONError) -> [Int32?] {
        var values: [Int32?] = []
        if arrayIsEmpty() { return values }
        repeat {
            switch peek {
            case UInt8(ascii: "-")?, (0x30...0x39)?:
                values.append(try integer(try number()))
            case UInt8(ascii: "n")?:
                try word("null")
                values.append(nil)
            case UInt8(ascii: "\"")?:
                let start = i
                guard try string() == "NA" else { i = start; throw mismatch(values.count, "integer", "an integer, \"NA\" or null") }
                values.append(nil)
            default:
                throw mismatch(values.count, "integer", "an integer, \"NA\" or null")
            }
        } while try !arrayEnds()
        return values
    }

    private mutating func doubles() throws(RJSONError) -> [Double?] {
        var values: [Double?] = []
        if arrayIsEmpty() { return values }
        repeat {
            switch peek {
            case UInt8(ascii: "-")?, (0x30...0x39)?:
                values.append(try double(try number()))
            case UInt8(ascii: "n")?:
                try word("null")
                values.append(nil)
            case UInt8(ascii: "\"")?:
                let start = i
                switch try string() {
                case "NA": values.append(nil)
                case "NaN": values.append(.nan)
                case "Inf": values.append(.infinity)
                case "-Inf": values.append(-.infinity)
                default:
                    i = start
                    throw mismatch(values.count, "double", "a number, \"NA\", \"NaN\", \"Inf\", \"-Inf\" or null")
                }
            default:
                throw mismatch(values.count, "double", "a number, \"NA\", \"NaN\", \"Inf\", \"-Inf\" or null")
            }
        } while try !arrayEnds()
        return values
    }

    private mutating func strings() throws(RJSONError) -> [String?] {
        var values: [String?] = []
        if arrayIsEmpty() { return values }
        repeat {
            switch peek {
            case UInt8(ascii: "\"")?: values.append(try string())
            case UInt8(ascii: "n")?:
                try word("null")
                values.append(nil)
            default: throw mismatch(values.count, "character", "a string or null (NA)")
            }
        } while try !arrayEnds()
        return values
    }

    private mutating func complexes() throws(RJSONError) -> [RComplex?] {
        var values: [RComplex?] = []
        if arrayIsEmpty() { return values }
        repeat {
            switch peek {
            case UInt8(ascii: "\"")?:
                let start = i
                let text = try string()
                guard let z = ComplexText.parse(text) else {
                    i = start
                    throw failure(.typeMismatch, "element \(values.count + 1) of a complex vector, \"\(text.prefix(40))\", is not \"NA\" or \"re+imi\"")
                }
                values.append(z)
            case UInt8(ascii: "n")?:
                try word("null")
                values.append(nil)
            default:
                throw mismatch(values.count, "complex", "a string (\"1.5-2i\", \"NA\") or null")
            }
        } while try !arrayEnds()
        return values
    }
}
