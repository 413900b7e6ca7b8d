public import NIOCore

/// What kind of R object a ``QAP1SEXPSource`` is.
public enum QAP1ObjectKind: Sendable, Hashable {
    case null, logical, integer, double, complex, character, raw, list, expression, symbol, language, pairlist, s4, closure
    /// Anything else (closure, environment, ...): its R SEXPTYPE number.
    case unknown(Int32)
}

/// An R object the encoder can read directly: lets a server encode straight from R's memory
/// (numeric data copied once, with `memcpy`, into the output) instead of converting to
/// ``RValue`` first.
public protocol QAP1SEXPSource {
    /// The object's kind.
    var qapKind: QAP1ObjectKind { get }
    /// The number of elements.
    var qapCount: Int { get }
    /// Attributes in R's order (for calls and pairlists, without `names`: tags carry them).
    func qapAttributes() -> [(name: String, value: Self)]
    /// Element `i` of a list, expression, call or pairlist.
    func qapElement(_ i: Int) -> Self
    /// The tag of element `i` of a call or pairlist (nil or empty when untagged).
    func qapTag(_ i: Int) -> String?
    /// A symbol's name.
    var qapSymbolName: String { get }
    /// A closure's formals (pairlist or NULL) and body, encoded as Rserve's XT_CLOS.
    var qapClosureParts: (formals: Self, body: Self)? { get }
    /// Integer or logical data in R's int representation (NA = Int32.min, TRUE = 1).
    func withQAPInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T
    /// Double data, or complex data as interleaved (re, im), with R's NA bit pattern.
    func withQAPDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T
    /// Raw data.
    func withQAPBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T
    /// String `i` as UTF-8 bytes, or nil for NA; valid only inside `body`.
    func withQAPString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T
    /// Numeric (integer, logical-as-int, double, complex) or raw data that stays valid and
    /// unchanged for as long as the encoded output is in use, so that large vectors can be sent
    /// from where they are (scatter-gather) instead of being copied. Nil (the default) means
    /// "copy it".
    var qapStableData: UnsafeRawBufferPointer? { get }
    /// Every string at once, as (start, length) pairs, start nil for NA; valid only inside `body`.
    /// The default calls ``withQAPString(_:_:)`` per element; sources with a cheaper bulk
    /// access override it.
    func withQAPStrings<T>(_ body: (UnsafeBufferPointer<UnsafePointer<UInt8>?>, UnsafeBufferPointer<Int32>) throws -> T) throws -> T
    /// The strings' UTF-8 bytes in all, how many are NA, and how many start with byte 0xFF
    /// (which QAP1 doubles). The default walks ``withQAPStrings(_:)``; sources that know the
    /// sizes already override it.
    func qapStringSizes() throws -> (bytes: Int, missing: Int, startingWith0xFF: Int)
}

extension QAP1SEXPSource {
    public var qapStableData: UnsafeRawBufferPointer? { nil }

    public func qapStringSizes() throws -> (bytes: Int, missing: Int, startingWith0xFF: Int) {
        try withQAPStrings { pointers, lengths in
            var sizes = (bytes: 0, missing: 0, startingWith0xFF: 0)
            for i in 0..<pointers.count {
                guard let p = pointers[i] else { sizes.missing += 1; continue }
                let length = Int(lengths[i])
                sizes.bytes += length
                if length > 0 && p[0] == 0xFF { sizes.startingWith0xFF += 1 }
            }
            return sizes
        }
    }

    public func withQAPStrings<T>(_ body: (UnsafeBufferPointer<UnsafePointer<UInt8>?>, UnsafeBufferPointer<Int32>) throws -> T) throws -> T {
        // Copy every string into one buffer, then point into it.
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int32] = []
        for i in 0..<qapCount {
            withQAPString(i) { str in
                offsets.append(bytes.count)
                if let str { bytes.append(contentsOf: str); lengths.append(Int32(str.count)) } else { lengths.append(-1) }
            }
        }
        bytes.append(0)
        return try bytes.withUnsafeBufferPointer { base in
            let pointers: [UnsafePointer<UInt8>?] = offsets.indices.map { lengths[$0] < 0 ? nil : base.baseAddress! + offsets[$0] }
            return try pointers.withUnsafeBufferPointer { p in try lengths.withUnsafeBufferPointer { l in try body(p, l) } }
        }
    }
}

extension QAP1SEXP {
    /// The deepest nesting the encoder accepts; deeper objects are an error, not a stack overflow.
    public static let maximumEncodingDepth = 1000

    /// Encodes any ``QAP1SEXPSource`` (see ``encode(_:into:)`` for the format).
    /// - Throws: the source's errors, or ``QAP1Error`` when the object nests too deeply.
    public static func encode<S: QAP1SEXPSource>(source: S, into buffer: inout ByteBuffer) throws {
        try encode(source, depth: 0, into: &buffer)
    }

