import NIOCore
import RgateBridge
import RgateEngine
import RgateIPC
import RgateJSON
import RgateModel
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

/// Serves the data plane (RgateBridge) on a socket pair whose other end the supervisor holds:
/// the supervisor itself drives the session (for HTTP and jobs). Requests are evaluated under
/// the same role, sandbox and limits as a QAP1 session's; values are encoded here, straight
/// from R's memory, in the format asked for.
///
/// While a request runs, anything the supervisor sends (it sends nothing but a cancel then)
/// interrupts R, and the request's reply says `cancelled`; a cancel that arrives while the
/// session is idle is ignored.
struct BridgeSession {
    var runtime: SessionRuntime
    let client: ClientConnection
    private var decoder: BridgeFrameDecoder
    private var buffer = ByteBuffer.fresh(capacity: 64 << 10)
    var engine: REngine { runtime.engine }

    init(engine: REngine, client: ClientConnection, assignment: SessionAssignment, control: ControlSocket, access: SessionAccess?) {
        runtime = SessionRuntime(engine: engine, assignment: assignment, control: control, access: access)
        self.client = client
        decoder = BridgeFrameDecoder(side: .session, maximumPayloadBytes: assignment.maxRequestBytes)
    }

    /// Request id 0: the session's first frame, a reply that says it is confined and ready (or
    /// why it cannot serve, before it ends).
    static let helloID: UInt32 = 0

    /// Tells the supervisor this process cannot serve the session.
    static func refuse(_ client: ClientConnection, _ message: String) {
        var out = ByteBuffer.fresh()
        BridgeFrame.reply(BridgeReply(failure: BridgeFailure(code: .forbidden, message: message)), id: helloID).encode(into: &out)
        client.writeAll(out)
    }

    mutating func serve() -> SessionEndReason {
        guard write(BridgeReply(), id: Self.helloID) else { return .ioError }
        defer {
            runtime.sendTally()
            engine.cancelWhenPeerCloses(nil)
            engine.onQuit = nil
        }
        while true {
            do {
                while let frame = try decoder.decodeFrame(buffer: &buffer) {
                    guard case .request(let request) = frame.body else { return .protocolError }
                    if case .cancel = request { continue } // nothing is running
                    var reply = handle(request, id: frame.requestID)
                    if reply.failure?.code == .cancelled { skipCancel(id: frame.requestID) }
                    reply.durationMicroseconds = max(reply.durationMicroseconds, 1)
                    guard write(reply, id: frame.requestID) else { return .ioError }
                }
            } catch {
                WorkerLog.info("session \(runtime.assignment.sessionID): data plane: \(error)")
                return .protocolError
            }
            buffer.discardReadBytes()
            switch client.read(into: &buffer) {
            case .data: continue
            case .timedOut: return .idleTimeout
            case .failed: return .ioError
            case .eof: return buffer.readableBytes > 0 ? .protocolError : .clientClosed
            }
        }
    }

    /// After a cancelled request, the cancel frame that stopped it (if it is the next frame) is
    /// consumed, so that it does not stop the next request.
    private mutating func skipCancel(id: UInt32) {
        var probe = decoder
        var copy = buffer
        if let frame = try? probe.decodeFrame(buffer: &copy), case .request(.cancel) = frame.body {
            buffer = copy
        }
    }

    private func write(_ reply: BridgeReply, id: UInt32) -> Bool {
        var out = ByteBuffer.fresh(capacity: 256 + (reply.value?.bytes.readableBytes ?? 0))
        BridgeFrame.reply(reply, id: id).encode(into: &out)
        return client.writeAll(out)
    }

    // MARK: Requests

