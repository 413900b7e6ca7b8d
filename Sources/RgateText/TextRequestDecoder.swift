public import NIOCore

/// Decodes text-protocol requests, one frame at a time.
///
/// The length is checked against ``maximumCodeBytes`` before any code is buffered, and the
/// encoding line may not exceed ``maximumEncodingLineBytes``; both fail with a
/// ``TextProtocolError`` instead of waiting for more bytes.
public struct TextRequestDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = TextRequest

    /// The largest code accepted, in bytes.
    public var maximumCodeBytes: Int
    /// The longest encoding line accepted, newline included.
    public var maximumEncodingLineBytes: Int

    /// Creates a decoder.
    public init(maximumCodeBytes: Int = 64 << 20, maximumEncodingLineBytes: Int = 256) {
        self.maximumCodeBytes = maximumCodeBytes
        self.maximumEncodingLineBytes = maximumEncodingLineBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> TextRequest? {
        let view = buffer.readableBytesView
        let searchLimit = min(view.count, maximumEncodingLineBytes)
        guard let newline = view.prefix(searchLimit).firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count >= maximumEncodingLineBytes {
                throw TextProtocolError(
                    .encodingLineTooLong,
                    "expected a line naming the encoding (e.g. \"UTF-8\") of at most \(maximumEncodingLineBytes) bytes; is this client speaking the text protocol?",
                    offset: 0)
            }
            return nil
        }
        let lineLength = newline - view.startIndex
        guard buffer.readableBytes >= lineLength + 1 + 8 else { return nil }
        let lineBytes = buffer.getBytes(at: buffer.readerIndex, length: lineLength)!
        let length = buffer.getInteger(at: buffer.readerIndex + lineLength + 1, endianness: .little, as: UInt64.self)!
        guard length <= UInt64(maximumCodeBytes) else {
            throw TextProtocolError(
                .requestTooLarge,
                "the request announces \(length) bytes of code; this server accepts at most \(maximumCodeBytes)",
                offset: lineLength + 1)
        }
        let total = lineLength + 1 + 8 + Int(length)
        guard buffer.readableBytes >= total else { return nil }
        let (name, options) = try Self.parseEncodingLine(lineBytes)
        buffer.moveReaderIndex(forwardBy: lineLength + 1 + 8)
        let code = buffer.readSlice(length: Int(length))!
        return TextRequest(encodingName: name, options: options, code: code)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> TextRequest? {
        if let request = try decode(buffer: &buffer) { return request }
        if seenEOF && buffer.readableBytes > 0 {
            throw TextProtocolError(
                .truncated,
                "the connection closed after \(buffer.readableBytes) bytes of an incomplete request",
                offset: buffer.readableBytes)
        }
        return nil
    }

    static func parseEncodingLine(_ bytes: [UInt8]) throws -> (String, Set<String>) {
        guard bytes.allSatisfy({ $0 == 9 || (0x20...0x7e).contains($0) || $0 == 13 }) else {
            throw TextProtocolError(.invalidEncodingLine, "the encoding line must be printable ASCII, e.g. \"UTF-8\"", offset: 0)
        }
        let line = String(decoding: bytes, as: UTF8.self)
        var parts = line.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        let name = parts.removeFirst()
        guard !name.isEmpty else {
            throw TextProtocolError(.invalidEncodingLine, "the encoding line is empty; send e.g. \"UTF-8\"", offset: 0)
        }
        return (name, Set(parts.filter { !$0.isEmpty }.map { $0.lowercased() }))
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
