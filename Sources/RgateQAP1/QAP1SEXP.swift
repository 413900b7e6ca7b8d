public import NIOCore
public import RgateModel

/// R objects in QAP1's `XT_*` encoding, both ways, with Rserve's conventions: NA values,
/// `0x01` string padding, `0xFF` logical padding, attributes as a tagged pairlist first, the large
/// header only above 0xfffff0 bytes (at every level independently).
public enum QAP1SEXP {
    /// `XT_*` type codes.
    public enum XT {
        public static let null: UInt8 = 0
        public static let int: UInt8 = 1
        public static let double: UInt8 = 2
        public static let str: UInt8 = 3
        public static let lang: UInt8 = 4
        public static let sym: UInt8 = 5
        public static let bool: UInt8 = 6
        public static let s4: UInt8 = 7
        public static let vector: UInt8 = 16
        public static let list: UInt8 = 17
        public static let clos: UInt8 = 18
        public static let symname: UInt8 = 19
        public static let listNoTag: UInt8 = 20
        public static let listTag: UInt8 = 21
        public static let langNoTag: UInt8 = 22
        public static let langTag: UInt8 = 23
        public static let vectorExp: UInt8 = 26
        public static let vectorStr: UInt8 = 27
        public static let arrayInt: UInt8 = 32
        public static let arrayDouble: UInt8 = 33
        public static let arrayStr: UInt8 = 34
        public static let arrayBoolUA: UInt8 = 35
        public static let arrayBool: UInt8 = 36
        public static let raw: UInt8 = 37
        public static let arrayComplex: UInt8 = 38
        public static let unknown: UInt8 = 48
        public static let large: UInt8 = 64
        public static let hasAttributes: UInt8 = 128
    }

    /// R's NA_real_ bit pattern.
    public static let naRealBits: UInt64 = 0x7FF0_0000_0000_07A2

    /// True when `bits` is R's NA (a NaN whose low word is 1954), not an ordinary NaN.
    @inlinable public static func isNA(_ value: Double) -> Bool {
        value.isNaN && UInt32(truncatingIfNeeded: value.bitPattern) == 1954
    }

    // MARK: Encoding

    /// Appends `value`'s encoding to `buffer` (the encoder of ``QAP1SEXPSource``, which
    /// ``RValue`` is).
    /// - Throws: ``QAP1Error`` when the value nests deeper than ``maximumEncodingDepth``.
    public static func encode(_ value: RValue, into buffer: inout ByteBuffer) throws {
        try encode(source: value, into: &buffer)
    }

    /// The encoded size of `value`, header included.
    public static func encodedSize(_ value: RValue) throws -> Int {
        try encodedSize(source: value)
    }

    static func writeHeader(_ type: UInt8, _ length: Int, into buffer: inout ByteBuffer) {
        if length > 0xff_fff0 {
            buffer.writeInteger(UInt32(type | XT.large) | UInt32(truncatingIfNeeded: length & 0xff_ffff) << 8, endianness: .little)
            buffer.writeInteger(UInt32(truncatingIfNeeded: length >> 24), endianness: .little)
        } else {
            buffer.writeInteger(UInt32(type) | UInt32(length) << 8, endianness: .little)
        }
    }

    static func writeSymbol(_ name: String, into buffer: inout ByteBuffer) {
        let size = (name.utf8.count + 4) & ~3
        writeHeader(XT.symname, size, into: &buffer)
        let written = buffer.writeString(name)
        buffer.writeRepeatingByte(0, count: size - written)
    }

    static func sexpType(named name: String) -> Int {
        switch name {
        case "closure": 3
        case "environment": 4
        case "promise": 5
        case "special": 7
        case "builtin": 8
        case "externalptr": 22
        case "weakref": 23
        case "S4": 25
        case "bytecode": 21
        default: Int(name.dropFirst(4)) ?? 0
        }
    }

    static func typeName(sexpType: Int32) -> String {
        switch sexpType {
        case 3: "closure"
        case 4: "environment"
        case 5: "promise"
        case 7: "special"
        case 8: "builtin"
        case 21: "bytecode"
        case 22: "externalptr"
        case 23: "weakref"
        case 25: "S4"
        default: "type\(sexpType)"
        }
    }