    private mutating func handle(_ request: BridgeRequest, id: UInt32) -> BridgeReply {
        let start = ContinuousClock.now
        // Re-armed per request: a cancel seen by the last request must not stop this one.
        engine.cancelWhenPeerSends(client.descriptor)
        defer { engine.cancelWhenPeerCloses(nil) }
        var reply: BridgeReply
        switch request {
        case .evaluate(let code, let format, let transcript):
            reply = evaluate(code, format: format, transcript: transcript, id: id, start: start)
        case .call(let function, let arguments, let format):
            reply = call(function, arguments, format: format, start: start)
        case .assign(let name, let value):
            reply = assign(name, value)
            runtime.report(command: "assign", outcome: reply.failure?.code.rawValue ?? "ok", since: start)
        case .fetch(let name, let format):
            reply = fetch(name, format: format)
            runtime.report(command: "fetch", outcome: reply.failure?.code.rawValue ?? "ok", since: start)
        case .listObjects:
            reply = listObjects()
        case .cancel:
            reply = BridgeReply()
        }
        reply.durationMicroseconds = (ContinuousClock.now - start).wholeMicroseconds
        runtime.count(Self.tallyOutcome(of: reply), since: start)
        return reply
    }

    /// How the request tally counts a reply.
    static func tallyOutcome(of reply: BridgeReply) -> RequestTally.Outcome {
        switch reply.failure?.code {
        case nil: .ok
        case .timeout?: .timeout
        case .forbidden?: .refused
        case .cancelled?: .cancelled
        default: .error
        }
    }

    private func evaluate(_ code: ByteBuffer, format: BridgeValueFormat, transcript: Bool, id: UInt32, start: ContinuousClock.Instant) -> BridgeReply {
        let options = runtime.options(printVisible: transcript)
        installQuitHandler(id: id)
        defer { engine.onQuit = nil }
        let (evaluation, object) = code.withUnsafeReadableBytes { runtime.evaluate(code: $0, options: options) }
        code.withUnsafeReadableBytes { runtime.report(command: "eval", code: $0, evaluation: evaluation, since: start) }
        var reply = Self.reply(for: evaluation)
        if reply.succeeded {
            encode(object, format: format, into: &reply)
        }
        return reply
    }

    /// `q()` in a request: the reply says so (with the transcript so far), then the session ends.
    private func installQuitHandler(id: UInt32) {
        let client = self.client
        let control = runtime.control
        engine.onQuit = { [engine] _ in
            var reply = BridgeReply()
            reply.console = engine.pendingOutput().map { BridgeConsoleChunk(isStderr: $0.stream == .stderr, text: $0.text) }
            reply.failure = BridgeFailure(code: .quit, message: "the R session ended because the code called q()")
            var out = ByteBuffer.fresh()
            BridgeFrame.reply(reply, id: id).encode(into: &out)
            client.writeAll(out)
            shutdown(client.descriptor, Int32(SHUT_RDWR))
            try? control.send(.ended(reason: .quit))
        }
    }

    private func call(_ function: String, _ arguments: [BridgeArgument], format: BridgeValueFormat, start: ContinuousClock.Instant) -> BridgeReply {
        var values: [(label: String?, value: RValue)] = []
        for (index, argument) in arguments.enumerated() {
            switch decode(argument.value) {
            case .success(let value): values.append((argument.label, value))
            case .failure(let failure):
                return Self.failed(.badRequest, "argument \(index + 1) of \(function): \(failure.message)")
            }
        }
        let options = runtime.options(printVisible: false)
        let (evaluation, object): (Evaluation, RObject?)
        if let access = runtime.access, access.isCaller {
            (evaluation, object) = runtime.withHardLimit { access.call(engine, function: function, arguments: values, options: options) }
        } else {
            guard Self.isFunctionName(function) else {
                return Self.failed(.badRequest, "'\(function)' is not a function name (a name, or package::name)")
            }
            (evaluation, object) = runtime.withHardLimit { callAny(function, values, options: options) }
        }
        runtime.report(command: "call \(function)", evaluation: evaluation, since: start)
        var reply = Self.reply(for: evaluation)
        if reply.succeeded { encode(object, format: format, into: &reply) }
        return reply
    }

