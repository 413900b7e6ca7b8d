extension CallerRequest {
    /// Parses a caller's request; throws when it is anything but the three accepted forms.
    /// - Parameter source: the code as the client sent it (UTF-8).
    public init(parsing source: String) throws(CallerRequestError) {
        var parser = CallerParser(Array(source.utf8))
        self = try parser.request()
    }

    /// R's reserved words, which are never names of variables or functions.
    public static let reservedWords: Set<String> = [
        "if", "else", "repeat", "while", "function", "for", "next", "break", "in",
        "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_",
    ]

    /// Whether `name` is a plain R name a caller may use for a session variable: ASCII letters,
    /// digits, `.` and `_`, starting with a letter, not a reserved word.
    public static func isPlainName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, isLetter(first), bytes.allSatisfy(isNameByte) else { return false }
        return !reservedWords.contains(name)
    }

    /// Whether `reference` is a function reference an allow-list may name: `name` or `pkg::name`.
    public static func isFunctionReference(_ reference: String) -> Bool {
        let parts = reference.split(separator: ":", omittingEmptySubsequences: false)
        func syntactic(_ s: Substring) -> Bool {
            let bytes = Array(s.utf8)
            guard let first = bytes.first, isLetter(first) || (first == UInt8(ascii: ".") && !(bytes.dropFirst().first.map(isDigit) ?? false)),
                  bytes.allSatisfy(isNameByte) else { return false }
            return !reservedWords.contains(String(s)) && !s.hasPrefix("..")
        }
        switch parts.count {
        case 1: return syntactic(parts[0])
        case 3: return parts[1].isEmpty && syntactic(parts[0]) && syntactic(parts[2])
        default: return false
        }
    }
}

