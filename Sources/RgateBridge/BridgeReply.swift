public import NIOCore

/// A piece of console output, in the order R wrote it.
public struct BridgeConsoleChunk: Sendable, Hashable {
    /// Which stream R wrote to.
    public var isStderr: Bool
    /// The text (UTF-8).
    public var text: String

    /// Creates a chunk.
    public init(isStderr: Bool, text: String) {
        self.isStderr = isStderr
        self.text = text
    }
}

/// A warning R raised.
public struct BridgeCondition: Sendable, Hashable {
    /// `conditionMessage()`.
    public var message: String
    /// The deparsed call, when there was one.
    public var call: String?

    /// Creates a condition.
    public init(message: String, call: String? = nil) {
        self.message = message
        self.call = call
    }
}

/// Why a request failed, structured for every front end to map once (a QAP1 status, an HTTP
/// problem, a job state).
public struct BridgeFailure: Error, Sendable, Hashable {
    /// The kind of failure; extensible, so an unknown code from a newer session is kept.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// R signalled an error (``BridgeFailure/message``, ``BridgeFailure/call`` and
        /// ``BridgeFailure/classes`` are R's).
        public static let rError = Code(rawValue: "r-error")
        /// The code ended inside an unfinished expression.
        public static let parseIncomplete = Code(rawValue: "parse-incomplete")
        /// The code is not valid R.
        public static let parseError = Code(rawValue: "parse-error")
        /// The request ran past its time limit and was interrupted.
        public static let timeout = Code(rawValue: "timeout")
        /// R could not allocate memory within the session's limit.
        public static let memory = Code(rawValue: "memory")
        /// The request was cancelled (``BridgeRequest/cancel``, or the supervisor hung up).
        public static let cancelled = Code(rawValue: "cancelled")
        /// The role may not do this (the message says what it may do).
        public static let forbidden = Code(rawValue: "forbidden")
        /// The named object does not exist.
        public static let notFound = Code(rawValue: "not-found")
        /// The request is malformed (a bad name, an argument that is not plain data...).
        public static let badRequest = Code(rawValue: "bad-request")
        /// The value cannot be encoded in the format asked for (or the format is unknown here).
        public static let unsupportedFormat = Code(rawValue: "unsupported-format")
        /// The code called `q()`: the session ends after this reply.
        public static let quit = Code(rawValue: "quit")
    }

    /// The kind of failure.
    public var code: Code
    /// For people: R's message, or what rgate refused and why.
    public var message: String
    /// The deparsed call R reported, when there was one.
    public var call: String?
    /// The R condition's classes (`class(e)`), most specific first; empty when not an R condition.
    public var classes: [String]

    /// Creates a failure.
    public init(code: Code, message: String, call: String? = nil, classes: [String] = []) {
        self.code = code
        self.message = message
        self.call = call
        self.classes = classes
    }
}

/// One object of the global environment, as ``BridgeRequest/listObjects`` lists it.
public struct BridgeObjectInfo: Sendable, Hashable {
    /// Its name.
    public var name: String
    /// `class(x)`.
    public var classes: [String]
    /// `typeof(x)`.
    public var type: String
    /// `length(x)`.
    public var length: UInt64
    /// `object.size(x)` in bytes.
    public var bytes: UInt64

    /// Creates an entry.
    public init(name: String, classes: [String], type: String, length: UInt64, bytes: UInt64) {
        self.name = name
        self.classes = classes
        self.type = type
        self.length = length
        self.bytes = bytes
    }
}