    /// `f(.rgate_arg1, label = .rgate_arg2, ...)` in a fresh environment holding the arguments,
    /// for roles that may run any code.
    private func callAny(_ function: String, _ arguments: [(label: String?, value: RValue)], options: EvaluationOptions) -> (Evaluation, RObject?) {
        var bindings: [(name: String, value: RObject)] = []
        var parts: [String] = []
        for (index, argument) in arguments.enumerated() {
            let name = ".rgate_arg\(index + 1)"
            do { bindings.append((name, try engine.makeObject(argument.value))) } catch {
                return (SessionAccess.refusal("rgate: \(error.message)"), nil)
            }
            if let label = argument.label, !label.isEmpty {
                parts.append("`\(label.replacingOccurrences(of: "`", with: "\\`"))` = \(name)")
            } else {
                parts.append(name)
            }
        }
        let scope: RObject
        do { scope = try engine.makeEnvironment(bindings: bindings) } catch {
            return (SessionAccess.refusal("rgate: \(error.message)"), nil)
        }
        let source = Array((function + "(" + parts.joined(separator: ", ") + ")").utf8)
        return source.withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: options, in: scope) }
    }

    private func assign(_ name: String, _ value: BridgeValue) -> BridgeReply {
        guard !name.isEmpty, name.utf8.count <= 10_000 else { return Self.failed(.badRequest, "the name to assign to is empty or too long") }
        let object: RObject
        switch value.format {
        case .qap1, .rjson:
            let decoded: RValue
            switch decode(value) {
            case .success(let v): decoded = v
            case .failure(let failure): return BridgeReply(failure: failure)
            }
            if let refusal = runtime.access?.assignRefusal(name: name, value: decoded) { return Self.failed(.forbidden, refusal) }
            do { object = try engine.makeObject(decoded) } catch { return Self.failed(.memory, error.message) }
        case .rds:
            switch unserialize(value.bytes) {
            case .success(let o): object = o
            case .failure(let failure): return BridgeReply(failure: failure)
            }
            if runtime.access?.isCaller == true {
                // Callers assign data only: check the decoded value as for QAP1 (inert attributes and classes).
                guard let decoded = try? engine.value(of: object) else { return Self.failed(.forbidden, "rgate: callers may only assign data") }
                if let refusal = runtime.access?.assignRefusal(name: name, value: decoded) { return Self.failed(.forbidden, refusal) }
            }
        default:
            return Self.failed(.unsupportedFormat, "values to assign are taken as qap1, rjson or rds, not \(value.format)")
        }
        do { try engine.assign(name, object: object) } catch { return Self.failed(.rError, error.message) }
        return BridgeReply()
    }

    private func fetch(_ name: String, format: BridgeValueFormat) -> BridgeReply {
        guard let object = engine.globalVariable(name) else {
            return Self.failed(.notFound, "object '\(name)' not found")
        }
        if runtime.access?.isCaller == true, !engine.isPlainData(object) {
            return Self.failed(.forbidden, "rgate: variable '\(name)' is not plain data, so a caller cannot read it")
        }
        var reply = BridgeReply()
        reply.visible = true
        encode(object, format: format, into: &reply)
        return reply
    }

    private func listObjects() -> BridgeReply {
        let code = """
            local({ e <- globalenv(); lapply(ls(e, sorted = TRUE), function(k) { x <- get(k, envir = e, inherits = FALSE)
              list(k, as.character(class(x)), typeof(x), as.numeric(length(x)), as.numeric(utils::object.size(x))) }) })
            """
        let evaluation = runtime.withHardLimit {
            engine.evaluate(code, options: EvaluationOptions(printVisible: false, convertValue: true, timeout: runtime.timeout))
        }
        guard evaluation.succeeded, case .list(let entries)? = evaluation.value?.payload else { return Self.reply(for: evaluation) }
        var reply = BridgeReply()
        for entry in entries {
            guard case .list(let f) = entry.payload, f.count == 5,
                  case .character(let name) = f[0].payload, let n = name.first ?? nil,
                  case .character(let classes) = f[1].payload, case .character(let type) = f[2].payload,
                  case .double(let length) = f[3].payload, case .double(let size) = f[4].payload else { continue }
            reply.objects.append(BridgeObjectInfo(
                name: n, classes: classes.compactMap { $0 }, type: type.first.flatMap { $0 } ?? "",
                length: UInt64(max(0, length.first.flatMap { $0 } ?? 0)), bytes: UInt64(max(0, size.first.flatMap { $0 } ?? 0))))
        }
        return reply
    }

    // MARK: Values

    /// Decodes a value sent with a request.
    private func decode(_ value: BridgeValue) -> Result<RValue, BridgeFailure> {
        switch value.format {
        case .qap1:
            do { return .success(try QAP1SEXP.decode(value.bytes)) } catch {
                return .failure(BridgeFailure(code: .badRequest, message: "the value does not decode: \(error)"))
            }
        case .rjson:
            do { return .success(try RJSON.decode(value.bytes.readableBytesView)) } catch {
                return .failure(BridgeFailure(code: .badRequest, message: "the rjson value does not decode: \(error)"))
            }
        case .rds:
            switch unserialize(value.bytes) {
            case .success(let object):
                do { return .success(try engine.value(of: object)) } catch {
                    return .failure(BridgeFailure(code: .badRequest, message: "\(error)"))
                }
            case .failure(let failure): return .failure(failure)
            }
        default:
            return .failure(BridgeFailure(code: .unsupportedFormat, message: "values are taken as qap1, rjson or rds, not \(value.format)"))
        }
    }

    private func unserialize(_ bytes: ByteBuffer) -> Result<RObject, BridgeFailure> {
        let raw: RObject
        do { raw = try engine.makeObject(.raw(Array(bytes.readableBytesView))) } catch {
            return .failure(BridgeFailure(code: .memory, message: error.message))
        }
        switch engine.callBase("unserialize", [raw]) {
        case .success(let object): return .success(object)
        case .failure(let error): return .failure(BridgeFailure(code: .badRequest, message: "the RDS bytes do not unserialize: \(error.message)"))
        }
    }

    /// Encodes `object` (nil: code with no expression, whose value is NULL) into the reply.
    private func encode(_ object: RObject?, format: BridgeValueFormat, into reply: inout BridgeReply) {
        guard format != .none else { return }
        let value: RObject
        if let object { value = object } else {
            guard let null = try? engine.makeObject(.null) else { return }
            value = null
        }
        switch format {
        case .qap1:
            var out = ByteBuffer.fresh(capacity: 64)
            do { try QAP1SEXP.encode(source: value.view, into: &out) } catch {
                reply.failure = BridgeFailure(code: .unsupportedFormat, message: "the value cannot be encoded as qap1: \(error)")
                return
            }
            withExtendedLifetime(value) { reply.value = BridgeValue(format: .qap1, bytes: out) }
        case .rds:
            guard let null = try? engine.makeObject(.null) else { return }
            switch engine.callBase("serialize", [value, null]) {
            case .success(let bytes):
                reply.value = BridgeValue(format: .rds, bytes: bytes.withRawBytes { ByteBuffer(bytes: $0) } ?? ByteBuffer.fresh(capacity: 1))
            case .failure(let error):
                reply.failure = BridgeFailure(code: .unsupportedFormat, message: "the value cannot be serialized: \(error.message)")
            }
        case .print:
            let scope: RObject
            do { scope = try engine.makeEnvironment(bindings: [(".rgate_value", value)]) } catch {
                reply.failure = BridgeFailure(code: .memory, message: error.message)
                return
            }
            let code = Array("if (isS4(.rgate_value)) methods::show(.rgate_value) else print(.rgate_value)".utf8)
            let options = runtime.options(printVisible: false)
            let printed = runtime.withHardLimit { code.withUnsafeBytes { engine.evaluate(utf8: $0, options: options, in: scope) } }
            if let failure = Self.reply(for: printed).failure {
                reply.failure = failure
                return
            }
            reply.value = BridgeValue(format: .print, bytes: ByteBuffer(string: printed.transcript))
        case .rjson:
            // Lossless typed JSON (jsonlite::serializeJSON's layout, exact doubles), from the
            // session's view of the value.
            do {
                let converted = try engine.value(of: value)
                reply.value = BridgeValue(format: .rjson, bytes: ByteBuffer(bytes: try RJSON.encode(converted)))
            } catch {
                reply.failure = BridgeFailure(code: .unsupportedFormat, message: "the value cannot be encoded as rjson: \(error)")
            }
        default:
            reply.failure = BridgeFailure(
                code: .unsupportedFormat, message: "values are encoded as qap1, rds, print or rjson in this session; \(format) is not available")
        }
    }

    // MARK: Replies

    /// The reply for an evaluation: transcript, conditions, and the error mapped once.
    static func reply(for evaluation: Evaluation) -> BridgeReply {
        var reply = BridgeReply()
        reply.visible = evaluation.visible
        reply.console = evaluation.output.map { BridgeConsoleChunk(isStderr: $0.stream == .stderr, text: $0.text) }
        reply.consoleTruncated = evaluation.outputTruncated
        reply.warnings = evaluation.warnings.map { BridgeCondition(message: $0.message, call: $0.call) }
        reply.messages = evaluation.messages
        if let error = evaluation.error { reply.failure = failure(for: error) }
        return reply
    }

    static func failure(for error: EvaluationError) -> BridgeFailure {
        let code: BridgeFailure.Code = switch error.code {
        case .parseIncomplete: .parseIncomplete
        case .parseInvalid: .parseError
        case .timeout: .timeout
        case .cancelled: .cancelled
        case .rejected: .forbidden
        default: isMemoryError(error.message) ? .memory : .rError
        }
        let message = code == .cancelled ? "the request was cancelled" : error.message
        return BridgeFailure(code: code, message: message, call: error.call, classes: error.classes)
    }

    /// R's messages for an allocation that failed (within the session's memory limit).
    static func isMemoryError(_ message: String) -> Bool {
        message.hasPrefix("cannot allocate") || message.hasPrefix("vector memory exhausted") || message.contains("memory limit")
    }

    static func failed(_ code: BridgeFailure.Code, _ message: String) -> BridgeReply {
        BridgeReply(failure: BridgeFailure(code: code, message: message))
    }

    /// `name` or `package::name` / `package:::name`, each part a syntactic R name.
    static func isFunctionName(_ text: String) -> Bool {
        let parts = text.components(separatedBy: "::").map { $0.hasPrefix(":") ? String($0.dropFirst()) : $0 }
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy(SessionRuntime.isSyntacticName)
    }
}


