internal import RgateModel

/// Writes an ``RValue`` as rjson bytes (the layout is documented on ``RJSON``).
///
/// Vectors are written in chunks straight into the output array (digits into reserved space,
/// no `String` per element); only strings and attribute names go through `String.withUTF8`.
struct RJSONWriter {
    private(set) var out: [UInt8] = []
    private var path = RJSONPath()
    private let maximumDepth: Int

    init(maximumDepth: Int) {
        self.maximumDepth = maximumDepth
    }

    private func failure(_ code: RJSONError.Code, _ message: String) -> RJSONError {
        RJSONError(code, message, path: path.rendered)
    }

    // MARK: - Nodes

    /// Writes the node for `value`, whose object opens at JSON nesting level `depth`.
    mutating func node(_ value: RValue, depth: Int) throws(RJSONError) {
        let type: StaticString
        switch value.payload {
        case .null:
            guard depth <= maximumDepth else { throw failure(.tooDeep, "the value is nested deeper than \(maximumDepth) JSON levels") }
            guard value.attributes.isEmpty else { throw failure(.invalidAttribute, "NULL cannot carry attributes") }
            literal(#"{"type":"NULL"}"#)
            return
        case .opaque(let type, _):
            throw failure(.unsupportedType, "an R object of type \(type) is not data and has no rjson form; only vectors, lists, NULL, symbols and calls do")
        case .logical: type = "logical"
        case .integer: type = "integer"
        case .double: type = "double"
        case .complex: type = "complex"
        case .character: type = "character"
        case .raw: type = "raw"
        case .list: type = "list"
        case .pairlist: type = "pairlist"
        case .symbol: type = "symbol"
        case .language: type = "language"
        }
        guard depth + 1 <= maximumDepth else { throw failure(.tooDeep, "the value is nested deeper than \(maximumDepth) JSON levels") }
        literal(#"{"type":""#)
        literal(type)
        literal(#"","attributes":{"#)
        var isLanguage = false
        switch value.payload {
        case .symbol:
            guard value.attributes.isEmpty else { throw failure(.invalidAttribute, "an R symbol cannot carry attributes") }
        case .language:
            isLanguage = true
        default:
            break
        }
        try attributes(value.attributes, skippingNames: isLanguage, depth: depth + 1)
        literal(#"},"value":"#)
        switch value.payload {
        case .logical(let v): logicals(v)
        case .integer(let v): integers(v)
        case .double(let v): doubles(v)
        case .complex(let v): complexes(v)
        case .character(let v): strings(v)
        case .raw(let v):
            out.append(UInt8(ascii: "\""))
            Base64.encode(v, into: &out)
            out.append(UInt8(ascii: "\""))
        case .list(let v), .pairlist(let v):
            try elements(v, names: value.names, depth: depth + 1)
        case .symbol(let name):
            out.append(UInt8(ascii: "["))
            string(name)
            out.append(UInt8(ascii: "]"))
        case .language:
            let text = try RLanguageText.deparse(value, path: path)
            out.append(UInt8(ascii: "["))
            string(text)
            out.append(UInt8(ascii: "]"))
        case .null, .opaque:
            preconditionFailure("handled above")
        }
        out.append(UInt8(ascii: "}"))
    }

    private mutating func attributes(_ list: [RAttribute], skippingNames: Bool, depth: Int) throws(RJSONError) {
        var first = true
        var seen: Set<String> = []
        for attribute in list {
            if skippingNames && attribute.name == "names" { continue }  // a call's names are its tags, in the text
            guard !attribute.name.isEmpty else { throw failure(.invalidAttribute, "an attribute with an empty name") }
            guard seen.insert(attribute.name).inserted else {
                throw failure(.invalidAttribute, "the attribute '\(attribute.name)' appears twice")
            }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            string(attribute.name)
            out.append(UInt8(ascii: ":"))
            path.push(.attribute(attribute.name))
            try node(attribute.value, depth: depth + 1)
            path.pop()
        }
    }

    private mutating func elements(_ values: [RValue], names: [String?]?, depth: Int) throws(RJSONError) {
        out.append(UInt8(ascii: "["))
        for (i, element) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            path.push(.element(i, name: names.flatMap { i < $0.count ? $0[i] : nil }))
            try node(element, depth: depth + 1)
            path.pop()
        }
        out.append(UInt8(ascii: "]"))
    }

    // MARK: - Vectors

    private static let chunk = 4096

    /// Writes up to `maximum` bytes through `body` (which returns how many it wrote) at the end.
    @inline(__always)
    private mutating func withSpace(_ maximum: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: maximum))
        let used = out.withUnsafeMutableBufferPointer { body($0.baseAddress! + start) }
        out.removeLast(maximum - used)
    }

    /// Writes the elements of a vector in chunks, each element through `write` into at most
    /// `width` bytes.
    @inline(__always)
    private mutating func vector<T>(_ v: [T], width: Int, _ write: (T, UnsafeMutablePointer<UInt8>) -> Int) {
        if v.count > Self.chunk {
            // A long vector: grow once (geometrically, so many long vectors stay linear).
            let needed = out.count + v.count * (width + 1) + 2
            if needed > out.capacity { out.reserveCapacity(max(needed, 2 * out.capacity)) }
        }
        out.append(UInt8(ascii: "["))
        var i = 0
        while i < v.count {
            let end = min(v.count, i + Self.chunk)
            withSpace((end - i) * (width + 1)) { p in
                var n = 0
                v.withUnsafeBufferPointer { v in
                    for j in i..<end {
                        if j > 0 {
                            p[n] = UInt8(ascii: ",")
                            n += 1
                        }
                        n += write(v[j], p + n)
                    }
                }
                return n
            }
            i = end
        }
        out.append(UInt8(ascii: "]"))
    }

    private mutating func logicals(_ v: [Bool?]) {
        vector(v, width: 5) { b, p in
            switch b {
            case true?: Self.copy("true", to: p)
            case false?: Self.copy("false", to: p)
            case nil: Self.copy("null", to: p)
            }
        }
    }

    private mutating func integers(_ v: [Int32?]) {
        vector(v, width: 11) { i, p in
            guard let i else { return Self.copy(#""NA""#, to: p) }
            return Self.integer(i, to: p)
        }
    }

    private mutating func doubles(_ v: [Double?]) {
        vector(v, width: ShortestDouble.maximumLength) { d, p in
            guard let d else { return Self.copy(#""NA""#, to: p) }
            if d.isFinite { return ShortestDouble.write(d, to: p) }
            return Self.copy(Self.special(d), quoted: true, to: p)
        }
    }

    private mutating func complexes(_ v: [RComplex?]) {
        // "re+imi" in the form as.complex() reads exactly (RDouble.seventeenDigits), or NaN/Inf
        // parts; an NA part makes the element NA.
        vector(v, width: 2 * 25 + 4) { z, p in
            guard let z, !RDouble.isNA(z.real), !RDouble.isNA(z.imaginary) else { return Self.copy(#""NA""#, to: p) }
            p[0] = UInt8(ascii: "\"")
            var n = 1
            n += z.real.isFinite ? RDouble.writeSeventeenDigits(z.real, to: p + n) : Self.copy(Self.special(z.real), quoted: false, to: p + n)
            if z.imaginary.sign == .plus || z.imaginary.isNaN {
                p[n] = UInt8(ascii: "+")
                n += 1
            }
            if z.imaginary.isNaN {
                n += Self.copy("NaN", to: p + n)
            } else {
                n += z.imaginary.isFinite ? RDouble.writeSeventeenDigits(z.imaginary, to: p + n) : Self.copy(Self.special(z.imaginary), quoted: false, to: p + n)
            }
            p[n] = UInt8(ascii: "i")
            p[n + 1] = UInt8(ascii: "\"")
            return n + 2
        }
    }

    private mutating func strings(_ v: [String?]) {
        out.append(UInt8(ascii: "["))
        for (i, s) in v.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if let s { string(s) } else { literal("null") }
        }
        out.append(UInt8(ascii: "]"))
    }

    // MARK: - Scalars

    /// "NA", "NaN", "Inf" or "-Inf" for a non-finite double.
    @inline(__always)
    private static func special(_ d: Double) -> StaticString {
        if d.isNaN { return RDouble.isNA(d) ? "NA" : "NaN" }
        return d < 0 ? "-Inf" : "Inf"
    }

    @inline(__always)
    private static func copy(_ s: StaticString, quoted: Bool = false, to p: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        if quoted {
            p[0] = UInt8(ascii: "\"")
            n = 1
        }
        p.advanced(by: n).update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        n += s.utf8CodeUnitCount
        if quoted {
            p[n] = UInt8(ascii: "\"")
            n += 1
        }
        return n
    }

    @inline(__always)
    private static func integer(_ value: Int32, to p: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        var magnitude = value.magnitude
        if value < 0 {
            p[0] = UInt8(ascii: "-")
            n = 1
        }
        let count = ShortestDouble.digitCount(UInt64(magnitude))
        var i = n + count
        repeat {
            i -= 1
            p[i] = UInt8(truncatingIfNeeded: 48 + magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        return n + count
    }

    private mutating func literal(_ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A JSON string: `"` `\` and control characters escaped, everything else as UTF-8.
    private mutating func string(_ s: String) {
        var s = s
        out.append(UInt8(ascii: "\""))
        s.withUTF8 { utf8 in
            var start = 0
            for i in 0..<utf8.count {
                let b = utf8[i]
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                start = i + 1
                out.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}
