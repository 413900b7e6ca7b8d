public import NIOCore

/// One argument of a ``BridgeRequest/call(function:arguments:format:)``.
public struct BridgeArgument: Sendable, Hashable {
    /// The argument's name (`nil`: positional).
    public var label: String?
    /// Its value, as data (the session checks that it is plain data before R sees it).
    public var value: BridgeValue

    /// Creates an argument.
    public init(label: String? = nil, value: BridgeValue) {
        self.label = label
        self.value = value
    }
}

/// What the supervisor asks of a session process over the data plane. One request is in flight
/// at a time; each (but ``cancel``) gets exactly one ``BridgeReply`` with the same request id.
public enum BridgeRequest: Sendable, Hashable {
    /// Evaluate `code` (UTF-8) as the console does: every top-level expression in order in the
    /// global environment, visible values printed into the transcript when `transcript` is set,
    /// the last value encoded in `format`.
    case evaluate(code: ByteBuffer, format: BridgeValueFormat, transcript: Bool)
    /// Call `function` (an allow-listed function for caller roles) with data arguments; the
    /// result is encoded in `format`.
    case call(function: String, arguments: [BridgeArgument], format: BridgeValueFormat)
    /// Bind `value` to `name` in the global environment.
    case assign(name: String, value: BridgeValue)
    /// Encode the global variable `name` in `format`.
    case fetch(name: String, format: BridgeValueFormat)
    /// The global environment's objects, with class, type and length.
    case listObjects
    /// Stop the running request.
    case cancel

    /// The frame type that carries this request.
    public var frameType: BridgeFrameType {
        switch self {
        case .evaluate: .evaluate
        case .call: .call
        case .assign: .assign
        case .fetch: .fetch
        case .listObjects: .listObjects
        case .cancel: .cancel
        }
    }

    /// Writes the request's payload (no header).
    public func encodePayload(into buffer: inout ByteBuffer) {
        var w = BridgePayloadWriter(buffer)
        switch self {
        case .evaluate(let code, let format, let transcript):
            w.u8(format.rawValue)
            w.bool(transcript)
            w.u64(UInt64(code.readableBytes))
            w.buffer.writeImmutableBuffer(code)
        case .call(let function, let arguments, let format):
            w.u8(format.rawValue)
            w.string(function)
            w.count(arguments.count)
            for argument in arguments {
                w.optionalString(argument.label)
                w.value(argument.value)
            }
        case .assign(let name, let value):
            w.string(name)
            w.value(value)
        case .fetch(let name, let format):
            w.string(name)
            w.u8(format.rawValue)
        case .listObjects, .cancel:
            break
        }
        buffer = w.buffer
    }

    /// Decodes a request of `type` from its whole payload.
    /// - Throws: ``BridgeError`` when the payload does not hold exactly one such request, or
    ///   `type` is not a request.
    public init(type: BridgeFrameType, payload: ByteBuffer) throws(BridgeError) {
        var r = BridgePayloadReader(payload)
        switch type {
        case .evaluate:
            let format = BridgeValueFormat(rawValue: try r.u8())
            let transcript = try r.bool()
            self = .evaluate(code: try r.slice(try r.u64()), format: format, transcript: transcript)
        case .call:
            let format = BridgeValueFormat(rawValue: try r.u8())
            let function = try r.string()
            // An argument is at least a label flag, a format and a u64 length.
            let n = try r.count(minimumItemBytes: 10)
            var arguments: [BridgeArgument] = []
            arguments.reserveCapacity(n)
            for _ in 0..<n {
                let label = try r.optionalString()
                arguments.append(BridgeArgument(label: label, value: try r.value()))
            }
            self = .call(function: function, arguments: arguments, format: format)
        case .assign:
            self = .assign(name: try r.string(), value: try r.value())
        case .fetch:
            self = .fetch(name: try r.string(), format: BridgeValueFormat(rawValue: try r.u8()))
        case .listObjects:
            self = .listObjects
        case .cancel:
            self = .cancel
        default:
            throw BridgeError(.unexpectedFrame, "a \(type) frame is not a request")
        }
        try r.finish()
    }
}
