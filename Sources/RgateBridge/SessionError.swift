/// Why a session could not be had, or why a request on one did not get a reply.
public struct SessionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; extensible.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Every session slot (of this workload's share) stayed in use for the admission wait.
        public static let busy = Code(rawValue: "busy")
        /// The session process died: crashed (``SessionError/signal``), was killed, or ran past
        /// its hard time limit (``SessionError/timeLimit``).
        public static let lost = Code(rawValue: "session-lost")
        /// The session ended on purpose: idle expiry, `q()`, or it was closed.
        public static let ended = Code(rawValue: "session-ended")
        /// The role is not one the server knows.
        public static let unknownRole = Code(rawValue: "unknown-role")
        /// The awaiting task was cancelled before the session started its request (it was never
        /// sent; a request already running is stopped instead and its reply says `cancelled`).
        public static let cancelled = Code(rawValue: "cancelled")
        /// The server is shutting down.
        public static let stopping = Code(rawValue: "stopping")
        /// The reply was larger than the server takes from a session (`max_result_size`); the
        /// session was ended (its stream cannot be resumed mid-reply).
        public static let tooLarge = Code(rawValue: "too-large")
        /// The session broke the data-plane protocol (a bug, or a hostile session).
        public static let protocolViolation = Code(rawValue: "protocol-violation")
    }

    /// The kind of failure.
    public var code: Code
    /// For people: what happened and what to do.
    public var message: String
    /// The signal that ended the process, when it died of one.
    public var signal: Int32?
    /// Whether the process was killed for running past its hard time limit.
    public var timeLimit: Bool

    /// Creates an error.
    public init(_ code: Code, _ message: String, signal: Int32? = nil, timeLimit: Bool = false) {
        self.code = code
        self.message = message
        self.signal = signal
        self.timeLimit = timeLimit
    }

    public var description: String { message }
}
