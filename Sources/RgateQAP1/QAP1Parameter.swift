public import NIOCore
public import RgateModel

/// A parameter in a QAP1 command or response payload (the `DT_*` data types).
public enum QAP1Parameter: Sendable, Hashable {
    /// DT_INT.
    case int(Int32)
    /// DT_STRING: bytes up to the first NUL.
    case string([UInt8])
    /// DT_BYTESTREAM.
    case bytes(ByteBuffer)
    /// DT_SEXP, still encoded (decode it with ``QAP1SEXP/decode(_:)``).
    case sexp(ByteBuffer)
    /// Any other DT type, kept raw.
    case other(type: UInt8, ByteBuffer)

    /// DT type codes.
    public enum DataType {
        public static let int: UInt8 = 1
        public static let char: UInt8 = 2
        public static let double: UInt8 = 3
        public static let string: UInt8 = 4
        public static let bytestream: UInt8 = 5
        public static let sexp: UInt8 = 10
        public static let array: UInt8 = 11
        public static let large: UInt8 = 0x40
    }

    /// The string's text when this is DT_STRING (UTF-8, invalid bytes replaced).
    public var stringValue: String? {
        if case .string(let bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    /// Parses a command payload the way Rserve does: small or large headers for any type,
    /// unaligned lengths, a zero header or the end stops the list, at most 16 parameters,
    /// trailing bytes shorter than a header are ignored. Unlike Rserve, a length that runs past
    /// the payload is an error rather than a read out of bounds.
    public static func parse(_ payload: ByteBuffer, maximumCount: Int = 16) throws(QAP1Error) -> [QAP1Parameter] {
        var buffer = payload
        var result: [QAP1Parameter] = []
        let start = buffer.readerIndex
        while buffer.readableBytes >= 4, result.count < maximumCount {
            let offset = buffer.readerIndex - start
            let head = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self)!
            if head == 0 { break }
            var type = UInt8(head & 0xff)
            var length = UInt64(head >> 8)
            var headerSize = 4
            if type & DataType.large != 0 {
                guard let high = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .little, as: UInt32.self) else {
                    throw QAP1Error(.invalidParameter, "a large parameter header is cut short", offset: offset)
                }
                length |= UInt64(high) << 24
                headerSize = 8
                type &= ~DataType.large
            }
            buffer.moveReaderIndex(forwardBy: headerSize)
            guard length <= UInt64(buffer.readableBytes) else {
                throw QAP1Error(.invalidParameter, "parameter \(result.count + 1) announces \(length) bytes but only \(buffer.readableBytes) follow", offset: offset)
            }
            let body = buffer.readSlice(length: Int(length))!
            switch type {
            case DataType.int:
                guard let v = body.getInteger(at: body.readerIndex, endianness: .little, as: Int32.self) else {
                    throw QAP1Error(.invalidParameter, "DT_INT parameter shorter than 4 bytes", offset: offset)
                }
                result.append(.int(v))
            case DataType.string:
                let bytes = body.readableBytesView
                result.append(.string(Array(bytes.prefix { $0 != 0 })))
            case DataType.bytestream:
                result.append(.bytes(body))
            case DataType.sexp:
                result.append(.sexp(body))
            default:
                result.append(.other(type: type, body))
            }
        }
        return result
    }

    /// Writes a parameter header, in the large form when the length needs more than 24 bits.
    public static func writeHeader(type: UInt8, length: Int, into buffer: inout ByteBuffer) {
        if length > 0xff_fff0 {
            buffer.writeInteger(UInt32(type | DataType.large) | UInt32(truncatingIfNeeded: length & 0xff_ffff) << 8, endianness: .little)
            buffer.writeInteger(UInt32(truncatingIfNeeded: length >> 24), endianness: .little)
        } else {
            buffer.writeInteger(UInt32(type) | UInt32(length) << 8, endianness: .little)
        }
    }

    /// Writes this parameter.
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .int(let v):
            Self.writeHeader(type: DataType.int, length: 4, into: &buffer)
            buffer.writeInteger(v, endianness: .little)
        case .string(let bytes):
            let padded = (bytes.count + 1 + 3) & ~3
            Self.writeHeader(type: DataType.string, length: padded, into: &buffer)
            buffer.writeBytes(bytes)
            buffer.writeRepeatingByte(0, count: padded - bytes.count)
        case .bytes(let body):
            Self.writeHeader(type: DataType.bytestream, length: body.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(body)
        case .sexp(let body):
            Self.writeHeader(type: DataType.sexp, length: body.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(body)
        case .other(let type, let body):
            Self.writeHeader(type: type, length: body.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(body)
        }
    }

    /// A DT_SEXP parameter holding `value`.
    /// - Throws: ``QAP1Error`` when the value nests too deeply to encode.
    public static func sexp(_ value: RValue) throws -> QAP1Parameter {
        var body = ByteBuffer()
        try QAP1SEXP.encode(value, into: &body)
        return .sexp(body)
    }

    /// A DT_STRING parameter.
    public static func string(_ text: String) -> QAP1Parameter { .string(Array(text.utf8)) }
}