/// A session's answer to one ``BridgeRequest``.
public struct BridgeReply: Sendable, Hashable {
    /// Why the request failed; nil when it succeeded.
    public var failure: BridgeFailure?
    /// Whether the last value was visible (would print at the console).
    public var visible: Bool = false
    /// Wall-clock time the session spent on the request.
    public var durationMicroseconds: UInt64 = 0
    /// The console transcript, stdout and stderr in order.
    public var console: [BridgeConsoleChunk] = []
    /// Whether console output past the session's limit was dropped.
    public var consoleTruncated: Bool = false
    /// Warnings, in order.
    public var warnings: [BridgeCondition] = []
    /// `message()` texts, in order.
    public var messages: [String] = []
    /// The plots the request drew, in order (each in the format it was recorded in).
    public var plots: [BridgeValue] = []
    /// The objects (``BridgeRequest/listObjects`` only).
    public var objects: [BridgeObjectInfo] = []
    /// The value, in the format asked for (last, so a large value is the frame's tail).
    public var value: BridgeValue?

    /// Creates an empty, successful reply.
    public init() {}

    /// Creates a failed reply.
    public init(failure: BridgeFailure) {
        self.failure = failure
    }

    /// True when the request succeeded.
    public var succeeded: Bool { failure == nil }

    /// The transcript as one text, as the console showed it.
    public var transcript: String { console.map(\.text).joined() }

    /// Writes the reply's payload (no header).
    public func encodePayload(into buffer: inout ByteBuffer) {
        var w = BridgePayloadWriter(buffer)
        w.bool(failure != nil)
        if let failure {
            w.string(failure.code.rawValue)
            w.string(failure.message)
            w.optionalString(failure.call)
            w.count(failure.classes.count)
            for c in failure.classes { w.string(c) }
        }
        w.bool(visible)
        w.u64(durationMicroseconds)
        w.count(console.count)
        for chunk in console {
            w.bool(chunk.isStderr)
            w.string(chunk.text)
        }
        w.bool(consoleTruncated)
        w.count(warnings.count)
        for warning in warnings {
            w.string(warning.message)
            w.optionalString(warning.call)
        }
        w.count(messages.count)
        for m in messages { w.string(m) }
        w.count(plots.count)
        for p in plots { w.value(p) }
        w.count(objects.count)
        for o in objects {
            w.string(o.name)
            w.count(o.classes.count)
            for c in o.classes { w.string(c) }
            w.string(o.type)
            w.u64(o.length)
            w.u64(o.bytes)
        }
        w.optionalValue(value)
        buffer = w.buffer
    }

    /// Decodes a reply from its whole payload.
    /// - Throws: ``BridgeError`` when the payload does not hold exactly one reply.
    public init(payload: ByteBuffer) throws(BridgeError) {
        var r = BridgePayloadReader(payload)
        if try r.bool() {
            let code = BridgeFailure.Code(rawValue: try r.string())
            let message = try r.string()
            let call = try r.optionalString()
            var classes: [String] = []
            for _ in 0..<(try r.count(minimumItemBytes: 4)) { classes.append(try r.string()) }
            failure = BridgeFailure(code: code, message: message, call: call, classes: classes)
        }
        visible = try r.bool()
        durationMicroseconds = try r.u64()
        for _ in 0..<(try r.count(minimumItemBytes: 5)) {
            let isStderr = try r.bool()
            console.append(BridgeConsoleChunk(isStderr: isStderr, text: try r.string()))
        }
        consoleTruncated = try r.bool()
        for _ in 0..<(try r.count(minimumItemBytes: 5)) {
            let message = try r.string()
            warnings.append(BridgeCondition(message: message, call: try r.optionalString()))
        }
        for _ in 0..<(try r.count(minimumItemBytes: 4)) { messages.append(try r.string()) }
        for _ in 0..<(try r.count(minimumItemBytes: 9)) { plots.append(try r.value()) }
        for _ in 0..<(try r.count(minimumItemBytes: 28)) {
            let name = try r.string()
            var classes: [String] = []
            for _ in 0..<(try r.count(minimumItemBytes: 4)) { classes.append(try r.string()) }
            let type = try r.string()
            objects.append(BridgeObjectInfo(name: name, classes: classes, type: type, length: try r.u64(), bytes: try r.u64()))
        }
        value = try r.optionalValue()
        try r.finish()
    }
}