    /// Encodes `source` like ``encode(source:into:prefix:)``, but leaves the data of numeric
    /// vectors of at least `externalThreshold` bytes where they are (when the source offers it
    /// with ``QAP1SEXPSource/qapStableData``): each such block is listed in `external` with the
    /// buffer offset it belongs at. Sending `buffer` with those blocks spliced in (writev) gives the
    /// same bytes without copying the bulk data.
    public static func encode<S: QAP1SEXPSource>(
        source: S, into buffer: inout ByteBuffer, external: inout [(offset: Int, data: UnsafeRawBufferPointer)],
        externalThreshold: Int = 256 << 10, prefix: (_ encodedSize: Int, _ buffer: inout ByteBuffer) -> Void
    ) throws {
        let content = try contentSize(source, depth: 0)
        let total = content + (content > 0xff_fff0 ? 8 : 4)
        prefix(total, &buffer)
        var splices = Splices(threshold: externalThreshold, blocks: [])
        try write(source, content: content, depth: 0, into: &buffer, splices: &splices)
        external = splices.blocks
    }

    /// Encodes `source` after whatever `prefix` writes, which is told the encoded size first
    /// (for message and parameter headers), walking the object for its size only once.
    public static func encode<S: QAP1SEXPSource>(
        source: S, into buffer: inout ByteBuffer, prefix: (_ encodedSize: Int, _ buffer: inout ByteBuffer) -> Void
    ) throws {
        let content = try contentSize(source, depth: 0)
        let total = content + (content > 0xff_fff0 ? 8 : 4)
        buffer.reserveCapacity(minimumWritableBytes: total + 32)
        prefix(total, &buffer)
        var none = Splices.none
        try write(source, content: content, depth: 0, into: &buffer, splices: &none)
    }

    /// The encoded size of a source, header included.
    public static func encodedSize<S: QAP1SEXPSource>(source: S) throws -> Int {
        try encodedSize(source, depth: 0)
    }

    /// Where large blocks go when they are not copied.
    struct Splices {
        var threshold: Int
        var blocks: [(offset: Int, data: UnsafeRawBufferPointer)]
        static var none: Splices { Splices(threshold: .max, blocks: []) }
    }

    private static func encode<S: QAP1SEXPSource>(_ source: S, depth: Int, into buffer: inout ByteBuffer) throws {
        var none = Splices.none
        try encode(source, depth: depth, into: &buffer, splices: &none)
    }

    private static func encode<S: QAP1SEXPSource>(_ source: S, depth: Int, into buffer: inout ByteBuffer, splices: inout Splices) throws {
        let content = try contentSize(source, depth: depth)
        if splices.threshold == .max { buffer.reserveCapacity(minimumWritableBytes: content + 8) }
        try write(source, content: content, depth: depth, into: &buffer, splices: &splices)
    }

    private static func encodedSize<S: QAP1SEXPSource>(_ source: S, depth: Int) throws -> Int {
        guard depth < maximumEncodingDepth else {
            throw QAP1Error(.objectTooBig, "the result is nested more than \(maximumEncodingDepth) levels deep")
        }
        let content = try contentSize(source, depth: depth)
        return content + (content > 0xff_fff0 ? 8 : 4)
    }

    private static func hasTags<S: QAP1SEXPSource>(_ s: S) -> Bool {
        (0..<s.qapCount).contains { !(s.qapTag($0) ?? "").isEmpty }
    }

    /// A character vector's encoded length before padding: each string and a NUL, NA as FF 00,
    /// a leading 0xFF doubled.
    private static func stringBytes<S: QAP1SEXPSource>(_ s: S) throws -> Int {
        let sizes = try s.qapStringSizes()
        return sizes.bytes + (s.qapCount - sizes.missing) + 2 * sizes.missing + sizes.startingWith0xFF
    }

    private static func contentSize<S: QAP1SEXPSource>(_ s: S, depth: Int) throws -> Int {
        let attributes = s.qapAttributes()
        var n = 0
        if !attributes.isEmpty {
            var list = 0
            for (name, value) in attributes { list += try encodedSize(value, depth: depth + 1) + 4 + ((name.utf8.count + 4) & ~3) }
            n += list + (list > 0xff_fff0 ? 8 : 4)
        }
        let count = s.qapCount
        switch s.qapKind {
        case .null: break
        case .logical, .raw: n += (4 + count + 3) & ~3
        case .integer: n += 4 * count
        case .double: n += 8 * count
        case .complex: n += 16 * count
        case .character:
            let bytes = try stringBytes(s)
            n += (bytes + 3) & ~3
        case .list, .expression:
            for i in 0..<count { n += try encodedSize(s.qapElement(i), depth: depth + 1) }
        case .symbol: n += (s.qapSymbolName.utf8.count + 4) & ~3
        case .language, .pairlist:
            let tagged = hasTags(s)
            for i in 0..<count {
                n += try encodedSize(s.qapElement(i), depth: depth + 1)
                if tagged {
                    let tag = s.qapTag(i) ?? ""
                    n += tag.isEmpty ? 4 : 4 + ((tag.utf8.count + 4) & ~3)
                }
            }
        case .s4: break
        case .closure:
            if let (formals, body) = s.qapClosureParts {
                n += try encodedSize(formals, depth: depth + 1) + encodedSize(body, depth: depth + 1)
            }
        case .unknown: n += 4
        }
        return n
    }