private func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }
private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
private func isHexDigit(_ b: UInt8) -> Bool { isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }
private func isNameByte(_ b: UInt8) -> Bool { isLetter(b) || isDigit(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") }

/// A recursive-descent parser for the caller grammar (see ``CallerRequest``).
struct CallerParser {
    enum Token: Equatable {
        case name(String)
        case number(String)
        case string(String) // canonical R source of the literal
        case constant(String)
        case open, close, comma, equals, doubleColon, minus
        case end
    }

    let bytes: [UInt8]
    var position = 0
    var tokenStart = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ message: String, at offset: Int? = nil) -> CallerRequestError {
        CallerRequestError(message, offset: offset ?? tokenStart)
    }

    mutating func request() throws(CallerRequestError) -> CallerRequest {
        let first = try next()
        guard case .name(let head) = first else { throw fail("expected a function call or a variable name") }
        var function = head
        var token = try next()
        if token == .doubleColon {
            guard case .name(let member) = try next() else { throw fail("expected a function name after '::'") }
            function += "::" + member
            token = try next()
        }
        switch token {
        case .end:
            guard !function.contains(":") else { throw fail("'\(function)' must be called, not fetched") }
            try checkVariable(function)
            return .variable(function)
        case .open:
            let arguments = try argumentList()
            guard try next() == .end else { throw fail("only one call is allowed per request") }
            if function == "is.function", arguments.count == 1, arguments[0].label == nil,
               case .variable(let name) = arguments[0].value {
                return .isFunction(name)
            }
            guard !CallerRequest.reservedWords.contains(function) else { throw fail("'\(function)' is not a function call") }
            return .call(function: function, arguments: arguments)
        default:
            throw fail("only a call like f(x, 1) or a variable name is allowed")
        }
    }

    private mutating func argumentList() throws(CallerRequestError) -> [CallerArgument] {
        var arguments: [CallerArgument] = []
        var token = try next()
        if token == .close { return arguments }
        while true {
            var label: String?
            var value: CallerValue
            switch token {
            case .name(let name):
                let save = position
                if try next() == .equals {
                    guard CallerRequest.isPlainName(name) else { throw fail("'\(name)' is not a plain argument name") }
                    label = name
                    token = try next()
                    value = try argumentValue(token)
                } else {
                    position = save
                    value = try argumentValue(token)
                }
            default:
                value = try argumentValue(token)
            }
            arguments.append(CallerArgument(label: label, value: value))
            token = try next()
            switch token {
            case .close: return arguments
            case .comma: token = try next()
            default: throw fail("arguments must be constants or variable names, separated by commas")
            }
        }
    }

    private mutating func argumentValue(_ token: Token) throws(CallerRequestError) -> CallerValue {
        switch token {
        case .name(let name):
            let save = position
            let following = try next()
            position = save
            if following == .open || following == .doubleColon {
                throw fail("arguments cannot be calls: pass data (a constant or a variable)")
            }
            try checkVariable(name)
            return .variable(name)
        case .number(let text): return .literal(text)
        case .string(let text): return .literal(text)
        case .constant(let text): return .literal(text)
        case .minus:
            guard case .number(let text) = try next() else { throw fail("'-' may only precede a number") }
            return .literal("-" + text)
        default:
            throw fail("arguments must be constants or variable names")
        }
    }

    private func checkVariable(_ name: String) throws(CallerRequestError) {
        guard CallerRequest.isPlainName(name) else {
            throw fail("'\(name)' is not a variable a caller may use (plain names only, not starting with '.')")
        }
    }

    // MARK: - Tokens

    private mutating func next() throws(CallerRequestError) -> Token {
        skipSpaceAndComments()
        tokenStart = position
        guard position < bytes.count else { return .end }
        let b = bytes[position]
        switch b {
        case UInt8(ascii: "("): position += 1; return .open
        case UInt8(ascii: ")"): position += 1; return .close
        case UInt8(ascii: ","): position += 1; return .comma
        case UInt8(ascii: "-"): position += 1; return .minus
        case UInt8(ascii: "="):
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "=") { throw fail("operators are not allowed") }
            return .equals
        case UInt8(ascii: ":"):
            if position + 2 < bytes.count, bytes[position + 1] == UInt8(ascii: ":"), bytes[position + 2] == UInt8(ascii: ":") {
                throw fail("':::' (internal functions) is not allowed")
            }
            guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: ":") else { throw fail("operators are not allowed") }
            position += 2
            return .doubleColon
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return .string(try stringLiteral(quote: b))
        case UInt8(ascii: "`"):
            throw fail("backquoted names are not allowed")
        default:
            if isDigit(b) || (b == UInt8(ascii: ".") && position + 1 < bytes.count && isDigit(bytes[position + 1])) {
                return .number(try numberLiteral())
            }
            if isLetter(b) || b == UInt8(ascii: ".") {
                let start = position
                while position < bytes.count, isNameByte(bytes[position]) { position += 1 }
                let name = String(decoding: bytes[start..<position], as: UTF8.self)
                if name.hasPrefix("..") { throw fail("'\(name)' is not allowed") }
                switch name {
                case "TRUE", "FALSE", "NULL", "NA", "NA_integer_", "NA_real_", "NA_character_", "Inf", "NaN":
                    return .constant(name)
                default:
                    if CallerRequest.reservedWords.contains(name) { throw fail("'\(name)' is not allowed") }
                    return .name(name)
                }
            }
            if b >= 0x80 { throw fail("names must be plain ASCII") }
            throw fail("'\(Unicode.Scalar(b))' is not allowed: only a call like f(x, 1) or a variable name")
        }
    }

    private mutating func skipSpaceAndComments() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0c:
                position += 1
            case UInt8(ascii: "#"):
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
            default:
                return
            }
        }
    }

    /// Decimal (`1`, `2.5`, `.5`, `1e-3`) or hexadecimal (`0x1F`) numbers, with an optional `L`
    /// (integer) or `i` (imaginary) suffix; returned as written (it is made of safe characters).
    private mutating func numberLiteral() throws(CallerRequestError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "0"), position + 1 < bytes.count, bytes[position + 1] | 0x20 == UInt8(ascii: "x") {
            position += 2
            let digits = position
            while position < bytes.count, isHexDigit(bytes[position]) { position += 1 }
            guard position > digits else { throw fail("malformed hexadecimal number") }
        } else {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                let digits = position
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
                guard position > digits else { throw fail("malformed number") }
            }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "L") || bytes[position] == UInt8(ascii: "i") { position += 1 }
        if position < bytes.count, isNameByte(bytes[position]) { throw fail("malformed number") }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// A quoted string with R's escapes; returned re-quoted in canonical form (double quotes,
    /// every non-printable or non-ASCII character as an escape), so R reads exactly the value.
    private mutating func stringLiteral(quote: UInt8) throws(CallerRequestError) -> String {
        position += 1
        var scalars: [Unicode.Scalar] = []
        var pendingUTF8: [UInt8] = []
        func flush() throws(CallerRequestError) {
            guard !pendingUTF8.isEmpty else { return }
            var decoder = UTF8()
            var iterator = pendingUTF8.makeIterator()
            loop: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s): scalars.append(s)
                case .emptyInput: break loop
                case .error: throw fail("the string is not valid UTF-8")
                }
            }
            pendingUTF8.removeAll()
        }
        while true {
            guard position < bytes.count else { throw fail("unterminated string") }
            let b = bytes[position]
            if b == quote { position += 1; break }
            if b == 0 { throw fail("NUL bytes are not allowed in strings") }
            if b != UInt8(ascii: "\\") {
                pendingUTF8.append(b)
                position += 1
                continue
            }
            try flush()
            position += 1
            guard position < bytes.count else { throw fail("unterminated string") }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "a"): scalars.append("\u{07}")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0c}")
            case UInt8(ascii: "v"): scalars.append("\u{0b}")
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "`"), UInt8(ascii: " "):
                scalars.append(Unicode.Scalar(e))
            case UInt8(ascii: "x"):
                // R makes a raw byte of \xNN; only ASCII is the same character in every encoding.
                let scalar = try hexScalar(maxDigits: 2, braces: false)
                guard scalar.value < 0x80 else { throw fail("\\x escapes above \\x7f are bytes, not characters: use \\u") }
                scalars.append(scalar)
            case UInt8(ascii: "u"):
                scalars.append(try hexScalar(maxDigits: 4, braces: true))
            case UInt8(ascii: "U"):
                scalars.append(try hexScalar(maxDigits: 8, braces: true))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = UInt32(e - 0x30)
                var count = 1
                while count < 3, position < bytes.count, (0x30...0x37).contains(bytes[position]) {
                    value = value * 8 + UInt32(bytes[position] - 0x30)
                    position += 1
                    count += 1
                }
                guard value != 0, let s = Unicode.Scalar(value) else { throw fail("NUL bytes are not allowed in strings") }
                guard value < 0x80 else { throw fail("octal escapes above \\177 are bytes, not characters: use \\u") }
                scalars.append(s)
            default:
                throw fail("unknown escape '\\\(Unicode.Scalar(e))' in a string")
            }
        }
        try flush()
        var out = "\""
        for s in scalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if s.value >= 0x20 && s.value < 0x7f {
                    out.unicodeScalars.append(s)
                } else {
                    out += "\\U{" + String(s.value, radix: 16) + "}"
                }
            }
        }
        return out + "\""
    }

    private mutating func hexScalar(maxDigits: Int, braces: Bool) throws(CallerRequestError) -> Unicode.Scalar {
        let braced = braces && position < bytes.count && bytes[position] == UInt8(ascii: "{")
        if braced { position += 1 }
        var value: UInt32 = 0
        var count = 0
        while count < maxDigits, position < bytes.count, isHexDigit(bytes[position]) {
            let d = bytes[position]
            value = value * 16 + UInt32(isDigit(d) ? d - 0x30 : (d | 0x20) - 0x61 + 10)
            position += 1
            count += 1
        }
        if braced {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "}") else { throw fail("malformed \\u{...} escape") }
            position += 1
        }
        guard count > 0 else { throw fail("malformed hexadecimal escape") }
        guard value != 0 else { throw fail("NUL bytes are not allowed in strings") }
        guard let scalar = Unicode.Scalar(value) else { throw fail("\\u escape is not a valid character") }
        return scalar
    }
}