extension BridgeSession {
    /// Holds a short data-plane conversation with this process's own R over a socket pair (an
    /// evaluation in each value format, an error, an assignment, a fetch, a list), so that what
    /// every bridged session runs first (type metadata, the codec, R's compiled code for these
    /// paths) is paid once in the zygote, as for the other protocols. Uses the built-in `analyst` role.
    static func warmUp(engine: REngine, settings: WorkerSettings) {
        guard settings.policy.roles["analyst"] != nil else { return }
        var requests = ByteBuffer()
        let exchange: [BridgeRequest] = [
            .evaluate(code: ByteBuffer(string: "x <- c(a = 1.5, b = NA); x"), format: .qap1, transcript: true),
            .evaluate(code: ByteBuffer(string: "list(n = 1L, s = 'a')"), format: .rds, transcript: false),
            .evaluate(code: ByteBuffer(string: "stop('e')"), format: .qap1, transcript: true),
            .fetch(name: "x", format: .print),
            .assign(name: "y", value: BridgeValue(format: .qap1, bytes: {
                var b = ByteBuffer()
                try? QAP1SEXP.encode(RValue(.integer([1, 2])), into: &b)
                return b
            }())),
            .call(function: "sum", arguments: [BridgeArgument(value: BridgeValue(format: .qap1, bytes: {
                var b = ByteBuffer()
                try? QAP1SEXP.encode(RValue(.double([1, 2])), into: &b)
                return b
            }()))], format: .qap1),
            .listObjects,
            .cancel,
        ]
        for (i, request) in exchange.enumerated() { BridgeFrame.request(request, id: UInt32(i + 1)).encode(into: &requests) }
        guard let (client, peer) = ClientConnection.warmUpPair(requests: requests) else { return }
        defer { close(client.descriptor); close(peer) }
        var assignment = ClientConnection.warmUpAssignment(.bridge)
        assignment.anonymousRole = "analyst"
        var session = BridgeSession(
            engine: engine, client: client, assignment: assignment, control: ControlSocket(descriptor: -1),
            access: SessionAccess(settings: settings, anonymousRole: "analyst"))
        _ = session.serve()
    }
}