    private static func write<S: QAP1SEXPSource>(_ s: S, content: Int, depth: Int, into buffer: inout ByteBuffer, splices: inout Splices) throws {
        let attributes = s.qapAttributes()
        let count = s.qapKind == .null ? 0 : s.qapCount
        let tagged = (s.qapKind == .language || s.qapKind == .pairlist) && hasTags(s)
        let type: UInt8 = switch s.qapKind {
        case .null: XT.null
        case .logical: XT.arrayBool
        case .integer: XT.arrayInt
        case .double: XT.arrayDouble
        case .complex: XT.arrayComplex
        case .character: XT.arrayStr
        case .raw: XT.raw
        case .list: XT.vector
        case .expression: XT.vectorExp
        case .symbol: XT.symname
        case .language: tagged ? XT.langTag : XT.langNoTag
        case .pairlist: tagged ? XT.listTag : XT.listNoTag
        case .s4: XT.s4
        case .closure: XT.clos
        case .unknown: XT.unknown
        }
        writeHeader(type | (attributes.isEmpty ? 0 : XT.hasAttributes), content, into: &buffer)
        if !attributes.isEmpty {
            var list = 0
            for (name, value) in attributes { list += try encodedSize(value, depth: depth + 1) + 4 + ((name.utf8.count + 4) & ~3) }
            writeHeader(XT.listTag, list, into: &buffer)
            for (name, value) in attributes {
                try encode(value, depth: depth + 1, into: &buffer, splices: &splices)
                writeSymbol(name, into: &buffer)
            }
        }
        switch s.qapKind {
        case .null, .s4:
            break
        case .logical:
            buffer.writeInteger(UInt32(count), endianness: .little)
            try s.withQAPInt32s { v in
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: v.count) { out in
                    for (i, e) in v.enumerated() { out[i] = e == Int32.min ? 2 : (e != 0 ? 1 : 0) }
                    return v.count
                }
            }
            buffer.writeRepeatingByte(0xFF, count: ((4 + count + 3) & ~3) - 4 - count)
        case .integer, .double, .complex:
            if count * (s.qapKind == .integer ? 4 : s.qapKind == .double ? 8 : 16) >= splices.threshold, let data = s.qapStableData {
                splices.blocks.append((buffer.writerIndex, data)) // sent from where it is
            } else if s.qapKind == .integer {
                try s.withQAPInt32s { v in buffer.writeBytes(UnsafeRawBufferPointer(v)) } // little-endian host
            } else {
                try s.withQAPDoubles { v in buffer.writeBytes(UnsafeRawBufferPointer(v)) }
            }
        case .character:
            let total = try stringBytes(s)
            let bytes = try s.withQAPStrings { pointers, lengths -> Int in
                // One pass over raw memory: each string, a NUL; NA as FF 00; a leading FF doubled.
                var fits = true
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
                    var o = 0
                    for i in 0..<pointers.count {
                        guard let p = pointers[i] else {
                            guard o + 2 <= total else { fits = false; return 0 } // the sizes disagreed
                            out[o] = 0xFF; out[o + 1] = 0; o += 2
                            continue
                        }
                        let length = max(Int(lengths[i]), 0)
                        let doubled = length > 0 && p[0] == 0xFF
                        guard o + length + (doubled ? 2 : 1) <= total else { fits = false; return 0 }
                        if doubled { out[o] = 0xFF; o += 1 }
                        if length > 0 { (out.baseAddress! + o).copyMemory(from: p, byteCount: length) }
                        o += length
                        out[o] = 0
                        o += 1
                    }
                    if o != total { fits = false; return 0 }
                    return o
                }
                guard fits else { throw QAP1Error(.invalidParameter, "a character vector's strings changed while it was encoded") }
                return total
            }
            buffer.writeRepeatingByte(0x01, count: ((bytes + 3) & ~3) - bytes)
        case .raw:
            buffer.writeInteger(UInt32(count), endianness: .little)
            try s.withQAPBytes { buffer.writeBytes($0) }
            buffer.writeRepeatingByte(0, count: ((4 + count + 3) & ~3) - 4 - count)
        case .list, .expression:
            for i in 0..<count { try encode(s.qapElement(i), depth: depth + 1, into: &buffer, splices: &splices) }
        case .symbol:
            let name = s.qapSymbolName
            let written = buffer.writeString(name)
            buffer.writeRepeatingByte(0, count: ((name.utf8.count + 4) & ~3) - written)
        case .language, .pairlist:
            for i in 0..<count {
                try encode(s.qapElement(i), depth: depth + 1, into: &buffer, splices: &splices)
                if tagged {
                    let tag = s.qapTag(i) ?? ""
                    if tag.isEmpty { writeHeader(XT.null, 0, into: &buffer) } else { writeSymbol(tag, into: &buffer) }
                }
            }
        case .closure:
            if let (formals, body) = s.qapClosureParts {
                try encode(formals, depth: depth + 1, into: &buffer, splices: &splices)
                try encode(body, depth: depth + 1, into: &buffer, splices: &splices)
            }
        case .unknown(let t):
            buffer.writeInteger(t, endianness: .little)
        }
    }
}