    // MARK: Decoding

    /// The deepest nesting accepted (a guard against stack exhaustion by hostile input).
    public static let maximumDepth = 256

    /// Decodes one encoded object (trailing bytes are ignored, as Rserve does).
    public static func decode(_ buffer: ByteBuffer) throws(QAP1Error) -> RValue {
        var b = buffer
        let start = b.readerIndex
        return try decodeOne(&b, depth: 0, base: start)
    }

    private static func decodeOne(_ b: inout ByteBuffer, depth: Int, base: Int) throws(QAP1Error) -> RValue {
        let offset = b.readerIndex - base
        guard depth < maximumDepth else { throw QAP1Error(.invalidParameter, "objects nested deeper than \(maximumDepth) levels", offset: offset) }
        guard let head = b.readInteger(endianness: .little, as: UInt32.self) else {
            throw QAP1Error(.invalidParameter, "an object header is cut short", offset: offset)
        }
        var type = UInt8(head & 0xff)
        var length = UInt64(head >> 8)
        if type & XT.large != 0 {
            guard let high = b.readInteger(endianness: .little, as: UInt32.self) else {
                throw QAP1Error(.invalidParameter, "a large object header is cut short", offset: offset)
            }
            length |= UInt64(high) << 24
            type &= ~XT.large
        }
        let hasAttributes = type & XT.hasAttributes != 0
        type &= 0x3f
        if type == XT.null {
            // Rserve ignores XT_NULL's declared length, but does read (and so skip) its attributes.
            if hasAttributes { _ = try decodeOne(&b, depth: depth + 1, base: base) }
            return .null
        }
        guard length <= UInt64(b.readableBytes) else {
            throw QAP1Error(.invalidParameter, "an object announces \(length) bytes but only \(b.readableBytes) follow", offset: offset)
        }
        let bodyOffset = b.readerIndex - base
        var body = b.readSlice(length: Int(length))!
        // A slice has its own indices: offsets inside it are relative to where it starts.
        let bodyBase = body.readerIndex - bodyOffset
        var attributes: [RAttribute] = []
        if hasAttributes {
            let list = try decodeOne(&body, depth: depth + 1, base: bodyBase)
            attributes = try attributesFrom(list, offset: offset)
        }
        let n = body.readableBytes
        let payload: RPayload
        switch type {
        case XT.arrayInt, XT.int:
            var values: [Int32?] = []
            values.reserveCapacity(n / 4)
            while let v = body.readInteger(endianness: .little, as: Int32.self) { values.append(v == Int32.min ? nil : v) }
            payload = .integer(values)
        case XT.arrayDouble, XT.double:
            var values: [Double?] = []
            values.reserveCapacity(n / 8)
            while let bits = body.readInteger(endianness: .little, as: UInt64.self) {
                let d = Double(bitPattern: bits)
                values.append(isNA(d) ? nil : d)
            }
            payload = .double(values)
        case XT.arrayComplex:
            var values: [RComplex?] = []
            values.reserveCapacity(n / 16)
            while body.readableBytes >= 16 {
                let re = Double(bitPattern: body.readInteger(endianness: .little, as: UInt64.self)!)
                let im = Double(bitPattern: body.readInteger(endianness: .little, as: UInt64.self)!)
                values.append(isNA(re) || isNA(im) ? nil : RComplex(re, im))
            }
            payload = .complex(values)
        case XT.arrayStr:
            payload = .character(decodeStrings(body.readableBytesView))
        case XT.str: // One string, NUL-padded (not 0x01-padded): Rserve reads it up to the first NUL.
            payload = .character([String(decoding: body.readableBytesView.prefix { $0 != 0 }, as: UTF8.self)])
        case XT.arrayBool:
            guard let count = body.readInteger(endianness: .little, as: UInt32.self), Int(count) <= body.readableBytes else {
                throw QAP1Error(.invalidParameter, "a logical vector's count exceeds its data", offset: offset)
            }
            payload = .logical(body.readBytes(length: Int(count))!.map { $0 == 0 ? false : $0 == 1 ? true : nil })
        case XT.bool:
            let byte = body.readInteger(as: UInt8.self) ?? 2
            payload = .logical([byte == 0 ? false : byte == 1 ? true : nil])
        case XT.raw:
            guard let count = body.readInteger(endianness: .little, as: UInt32.self), Int(count) <= body.readableBytes else {
                throw QAP1Error(.invalidParameter, "a raw vector's count exceeds its data", offset: offset)
            }
            payload = .raw(body.readBytes(length: Int(count))!)
        case XT.vector, XT.vectorExp:
            var values: [RValue] = []
            while body.readableBytes >= 4 { values.append(try decodeOne(&body, depth: depth + 1, base: bodyBase)) }
            payload = .list(values)
        case XT.symname, XT.sym:
            payload = .symbol(String(decoding: body.readableBytesView.prefix { $0 != 0 }, as: UTF8.self))
        case XT.listNoTag, XT.langNoTag, XT.listTag, XT.langTag:
            let tagged = type == XT.listTag || type == XT.langTag
            var values: [RValue] = []
            var tags: [String] = []
            while body.readableBytes >= 4 {
                values.append(try decodeOne(&body, depth: depth + 1, base: bodyBase))
                if tagged {
                    guard body.readableBytes >= 4 else { tags.append(""); break }
                    let tag = try decodeOne(&body, depth: depth + 1, base: bodyBase)
                    if case .symbol(let name) = tag.payload { tags.append(name) } else if case .character(let s) = tag.payload { tags.append(s.first.flatMap { $0 } ?? "") } else { tags.append("") }
                }
            }
            if tagged && tags.contains(where: { !$0.isEmpty }) {
                attributes.insert(RAttribute(name: "names", value: .character(tags)), at: 0)
            }
            let isCall = type == XT.langNoTag || type == XT.langTag
            if isCall && values.isEmpty { throw QAP1Error(.invalidParameter, "a call without a function", offset: offset) }
            payload = isCall ? .language(values) : .pairlist(values)
        case XT.s4:
            payload = .opaque(type: "S4", description: "<S4 object>")
        case XT.clos:
            payload = .opaque(type: "closure", description: "<closure>")
        case XT.unknown:
            let t = body.readInteger(endianness: .little, as: Int32.self) ?? 0
            let name = typeName(sexpType: t)
            payload = .opaque(type: name, description: "<\(name)>")
        default:
            throw QAP1Error(.invalidParameter, "unsupported object type XT \(type)", offset: offset)
        }
        return RValue(payload, attributes: attributes)
    }

