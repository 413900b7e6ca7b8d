/// A data-plane frame that cannot be decoded (or is not allowed where it arrived).
public struct BridgeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure; extensible.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The header is malformed (version, reserved bytes).
        public static let badFrame = Code(rawValue: "bad-frame")
        /// The payload length exceeds the configured maximum.
        public static let tooLarge = Code(rawValue: "too-large")
        /// The payload ends early, has bytes left over, or holds an impossible value.
        public static let badPayload = Code(rawValue: "bad-payload")
        /// The frame type is not one this side accepts.
        public static let unexpectedFrame = Code(rawValue: "unexpected-frame")
        /// The stream ended inside a frame.
        public static let truncated = Code(rawValue: "truncated")
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong, for logs.
    public var message: String
    /// The offset of the offending byte in the frame's payload (or header), when known.
    public var offset: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String {
        offset.map { "\(message) (at byte \($0))" } ?? message
    }
}
