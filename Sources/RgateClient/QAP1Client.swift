import NIOCore
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
///
/// ## Concurrency
/// A client is `Sendable` and may be used by many tasks at once. Its requests take turns on the
/// connection in the order they are made (QAP1 has no request ids, so each request's write and
/// reply run alone): concurrent requests are safe but not parallel, and they share one R
/// session, so they see each other's variables. For parallel evaluation use several
/// connections.
///
/// Cancellation: a task cancelled while waiting for its turn leaves the queue and throws
/// `CancellationError` without sending anything. A task cancelled after sending throws
/// `CancellationError` at once; its reply is read and dropped before the next request is sent,
/// so no other request ever gets it (the next request waits for it, since the server evaluates
/// one request at a time). When the server closes the connection, the request in progress and
/// every later one fail with a ``Failure`` of status `connectionBroken`.
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
    /// ignored. Runs on the task whose request the R code is evaluating (or, for a request whose
    /// task was cancelled, on the task of the next request), while that request holds the
    /// connection: it must not make requests on the same client (they would wait forever).
    public typealias OutOfBandHandler = @Sendable (_ code: Int, _ value: RValue, _ expectsReply: Bool) async -> RValue?

    private typealias Exchange = ClientExchange<QAP1ClientFrame>

    private let connection: ClientConnection<QAP1ClientFrame>
    private let host: String
    /// The server's 32-byte identification (e.g. `Rsrv0103QAP1...`; empty for an attached session).
    public let identification: [UInt8]

    private init(connection: ClientConnection<QAP1ClientFrame>, identification: [UInt8], host: String) {
        self.host = host
        self.connection = connection
        self.identification = identification
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
    ///
    /// The client may be shared by tasks that `body` starts (see ``QAP1Client``, Concurrency);
    /// it must not be used after `body` returns: its requests then fail with `connectionBroken`.
    public static func withConnection<T: Sendable>(
        host: String, port: Int, user: String? = nil, password: String? = nil,
        maximumMessageBytes: UInt64 = 1 << 34, outOfBand: OutOfBandHandler? = nil,
        _ body: @Sendable (QAP1Client) async throws -> T
    ) async throws -> T {
        try await ClientConnection.withConnection(
            host: host, port: port, decoder: { QAP1ClientDecoder(maximumPayloadBytes: maximumMessageBytes) },
            classify: { await disposition(of: $0, outOfBand: outOfBand) }
        ) { connection in
            let first = try await closedAsFailure("the server closed the connection before identifying itself") {
                try await connection.withExchange { try await $0.next() }
            }
            guard case .identification(let id) = first else {
                throw Failure(status: .connectionBroken, message: "the server sent no identification")
            }
            guard id.starts(with: Array("Rsrv01".utf8)), Array(id[8..<12]) == Array("QAP1".utf8) else {
                throw Failure(status: .connectionBroken, message: "not a QAP1 server: \(String(decoding: id.prefix(12), as: UTF8.self))")
            }
            let client = QAP1Client(connection: connection, identification: id, host: host)
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
    /// not be used afterwards (requests then fail with `connectionBroken`).
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
        try await ClientConnection.withConnection(
            host: session.host, port: session.port,
            decoder: { QAP1ClientDecoder(maximumPayloadBytes: maximumMessageBytes, identified: true) },
            classify: { await disposition(of: $0, outOfBand: outOfBand) }
        ) { connection in
            let answer = try await closedAsFailure("the server did not resume the session") {
                try await connection.request(ByteBuffer(bytes: session.key))
            }
            guard case .frame(.message(let resumed)) = answer else {
                throw Failure(status: .connectionBroken, message: "the server did not resume the session")
            }
            let client = QAP1Client(connection: connection, identification: [], host: session.host)
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
    ///
    /// The assignments and the call run as one turn on the connection, so concurrent
    /// `callAllowed`s on one client do not overwrite each other's arguments.
    public func callAllowed(_ function: String, _ arguments: [RValue], names: [String]? = nil) async throws -> RValue {
        try await connection.withExchange { exchange in
            var parts: [String] = []
            for (index, argument) in arguments.enumerated() {
                let variable = "rgate_arg_\(index + 1)_"
                _ = try await Self.roundTrip(.setSEXP, [.string(variable), .sexp(argument)], on: &exchange)
                if let name = names?[index], !name.isEmpty { parts.append("\(name) = \(variable)") } else { parts.append(variable) }
            }
            let code = "\(function)(\(parts.joined(separator: ", ")))"
            return try Self.value(from: try await Self.roundTrip(.eval, [.string(code)], on: &exchange))
        }
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

    /// One request in its own turn on the connection.
    private func request(_ command: QAP1Command, _ parameters: [QAP1Parameter], fetchError: Bool = true) async throws -> ByteBuffer {
        try await connection.withExchange { try await Self.roundTrip(command, parameters, fetchError: fetchError, on: &$0) }
    }

    /// Sends a request and reads its answer, within a turn the caller holds; for R errors, asks
    /// for R's message (`geterrmessage()`) in the same turn, before any other request can
    /// replace it.
    private static func roundTrip(
        _ command: QAP1Command, _ parameters: [QAP1Parameter], fetchError: Bool = true, on exchange: inout Exchange
    ) async throws -> ByteBuffer {
        var payload = ByteBuffer()
        for p in parameters { p.encode(into: &payload) }
        var out = ByteBuffer()
        QAP1Message(command: command, payload: payload).encode(into: &out)
        let answer = try await closedAsFailure("the server closed the connection") { try await exchange.request(out) }
        guard case .frame(let frame) = answer else {
            throw Failure(status: .connectionBroken, message: "the server sent a second identification")
        }
        guard case .message(let message) = frame else {
            throw Failure(status: .dataOverflow, message: "the server's response exceeds the client's maximum")
        }
        let code = message.header.command
        if code.isOK { return message.payload }
        let status = code.status
        var text = "the server refused the request (status \(status))"
        if fetchError, [.rError, .parseError, .parseIncomplete].contains(status),
           let answer = try? await roundTrip(.eval, [.string("geterrmessage()")], fetchError: false, on: &exchange),
           let detail = (try? value(from: answer))?.strings?.first ?? nil {
            text = detail.hasSuffix("\n") ? String(detail.dropLast()) : detail
        }
        throw Failure(status: status, message: text)
    }

    /// Runs `operation`, reporting a closed connection as a ``Failure`` (`connectionBroken`).
    private static func closedAsFailure<R>(_ message: String, _ operation: () async throws -> R) async throws -> R {
        do {
            return try await operation()
        } catch is ConnectionClosedError {
            throw Failure(status: .connectionBroken, message: message)
        }
    }

    /// Out-of-band messages come before a request's reply; they are answered through `handler`.
    private static func disposition(of frame: QAP1ClientFrame, outOfBand handler: OutOfBandHandler?) async -> Exchange.Disposition {
        switch frame {
        case .frame(.message(let message)) where message.header.command.isOOB:
            return .interim(answer: await outOfBandAnswer(message, handler))
        case .frame(.oversized(let header)) where header.command.isOOB:
            // Too large to read: answered with NULL, so that the server goes on.
            return .interim(answer: outOfBandReply(to: header.command, .null))
        default:
            return .reply
        }
    }

    private static func outOfBandAnswer(_ message: QAP1Message, _ handler: OutOfBandHandler?) async -> ByteBuffer? {
        let raw = message.header.command.rawValue
        let value = (try? Self.value(from: message.payload)) ?? .null
        let reply = await handler?(Int(raw & 0xfff), value, expectsReply(message.header.command))
        return outOfBandReply(to: message.header.command, reply ?? .null)
    }

    private static func expectsReply(_ command: QAP1Command) -> Bool {
        command.rawValue & 0xff000 == QAP1Command.oobMessage.rawValue & 0xff000
    }

    /// The answer to an `oobMessage` (nil for `oobSend`, which expects none); a value that
    /// cannot be encoded is answered as NULL, so that the server is never left waiting.
    private static func outOfBandReply(to command: QAP1Command, _ value: RValue) -> ByteBuffer? {
        guard expectsReply(command) else { return nil }
        var payload = ByteBuffer()
        if let parameter = try? QAP1Parameter.sexp(value) {
            parameter.encode(into: &payload)
        } else {
            try! QAP1Parameter.sexp(.null).encode(into: &payload)
        }
        var out = ByteBuffer()
        QAP1Message(command: QAP1Command(rawValue: command.rawValue | QAP1Command.response.rawValue | 1), payload: payload).encode(into: &out)
        return out
    }
}
