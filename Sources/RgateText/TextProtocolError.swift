/// A request that breaks the text protocol's framing or limits.
public struct TextProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong; extensible.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// No newline ended the encoding line within its maximum length.
        public static let encodingLineTooLong = Code(rawValue: "encoding-line-too-long")
        /// The encoding line is empty or not printable ASCII.
        public static let invalidEncodingLine = Code(rawValue: "invalid-encoding-line")
        /// The encoding is not one this server can convert.
        public static let unknownEncoding = Code(rawValue: "unknown-encoding")
        /// The announced length exceeds the configured maximum.
        public static let requestTooLarge = Code(rawValue: "request-too-large")
        /// The connection ended in the middle of a request.
        public static let truncated = Code(rawValue: "truncated")
        /// The code bytes are not valid in the named encoding.
        public static let invalidText = Code(rawValue: "invalid-text")
    }

    /// What is wrong.
    public var code: Code
    /// A message for the client, saying what to do.
    public var message: String
    /// Where in the request the problem was found (byte offset), when known.
    public var offset: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