    private static func attributesFrom(_ list: RValue, offset: Int) throws(QAP1Error) -> [RAttribute] {
        switch list.payload {
        case .pairlist(let values), .list(let values):
            let names = list.names ?? []
            return values.enumerated().compactMap { i, v in
                guard i < names.count, let name = names[i], !name.isEmpty else { return nil }
                return RAttribute(name: name, value: v)
            }
        case .null:
            return []
        default:
            throw QAP1Error(.invalidParameter, "attributes must be a tagged pairlist", offset: offset)
        }
    }

    /// Splits an XT_ARRAY_STR body: NUL-terminated strings, NA as 0xFF 0x00, a leading 0xFF
    /// doubled; trailing padding (any bytes after the last NUL) ignored.
    static func decodeStrings(_ bytes: ByteBufferView) -> [String?] {
        var result: [String?] = []
        var start = bytes.startIndex
        var i = start
        while i < bytes.endIndex {
            if bytes[i] == 0 {
                let piece = bytes[start..<i]
                if piece.first == 0xFF {
                    result.append(piece.count == 1 ? nil : String(decoding: piece.dropFirst(), as: UTF8.self))
                } else {
                    result.append(String(decoding: piece, as: UTF8.self))
                }
                start = i + 1
            }
            i += 1
        }
        return result
    }
}
