public import NIOCore

/// One request of the seed's text protocol: a line naming the encoding, an 8-byte little-endian
/// length, then that many bytes of R code in that encoding.
///
/// rgate accepts options after the encoding name, separated by `;` (for example `UTF-8;status`).
/// The seed's client never sends any, so its requests parse unchanged.
public struct TextRequest: Sendable, Hashable {
    /// The encoding line as sent, without options and surrounding white space.
    public var encodingName: String
    /// Options after the encoding name, lower-cased (`status` asks for a status line).
    public var options: Set<String>
    /// The code, still in `encodingName`'s encoding.
    public var code: ByteBuffer

    /// Creates a request.
    public init(encodingName: String, options: Set<String> = [], code: ByteBuffer) {
        self.encodingName = encodingName
        self.options = options
        self.code = code
    }

    /// True when the client asked for rgate's status line in the reply (see ``TextReply``).
    public var wantsStatus: Bool { options.contains("status") }

    /// Writes the request in wire form.
    public func encode(into buffer: inout ByteBuffer) {
        var line = encodingName
        for option in options.sorted() { line += ";" + option }
        buffer.writeString(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        buffer.writeInteger(UInt64(code.readableBytes), endianness: .little)
        buffer.writeImmutableBuffer(code)
    }
}

/// A reply of the text protocol: an 8-byte little-endian length, then the text.
///
/// When the request carried the `status` option, the text starts with one line
/// `rgate-status: ok` or `rgate-status: <code>` (e.g. `r-error`, `parse-error`, `timeout`,
/// `protocol-error`, `session-lost`) so that programs can tell failure from output.
public struct TextReply: Sendable, Hashable {
    /// The reply body, already in the request's encoding.
    public var body: ByteBuffer

    /// Creates a reply.
    public init(body: ByteBuffer) { self.body = body }

    /// Writes the reply in wire form.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt64(body.readableBytes), endianness: .little)
        buffer.writeImmutableBuffer(body)
    }

    /// The status line's prefix.
    public static let statusPrefix = "rgate-status: "

    /// Splits a status-bearing reply into its status and text.
    public static func splitStatus(_ text: String) -> (status: String, text: String)? {
        guard text.hasPrefix(statusPrefix), let newline = text.firstIndex(of: "\n") else { return nil }
        let status = String(text[text.index(text.startIndex, offsetBy: statusPrefix.count)..<newline])
        return (status, String(text[text.index(after: newline)...]))
    }
}
