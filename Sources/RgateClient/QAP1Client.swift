public import NIOCore
import NIOPosix
public import RgateModel
public import RgateQAP1

/// A client for Rserve's QAP1 protocol (rgate or Rserve itself), on async/await.
///
/// ```swift
/// try await QAP1Client.withConnection(host: "127.0.0.1", port: 6311) { r in
///     try await r.assign("x", .double([1, 2, 3]))
///     let mean = try await r.eval("mean(x)")                  // RValue .double([2.0])
///     let fit = try await r.call("sum", [.integer([1, 2]), .integer([3])])
/// }
/// ```
/// Requests on one connection are strictly sequential (as QAP1 is); use several connections
/// for parallel work.
public final class QAP1Client: Sendable {
    /// A failed request: the server's status and, for R errors, R's message.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The QAP1 status.
        public var status: QAP1Status
        /// R's error text (`geterrmessage()`) for R errors and parse errors, else a description.
        public var message: String
        public var description: String { "QAP1 error \(status): \(message)" }
    }

    /// Answers `self.oobMessage(x, code)` calls from R code; `self.oobSend` calls get `nil` back
    /// ignored. Runs on the connection's task.
    public typealias OutOfBandHandler = @Sendable (_ code: Int, _ value: RValue, _ expectsReply: Bool) async -> RValue?

    private let inbound: NIOAsyncChannelInboundStream<QAP1ClientFrame>.AsyncIterator.Box
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let outOfBand: OutOfBandHandler?
    private let host: String
    /// The server's 32-byte identification (e.g. `Rsrv0103QAP1...`; empty for an attached session).
    public let identification: [UInt8]

    private init(inbound: NIOAsyncChannelInboundStream<QAP1ClientFrame>.AsyncIterator.Box, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, identification: [UInt8], host: String, outOfBand: OutOfBandHandler?) {
        self.host = host
        self.inbound = inbound
        self.outbound = outbound
        self.identification = identification
        self.outOfBand = outOfBand
    }

    /// True when the server announced that a login is required.
    public var requiresLogin: Bool {
        guard identification.count == 32 else { return false }
        return stride(from: 16, to: 32, by: 4).contains { i in
            let attr = Array(identification[i..<i + 4])
            return attr == Array("ARpt".utf8) || attr == Array("ARuc".utf8)
        }
    }

    /// Connects, logs in when `user` is given, runs `body`, then closes.
    public static func withConnection<T: Sendable>(
        host: String, port: Int, user: String? = nil, password: String? = nil,
        maximumMessageBytes: UInt64 = 1 << 34, outOfBand: OutOfBandHandler? = nil,
        _ body: @Sendable (QAP1Client) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(QAP1ClientDecoder(maximumPayloadBytes: maximumMessageBytes)))
                    return try NIOAsyncChannel<QAP1ClientFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let iterator = NIOAsyncChannelInboundStream<QAP1ClientFrame>.AsyncIterator.Box(inbound.makeAsyncIterator())
            guard case .identification(let id)? = try await iterator.next() else {
                throw Failure(status: .connectionBroken, message: "the server closed the connection before identifying itself")
            }
            guard id.starts(with: Array("Rsrv01".utf8)), Array(id[8..<12]) == Array("QAP1".utf8) else {
                throw Failure(status: .connectionBroken, message: "not a QAP1 server: \(String(decoding: id.prefix(12), as: UTF8.self))")
            }
            let client = QAP1Client(inbound: iterator, outbound: outbound, identification: id, host: host, outOfBand: outOfBand)
            if let user {
                try await client.login(user: user, password: password ?? "")
            }
            return try await body(client)
        }
    }

    /// A session left running on the server by ``detach()``: where and how to resume it.
    public struct DetachedSession: Sendable, Hashable {
        /// The host to connect to (the one this client used).
        public var host: String
        /// The port the server opened for this session.
        public var port: Int
        /// The 32-byte key that resumes it.
        public var key: [UInt8]
    }

    /// Detaches the session: the server keeps its R (and everything in it) and closes this
    /// connection; resume it with ``withAttachedSession(_:outOfBand:_:)``. The connection must
    /// not be used afterwards.
    public func detach() async throws -> DetachedSession {
        try detachedSession(from: try await request(.detachSession, []))
    }

    /// Detaches the session and evaluates `code` while detached; the attaching client gets the
    /// outcome (an error status when the code failed).
    public func detachedVoidEval(_ code: String) async throws -> DetachedSession {
        try detachedSession(from: try await request(.detachedVoidEval, [.string(code)]))
    }

    private func detachedSession(from payload: ByteBuffer) throws -> DetachedSession {
        let parameters = try QAP1Parameter.parse(payload)
        guard parameters.count >= 2, case .int(let port) = parameters[0], case .bytes(let key) = parameters[1],
              key.readableBytes == 32 else {
            throw Failure(status: .invalidParameter, message: "the server's detach answer is not a port and a 32-byte key")
        }
        return DetachedSession(host: host, port: Int(port), key: Array(key.readableBytesView))
    }

    /// Resumes a detached session: connects to its port, presents the key, runs `body`, closes.
    public static func withAttachedSession<T: Sendable>(
        _ session: DetachedSession, maximumMessageBytes: UInt64 = 1 << 34, outOfBand: OutOfBandHandler? = nil,
        _ body: @Sendable (QAP1Client) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: session.host, port: session.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(QAP1ClientDecoder(maximumPayloadBytes: maximumMessageBytes, identified: true)))
                    return try NIOAsyncChannel<QAP1ClientFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: session.key))
            let iterator = NIOAsyncChannelInboundStream<QAP1ClientFrame>.AsyncIterator.Box(inbound.makeAsyncIterator())
            guard case .frame(.message(let resumed))? = try await iterator.next() else {
                throw Failure(status: .connectionBroken, message: "the server did not resume the session")
            }
            let client = QAP1Client(inbound: iterator, outbound: outbound, identification: [], host: session.host, outOfBand: outOfBand)
            guard resumed.header.command.isOK else {
                // detachedVoidEval's code failed while detached.
                let message = (try? await client.eval("geterrmessage()").strings?.first ?? nil) ?? "the detached evaluation failed"
                throw Failure(status: resumed.header.command.status, message: message.hasSuffix("\n") ? String(message.dropLast()) : message)
            }
            return try await body(client)
        }
    }

    /// Logs in with a plain-text password (use TLS on untrusted networks).
    public func login(user: String, password: String) async throws {
        _ = try await request(.login, [.string(user + "\n" + password)], fetchError: false)
    }

    /// Evaluates code and returns the last value.
    public func eval(_ code: String) async throws -> RValue {
        let payload = try await request(.eval, [.string(code)])
        return try Self.value(from: payload)
    }

    /// Evaluates code and discards the value.
    public func voidEval(_ code: String) async throws {
        _ = try await request(.voidEval, [.string(code)])
    }

    /// Evaluates an R object (e.g. a call built as `.language`) without parsing.
    public func eval(_ expression: RValue) async throws -> RValue {
        let payload = try await request(.eval, [.sexp(expression)])
        return try Self.value(from: payload)
    }

    /// Calls an R function with Swift values as arguments (named where `names` gives a name), as
    /// one evaluated call object; for roles that run any code (see ``callAllowed(_:_:names:)``
    /// for allow-listed callers).
    public func call(_ function: String, _ arguments: [RValue], names: [String]? = nil) async throws -> RValue {
        var attributes: [RAttribute] = []
        if let names {
            attributes.append(RAttribute(name: "names", value: .character([""] + names)))
        }
        return try await eval(RValue(.language([RValue(.symbol(function))] + arguments.map(Self.quoted)), attributes: attributes))
    }

    /// Calls an allow-listed function the way a restricted (`caller`) role may, and any role can:
    /// each argument is first assigned to a session variable (`rgate_arg_1_`, ...; data only),
    /// then `function(rgate_arg_1_, name = rgate_arg_2_, ...)` is evaluated. `function` is a
    /// name or `pkg::name` as the server's role lists it.
    /// - Parameter names: argument names, `""` for positional ones (same count as `arguments`).
    public func callAllowed(_ function: String, _ arguments: [RValue], names: [String]? = nil) async throws -> RValue {
        var parts: [String] = []
        for (index, argument) in arguments.enumerated() {
            let variable = "rgate_arg_\(index + 1)_"
            try await assign(variable, argument)
            if let name = names?[index], !name.isEmpty { parts.append("\(name) = \(variable)") } else { parts.append(variable) }
        }
        return try await eval("\(function)(\(parts.joined(separator: ", ")))")
    }

    /// Binds a value to a name in the session's global environment.
    public func assign(_ name: String, _ value: RValue) async throws {
        _ = try await request(.setSEXP, [.string(name), .sexp(value)])
    }

    // Symbols and calls passed as arguments must not be evaluated: quote them.
    private static func quoted(_ value: RValue) -> RValue {
        switch value.payload {
        case .symbol, .language: RValue(.language([RValue(.symbol("quote")), value]))
        default: value
        }
    }

    private static func value(from payload: ByteBuffer) throws -> RValue {
        let parameters = try QAP1Parameter.parse(payload)
        guard case .sexp(let body)? = parameters.first else { return .null }
        return try QAP1SEXP.decode(body)
    }

    private func request(_ command: QAP1Command, _ parameters: [QAP1Parameter], fetchError: Bool = true) async throws -> ByteBuffer {
        var payload = ByteBuffer()
        for p in parameters { p.encode(into: &payload) }
        var out = ByteBuffer()
        QAP1Message(command: command, payload: payload).encode(into: &out)
        try await outbound.write(out)
        while true {
            guard case .frame(let frame)? = try await inbound.next() else {
                throw Failure(status: .connectionBroken, message: "the server closed the connection")
            }
            guard case .message(let message) = frame else {
                throw Failure(status: .dataOverflow, message: "the server's response exceeds the client's maximum")
            }
            let code = message.header.command
            if code.isOOB {
                try await answerOutOfBand(message)
                continue
            }
            if code.isOK { return message.payload }
            let status = code.status
            var text = "the server refused the request (status \(status))"
            if fetchError, [.rError, .parseError, .parseIncomplete].contains(status),
               let detail = try? await eval("geterrmessage()").strings?.first ?? nil {
                text = detail.hasSuffix("\n") ? String(detail.dropLast()) : detail
            }
            throw Failure(status: status, message: text)
        }
    }

    private func answerOutOfBand(_ message: QAP1Message) async throws {
        let raw = message.header.command.rawValue
        let expectsReply = raw & 0xff000 == QAP1Command.oobMessage.rawValue & 0xff000
        let value = (try? Self.value(from: message.payload)) ?? .null
        let reply = await outOfBand?(Int(raw & 0xfff), value, expectsReply)
        guard expectsReply else { return }
        var payload = ByteBuffer()
        try QAP1Parameter.sexp(reply ?? .null).encode(into: &payload)
        var out = ByteBuffer()
        QAP1Message(command: QAP1Command(rawValue: raw | QAP1Command.response.rawValue | 1), payload: payload).encode(into: &out)
        try await outbound.write(out)
    }
}

/// What a QAP1 client reads: first the identification, then messages.
enum QAP1ClientFrame: Sendable {
    case identification([UInt8])
    case frame(QAP1Frame)
}

struct QAP1ClientDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = QAP1ClientFrame
    private var identified: Bool
    private var messages: QAP1MessageDecoder

    init(maximumPayloadBytes: UInt64, identified: Bool = false) {
        messages = QAP1MessageDecoder(maximumPayloadBytes: maximumPayloadBytes)
        self.identified = identified
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> QAP1ClientFrame? {
        if !identified {
            guard let id = buffer.readBytes(length: 32) else { return nil }
            identified = true
            return .identification(id)
        }
        return try messages.decode(buffer: &buffer).map { .frame($0) }
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> QAP1ClientFrame? {
        try decode(buffer: &buffer)
    }
}
