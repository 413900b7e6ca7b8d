import NIOCore
import RgateEngine
import RgateIPC
import RgateModel
import RgatePolicy
import RgateQAP1
internal import CRgateSystem
#if canImport(Glibc)
import Glibc
#endif

/// Serves Rserve's QAP1 protocol on one connection, so that existing Rserve clients (pyRserve,
/// RSclient, REngine, ...) work unchanged. The session's R is this process's own.
final class QAP1Session {
    let engine: REngine
    private(set) var client: ClientConnection
    let assignment: SessionAssignment
    let control: ControlSocket
    /// Role, limits and request records, shared with the other session adapters.
    private var runtime: SessionRuntime
    /// The role and the gate every request passes.
    private var access: SessionAccess {
        get { runtime.access! }
        set { runtime.access = newValue }
    }
    /// The public RSA login key (DER), when RSA logins are possible.
    let rsaPublicKeyDER: [UInt8]?
    /// The random key of this connection's RSA login, once the client asked for it (only once).
    private var authKey: [UInt8]?
    private lazy var salt: String = Self.makeSalt()
    /// Whether the session has run anything (after which a login can no longer change the role).
    private var used = false
    /// OCAP mode: capability token → allow-listed function (`""`: the login capability).
    private var capabilities: [String: String] = [:]
    /// The message id replies carry (OCAP mode echoes the request's, as Rserve does).
    private var replyID: UInt32 = 0
    private var isOCAP: Bool { assignment.wireProtocol == .ocap }
    /// Whether the connection was switched to TLS (once only).
    private var switched = false
    private var decoder: QAP1MessageDecoder
    private var buffer = ByteBuffer.fresh(capacity: 64 << 10)
    private var openFile: UnsafeMutablePointer<FILE>?
    private var ended: SessionEndReason?

    let sandbox: SessionSandbox

    init(engine: REngine, client: ClientConnection, assignment: SessionAssignment, control: ControlSocket, settings: WorkerSettings, sandbox: SessionSandbox) {
        self.sandbox = sandbox
        self.control = control
        rsaPublicKeyDER = assignment.loginMethods.contains(.rsa) ? settings.rsaPublicKeyDER : nil
        runtime = SessionRuntime(engine: engine, assignment: assignment, control: control, access: SessionAccess(settings: settings, anonymousRole: assignment.anonymousRole))
        self.engine = engine
        self.client = client
        self.assignment = assignment
        decoder = QAP1MessageDecoder(maximumPayloadBytes: assignment.maxRequestBytes)
    }

    private var authenticated: Bool { access.role != nil }

    /// A two-character salt for crypt() logins.
    static func makeSalt() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./".utf8)
        var rng = SystemRandomNumberGenerator()
        return String(decoding: [alphabet.randomElement(using: &rng)!, alphabet.randomElement(using: &rng)!], as: UTF8.self)
    }

    private var options: EvaluationOptions {
        // Like Rserve: no console transcript to build, so no condition recording per request.
        runtime.options(printVisible: false, captureConditions: false)
    }

    func serve() -> SessionEndReason {
        if isOCAP {
            guard sendCapabilities() else { return .protocolError }
        } else {
            let identification = authenticated
                ? QAP1Identification.make(tls: assignment.tlsSwitch)
                : QAP1Identification.make(authRequired: true, plainText: true, salt: assignment.loginMethods.contains(.crypt) ? salt : nil, tls: assignment.tlsSwitch)
            guard client.writeAll(ByteBuffer(bytes: identification)) else { return .ioError }
        }
        engine.onOutOfBand = { [unowned self] kind, object, code in self.outOfBand(kind, object, code) }
        engine.cancelWhenPeerCloses(client.descriptor)
        let control = self.control
        let client = self.client
        engine.onQuit = { _ in
            // q() ends the session: as with Rserve, the client sees the connection close.
            shutdown(client.descriptor, Int32(SHUT_RDWR))
            try? control.send(.ended(reason: .quit))
        }
        defer {
            runtime.sendTally()
            engine.cancelWhenPeerCloses(nil)
            engine.onOutOfBand = nil
            engine.onQuit = nil
            if let openFile { fclose(openFile) }
        }
        while true {
            switch nextFrame() {
            case .frame(let frame):
                switch frame {
                case .oversized(let header):
                    WorkerLog.info("session \(assignment.sessionID): refused a \(header.length)-byte message")
                    replyID = isOCAP ? header.messageID : 0
                    guard respond(error: .dataOverflow) else { return .ioError }
                    if isOCAP { return .protocolError } // as Rserve in OCAP mode: then close
                case .message(let message):
                    guard handle(message) else { return ended ?? .ioError }
                }
            case .end(let reason):
                return reason
            }
        }
    }

    private enum Next {
        case frame(QAP1Frame)
        case end(SessionEndReason)
    }

    /// The next frame from the client, reading as needed.
    private func nextFrame() -> Next {
        while true {
            do {
                if let frame = try decoder.decode(buffer: &buffer) {
                    buffer.discardReadBytes()
                    return .frame(frame)
                }
            } catch {
                return .end(.protocolError)
            }
            switch client.read(into: &buffer) {
            case .data: continue
            case .timedOut: return .end(.idleTimeout)
            case .failed: return .end(.ioError)
            case .eof: return .end(buffer.readableBytes > 0 ? .protocolError : .clientClosed)
            }
        }
    }

    // MARK: Responses

    private func respond(_ command: QAP1Command, payload: ByteBuffer = ByteBuffer.fresh(capacity: 1)) -> Bool {
        var out = ByteBuffer.fresh(capacity: QAP1Header.size + payload.readableBytes)
        QAP1Message(command: command, payload: payload, messageID: replyID).encode(into: &out)
        return client.writeAll(out)
    }

    private func respond(error status: QAP1Status) -> Bool { respond(.error(status)) }

    private func respondOK(_ parameters: [QAP1Parameter] = []) -> Bool {
        var payload = ByteBuffer.fresh()
        for p in parameters { p.encode(into: &payload) }
        return respond(.responseOK, payload: payload)
    }

    /// Encodes a result straight from R's memory into the response (one copy of the data).
    private func respondOK(object: RObject) -> Bool {
        var out = ByteBuffer.fresh()
        var external: [(offset: Int, data: UnsafeRawBufferPointer)] = []
        do {
            // Large numeric vectors are sent from R's memory (writev), not copied.
            try QAP1SEXP.encode(source: object.view, into: &out, external: &external) { size, buffer in
                let paramHeader = size > 0xff_fff0 ? 8 : 4
                QAP1Header(command: .responseOK, length: UInt64(paramHeader + size), messageID: replyID).encode(into: &buffer)
                QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: size, into: &buffer)
            }
        } catch {
            engine.setErrorMessage("Error: the result could not be encoded: \(error)\n")
            return respond(error: .rError)
        }
        return withExtendedLifetime(object) { client.writeAll(out, splicing: external) }
    }

    // MARK: Commands

    /// Handles one message; false ends the session.
    private func handle(_ message: QAP1Message) -> Bool {
        let command = message.header.command
        if isOCAP {
            // Object-capability mode: only calls of capabilities; anything else is refused and
            // the connection closed, as Rserve does.
            replyID = message.header.messageID
            guard command == .ocCall else {
                _ = respond(error: .disabled)
                ended = .protocolError
                return false
            }
            return capabilityCall(message)
        }
        if command.hasRawPayload {
            guard authenticated else {
                _ = respond(error: .authFailed)
                ended = .protocolError
                return false
            }
            guard access.role?.mayUseSerializedCommands == true else { return refuse(command: "\(command)") }
            guard beginUse() else { return false }
            return serialized(command, message.payload)
        }
        let parameters: [QAP1Parameter]
        do {
            parameters = try QAP1Parameter.parse(message.payload)
        } catch {
            return respond(error: error.status)
        }
        if !authenticated && command != .login && command != .switchProtocol && command != .keyRequest && command != .secureLogin {
            // As Rserve: anything before a required login is refused and the connection closed.
            _ = respond(error: .authFailed)
            ended = .protocolError
            return false
        }
        if ![.login, .keyRequest, .secureLogin, .switchProtocol, .setBufferSize, .setEncoding].contains(command) {
            guard beginUse() else { return false }
        }
        switch command {
        case .login:
            return login(parameters)
        case .eval, .voidEval:
            return evaluate(parameters, returnValue: command == .eval)
        case .setSEXP, .assignSEXP:
            return assign(parameters, parseName: command == .assignSEXP)
        case .shutdown:
            // admin may; --allow-shutdown (Rserve's model) extends it to anonymous analysts only.
            guard let role = access.role, role.mayShutDown || (assignment.allowShutdown && access.user == nil && role.runsArbitraryCode) else {
                return refuse(command: "shutdown", status: .disabled)
            }
            try? control.send(.shutdownRequested)
            return respondOK()
        case .switchProtocol:
            return switchToTLS(parameters)
        case .keyRequest:
            return keyRequest(parameters)
        case .secureLogin:
            return secureLogin(parameters)
        case .detachSession:
            guard access.role?.mayDetach == true else { return refuse(command: "detachSession") }
            return detach(evaluating: nil)
        case .detachedVoidEval:
            guard access.role?.runsArbitraryCode == true, access.role?.mayDetach == true else { return refuse(command: "detachedVoidEval") }
            guard case .string(let code)? = parameters.first else { return respond(error: .invalidParameter) }
            return detach(evaluating: code)
        case .ctrlEval, .ctrlSource, .ctrlShutdown, .attachSession:
            return respond(error: .unsupportedCommand)
        case .setBufferSize:
            return respondOK()
        case .setEncoding:
            guard let name = parameters.first?.stringValue, ["native", "utf8", "latin1"].contains(name) else {
                return respond(error: .invalidParameter)
            }
            return respondOK()
        case .ocCall:
            // Not in OCAP mode: like Rserve with an unknown capability, close without a reply.
            ended = .protocolError
            return false
        case .openFile, .createFile, .closeFile, .readFile, .writeFile, .removeFile:
            guard access.role?.mayUseFiles == true else { return refuse(command: "\(command)") }
            return file(command, parameters)
        default:
            return respond(error: .invalidCommand)
        }
    }

    /// Marks the session as in use; the first time, confines the process for the role (before
    /// any client code runs). False ends the session.
    private func beginUse() -> Bool {
        if used { return true }
        used = true
        guard let role = access.role, sandbox.enter(role) else {
            _ = respond(error: .accessDenied)
            ended = .protocolError
            return false
        }
        return true
    }

    /// Refuses a command the role may not use (the session goes on).
    private func refuse(command: String, status: QAP1Status = .rError) -> Bool {
        let message = access.refusalMessage(command: command)
        engine.setErrorMessage("Error: \(message)\n")
        WorkerLog.info("session \(assignment.sessionID): \(message)")
        report(command: command, outcome: "refused")
        return respond(error: status)
    }

    private func login(_ parameters: [QAP1Parameter]) -> Bool {
        // No users configured: every login succeeds, as with Rserve without a password file.
        guard !assignment.loginMethods.isEmpty else { return respondOK() }
        // As Rserve: a second login is an invalid command (an anonymous client may log in once).
        if access.user != nil || (authenticated && assignment.anonymousRole.isEmpty) { return respond(error: .invalidCommand) }
        if used { return refuse(command: "login after other commands (log in first)", status: .invalidCommand) }
        guard case .string(let bytes)? = parameters.first, let newline = bytes.firstIndex(of: 10), newline <= 256, bytes.count <= 4096 else {
            _ = respond(error: .authFailed)
            ended = .protocolError
            return false
        }
        let user = String(decoding: bytes[..<newline], as: UTF8.self)
        var secret = Array(bytes[(newline + 1)...])
        while let last = secret.last, last == 10 || last == 13 || last == 0 { secret.removeLast() }
        return finishLogin(AuthenticationRequest(method: .password, user: user, secret: secret, salt: assignment.loginMethods.contains(.crypt) ? salt : ""))
    }

    /// Asks the supervisor to check credentials, then adopts the user's role or ends the session
    /// (as Rserve does after a failed login).
    private func finishLogin(_ request: AuthenticationRequest) -> Bool {
        let outcome = authenticate(request)
        guard let outcome, outcome.accepted, access.adopt(roleNamed: outcome.role, user: outcome.user) else {
            WorkerLog.info("session \(assignment.sessionID): login failed for user \(request.user.debugDescription)")
            engine.setErrorMessage("Error: rgate: \(outcome?.message ?? "login failed")\n")
            _ = respond(error: .authFailed)
            ended = .protocolError
            return false
        }
        return respondOK()
    }

    /// `CMD_switch "TLS"` (Rserve's in-band upgrade): answer OK in clear, hand the socket to the
    /// supervisor, which runs the TLS server side, and continue on the relay it gives back.
    private func switchToTLS(_ parameters: [QAP1Parameter]) -> Bool {
        guard assignment.tlsSwitch, !switched else { return respond(error: .disabled) }
        guard let name = parameters.first?.stringValue else { return respond(error: .invalidParameter) }
        guard name == "TLS" else { return respond(error: .unsupportedCommand) }
        // Bytes after the switch request are the TLS handshake, which is not ours to read.
        guard buffer.readableBytes == 0, respond(.responseOK) else {
            ended = .protocolError
            return false
        }
        guard (try? control.send(.switchToTLS, passing: client.descriptor)) != nil else { return false }
        var relay: Int32?
        while let received = try? control.receive() {
            if case .switchedToTLS = received.message { relay = received.descriptor; break }
            if let fd = received.descriptor { close(fd) }
        }
        guard let relay else {
            WorkerLog.info("session \(assignment.sessionID): the TLS handshake after switch failed")
            ended = .protocolError
            return false
        }
        // The supervisor holds the TCP socket now (closing, not shutting down: the socket is
        // shared); this process talks to the relay.
        close(client.descriptor)
        switched = true
        client = ClientConnection(descriptor: relay)
        client.setIdleTimeout(milliseconds: assignment.idleTimeoutMilliseconds)
        engine.cancelWhenPeerCloses(relay)
        return true
    }

    /// The supervisor's verdict on credentials (nil when it could not be asked).
    private func authenticate(_ request: AuthenticationRequest) -> AuthenticationOutcome? {
        guard (try? control.send(.authenticate(request))) != nil else { return nil }
        while let received = try? control.receive() {
            if let fd = received.descriptor { close(fd) }
            if case .authenticated(let answer) = received.message { return answer }
        }
        return nil
    }

    // MARK: Object capabilities (OCAP mode)

    /// Sends the first message of OCAP mode: `RsOC` and the capabilities, a named list of
    /// `OCref` strings: the role's functions, or only `login` when the client must log in.
    private func sendCapabilities() -> Bool {
        var names: [String] = []
        if let role = access.role, role.base == .caller {
            names = access.callableFunctions
        } else if !assignment.loginMethods.isEmpty {
            names = ["login"]
        }
        guard !names.isEmpty else {
            WorkerLog.info("session \(assignment.sessionID): OCAP has no capabilities to offer (the anonymous role is not a caller, and there are no users)")
            return false
        }
        return respondCapabilities(names, command: .ocInit, login: names == ["login"] && access.role?.base != .caller)
    }

    /// Registers fresh tokens for `names` and answers with them (as Rserve's OCinit or a result).
    /// - Parameter login: the one name is the login capability, not a function.
    private func respondCapabilities(_ names: [String], command: QAP1Command, login: Bool = false) -> Bool {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.".utf8)
        var rng = SystemRandomNumberGenerator()
        var refs: [RValue] = []
        for name in names {
            let token = String(decoding: (0..<28).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
            capabilities[token] = login ? "" : name
            refs.append(RValue(.character([token]), attributes: [RAttribute(name: "class", value: .character(["OCref"]))]))
        }
        var payload = ByteBuffer.fresh()
        do { try QAP1Parameter.sexp(.list(refs, names: names)).encode(into: &payload) } catch { return false }
        return respond(command, payload: payload)
    }

    /// `CMD_OCcall`: a call whose first element is a capability token, the rest plain data.
    /// An unknown token or a malformed call closes the connection without a reply (as Rserve).
    private func capabilityCall(_ message: QAP1Message) -> Bool {
        let start = ContinuousClock.now
        guard case .sexp(let body)? = try? QAP1Parameter.parse(message.payload).first,
              let call = try? QAP1SEXP.decode(body), case .language(let items) = call.payload,
              let head = items.first, case .character(let tokens) = head.payload, tokens.count == 1,
              let token = tokens[0], let function = capabilities[token] else {
            WorkerLog.info("session \(assignment.sessionID): invalid OCAP call; closing")
            ended = .protocolError
            return false
        }
        let labels = call.names ?? []
        let arguments: [(label: String?, value: RValue)] = items.indices.dropFirst().map { i in
            let label = i < labels.count ? labels[i] : nil
            return (label.flatMap { $0.isEmpty ? nil : $0 }, items[i])
        }
        if function.isEmpty { return capabilityLogin(arguments) }
        guard beginUse() else { return false }
        let access = self.access
        let (evaluation, object) = withHardLimit { access.call(engine, function: function, arguments: arguments, options: options) }
        report(command: "OCcall \(function)", outcome: SessionRuntime.outcome(of: evaluation), since: start, limit: SessionRuntime.limit(of: evaluation))
        runtime.count(evaluation, since: start)
        guard evaluation.error == nil, let object else { return respond(error: .rError) }
        return respondOK(object: object)
    }

    /// The `login(user, password)` capability: on success, the user's role's capabilities.
    private func capabilityLogin(_ arguments: [(label: String?, value: RValue)]) -> Bool {
        func text(_ v: RValue) -> String? {
            if case .character(let s) = v.payload, s.count == 1 { return s[0] }
            return nil
        }
        guard arguments.count == 2, let user = text(arguments[0].value), let password = text(arguments[1].value),
              user.utf8.count <= 256, password.utf8.count <= 4096 else {
            engine.setErrorMessage("Error: rgate: login(user, password) takes two strings\n")
            return respond(error: .rError)
        }
        let outcome = authenticate(AuthenticationRequest(method: .password, user: user, secret: Array(password.utf8)))
        guard let outcome, outcome.accepted, access.adopt(roleNamed: outcome.role, user: outcome.user) else {
            // As a failed QAP1 login: answered, then the connection is closed.
            engine.setErrorMessage("Error: rgate: \(outcome?.message ?? "login failed")\n")
            _ = respond(error: .rError)
            ended = .protocolError
            return false
        }
        capabilities = capabilities.filter { !$0.value.isEmpty } // the login capability is spent
        guard access.role?.base == .caller, !access.callableFunctions.isEmpty else {
            engine.setErrorMessage("Error: rgate: role \(outcome.role) has no functions to call over OCAP; use the QAP1 port\n")
            return respond(error: .rError)
        }
        return respondCapabilities(access.callableFunctions, command: .responseOK)
    }

    /// `CMD_keyReq "rsa-authkey"`: a fresh 256-byte key and the server's public RSA key; once
    /// per connection (a second request is a replay attempt: refused and closed, as Rserve 1.8-10+).
    private func keyRequest(_ parameters: [QAP1Parameter]) -> Bool {
        guard let der = rsaPublicKeyDER else { return respond(error: .unavailable) }
        guard let kind = parameters.first?.stringValue, kind.contains("rsa-authkey") else { return respond(error: .invalidParameter) }
        guard authKey == nil else {
            _ = respond(error: .securityClose)
            ended = .protocolError
            return false
        }
        var key = [UInt8](repeating: 0, count: 256)
        var rng = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = rng.next() }
        authKey = key
        var answer: [UInt8] = []
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { answer += $0 } }
        u32(key.count)
        answer += key
        u32(der.count)
        answer += der
        return respond(.responseOK, payload: ByteBuffer(bytes: answer))
    }

    /// `CMD_secLogin`: the RSA-OAEP encrypted `[authkey][user\npassword\n]`, opened by the supervisor.
    private func secureLogin(_ parameters: [QAP1Parameter]) -> Bool {
        guard rsaPublicKeyDER != nil, let authKey else { return respond(error: .unavailable) }
        if access.user != nil || (authenticated && assignment.anonymousRole.isEmpty) { return respond(error: .invalidCommand) }
        self.authKey = nil // one login per key request
        if used { return refuse(command: "login after other commands (log in first)", status: .invalidCommand) }
        guard case .bytes(let body)? = parameters.first, body.readableBytes <= 4096 else {
            _ = respond(error: .authFailed)
            ended = .protocolError
            return false
        }
        return finishLogin(AuthenticationRequest(method: .rsa, user: "", secret: Array(body.readableBytesView), authKey: authKey))
    }

    /// Reports a request for the audit log, when asked to.
    private func report(command: String, code: [UInt8]? = nil, outcome: String, since start: ContinuousClock.Instant? = nil, limit: String = "") {
        guard assignment.auditRequests else { return }
        if let code {
            code.withUnsafeBytes { runtime.report(command: command, code: $0, outcome: outcome, since: start, limit: limit) }
        } else {
            runtime.report(command: command, outcome: outcome, since: start, limit: limit)
        }
    }

    private func evaluate(_ parameters: [QAP1Parameter], returnValue: Bool) -> Bool {
        let outcome: (Evaluation, RObject?)
        let start = ContinuousClock.now
        let command = returnValue ? "eval" : "voidEval"
        var sent: [UInt8]?
        switch parameters.first {
        case .string(let code)?:
            sent = code
            let access = self.access
            outcome = withHardLimit { code.withUnsafeBytes { access.evaluate(engine, code: $0, options: options) } }
        case .sexp(let body)?:
            guard access.role?.runsArbitraryCode == true else { return refuse(command: "\(command) of an R object") }
            let object: RObject
            do {
                object = try engine.makeObject(try QAP1SEXP.decode(body))
            } catch {
                return respond(error: .invalidParameter)
            }
            outcome = withHardLimit { engine.evaluate(object: object, options: options) }
        default:
            return respond(error: .invalidParameter)
        }
        let (evaluation, object) = outcome
        report(command: command, code: sent, outcome: SessionRuntime.outcome(of: evaluation), since: start, limit: SessionRuntime.limit(of: evaluation))
        runtime.count(evaluation, since: start)
        if let error = evaluation.error {
            switch error.code {
            case .parseIncomplete: return respond(error: .parseIncomplete)
            case .parseInvalid: return respond(error: .parseError)
            case .timeout:
                engine.setErrorMessage("Error: \(error.message)\n")
                return respond(error: .rError)
            default: return respond(error: .rError)
            }
        }
        guard returnValue else { return respondOK() }
        guard let object else {
            // Code with no expression: Rserve returns the (empty) parse result, expression().
            var payload = ByteBuffer.fresh()
            QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: 4, into: &payload)
            payload.writeInteger(UInt32(QAP1SEXP.XT.vectorExp), endianness: .little)
            return respond(.responseOK, payload: payload)
        }
        return respondOK(object: object)
    }

    private func withHardLimit<T>(_ body: () -> T) -> T { runtime.withHardLimit(body) }

    private func assign(_ parameters: [QAP1Parameter], parseName: Bool) -> Bool {
        guard parameters.count >= 2, let name = parameters[0].stringValue, !name.isEmpty else {
            return respond(error: .invalidParameter)
        }
        let value: RValue
        switch parameters[1] {
        case .sexp(let body):
            do { value = try QAP1SEXP.decode(body) } catch { return respond(error: .invalidParameter) }
        case .string(let bytes):
            value = .character([String(decoding: bytes, as: UTF8.self)])
        default:
            return respond(error: .invalidParameter)
        }
        if let refusal = access.assignRefusal(name: name, value: value) {
            engine.setErrorMessage("Error: \(refusal)\n")
            report(command: "setSEXP", outcome: "refused")
            return respond(error: .rError)
        }
        report(command: parseName ? "assignSEXP" : "setSEXP", outcome: "ok")
        do {
            let object = try engine.makeObject(value)
            if !parseName || Self.isPlainName(name) {
                try engine.assign(name, object: object)
                return respondOK()
            }
            // assignSEXP with a target like `names(x)`: Rserve silently does nothing useful; rgate
            // performs the replacement assignment the client asked for.
            try engine.assign(".rgate_assign_value", object: object)
            let code = Array("\(name) <- .rgate_assign_value; rm(.rgate_assign_value)".utf8)
            let evaluation = code.withUnsafeBytes { engine.evaluate(utf8: $0, options: options) }
            if let error = evaluation.error {
                return respond(error: error.isParseError ? (error.code == .parseIncomplete ? .parseIncomplete : .parseError) : .rError)
            }
            return respondOK()
        } catch {
            engine.setErrorMessage("Error: \(error.message)\n")
            return respond(error: .rError)
        }
    }

    static func isPlainName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "." else { return false }
        return name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "_" }
    }

    // MARK: Detach and attach

    /// Rserve's detach: answer with a port and a 32-byte key, close the connection, keep the R
    /// session, and resume it on the first connection to that port (from the same address) that
    /// sends the key. With code (`detachedVoidEval`), evaluate it while detached and answer its
    /// outcome to the attaching client. Unlike Rserve, the port listens on the address the client
    /// used (not on every interface) and waits at most the idle timeout.
    private func detach(evaluating code: [UInt8]?) -> Bool {
        var pending: (Evaluation, RObject?)?
        if let code, let error = code.withUnsafeBytes({ engine.checkSyntax(utf8: $0) }) {
            // Parse errors are answered before detaching, as Rserve does.
            return respond(error: error.code == .parseIncomplete ? .parseIncomplete : .parseError)
        }
        guard let (listener, port, peer) = Self.listenBesides(client.descriptor, socket: sandbox.takeDetachSocket()) else { return respond(error: .detachFailed) }
        var key = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = rng.next() }
        var payload = ByteBuffer.fresh()
        QAP1Parameter.int(Int32(port)).encode(into: &payload)
        QAP1Parameter.bytes(ByteBuffer(bytes: key)).encode(into: &payload)
        guard respond(.responseOK, payload: payload) else { close(listener); return false }
        shutdown(client.descriptor, Int32(SHUT_RDWR))
        close(client.descriptor)
        engine.cancelWhenPeerCloses(nil) // detached: the evaluation must go on without a client
        if let code {
            pending = withHardLimit { code.withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: options) } }
        }
        defer { close(listener) }
        let deadline = assignment.idleTimeoutMilliseconds == 0 ? UInt32.max : assignment.idleTimeoutMilliseconds
        guard let attached = Self.awaitAttach(listener: listener, key: key, peer: peer, timeoutMilliseconds: deadline) else {
            ended = .idleTimeout
            return false
        }
        client = ClientConnection(descriptor: attached)
        client.setIdleTimeout(milliseconds: assignment.idleTimeoutMilliseconds)
        engine.cancelWhenPeerCloses(attached)
        buffer.clear()
        decoder = QAP1MessageDecoder(maximumPayloadBytes: assignment.maxRequestBytes)
        if let (evaluation, _) = pending, let error = evaluation.error {
            return respond(error: error.isParseError ? (error.code == .parseIncomplete ? .parseIncomplete : .parseError) : .rError)
        }
        return respondOK()
    }

    /// A listening socket on the local address of `descriptor`, its port, and the peer's address.
    /// - Parameter socket: an unbound socket to use (made before the session left the host's network).
    private static func listenBesides(_ descriptor: Int32, socket premade: Int32? = nil) -> (Int32, Int, [UInt8])? {
        var local = sockaddr_storage(), peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size), peerLength = length
        let ok = withUnsafeMutablePointer(to: &local) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        } == 0 && withUnsafeMutablePointer(to: &peer) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &peerLength) }
        } == 0
        guard ok else { return nil }
        let family = Int32(local.ss_family)
        let fd = premade ?? socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var bindAddress = local
        // Port 0: any free port on the same address.
        withUnsafeMutablePointer(to: &bindAddress) { p in
            if family == AF_INET6 {
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port = 0 }
            } else {
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port = 0 }
            }
        }
        let bound = withUnsafePointer(to: &bindAddress) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { close(fd); return nil }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let port: Int = withUnsafePointer(to: &actual) { p in
            family == AF_INET6
                ? p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                : p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (fd, port, hostBytes(peer))
    }

    private static func hostBytes(_ address: sockaddr_storage) -> [UInt8] {
        var a = address
        return withUnsafePointer(to: &a) { p in
            if Int32(address.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
        }
    }

    /// Waits for a connection from `peer` that sends `key`; other connections are dropped.
    private static func awaitAttach(listener: Int32, key: [UInt8], peer: [UInt8], timeoutMilliseconds: UInt32) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(min(timeoutMilliseconds, UInt32(Int32.max))))
        while clock.now < deadline {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let left = deadline - clock.now
            let ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&pfd, 1, max(ms, 1)) > 0 else { continue }
            var from = sockaddr_storage()
            var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &fromLength) }
            }
            guard fd >= 0 else { continue }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var received = [UInt8](repeating: 0, count: 32)
            var got = 0
            while got < 32 {
                let n = received[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                got += n
            }
            if got == 32, received == key, hostBytes(from) == peer {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            close(fd)
        }
        return nil
    }

    // MARK: R serialization (RSclient's RS.eval / RS.assign)

    private func serialized(_ command: QAP1Command, _ payload: ByteBuffer) -> Bool {
        guard command == .serEval || command == .serEEval || command == .serAssign else {
            return respond(error: .invalidCommand)
        }
        let raw: RObject
        do { raw = try engine.makeObject(.raw(Array(payload.readableBytesView))) } catch { return respond(error: .outOfMemory) }
        // Rserve hangs the client when unserialize fails; rgate answers with an error.
        guard case .success(let object) = engine.callBase("unserialize", [raw]) else { return respond(error: .rError) }
        if command == .serAssign {
            guard case .success(let one) = engine.makeObjectResult(.integer([1])),
                  case .success(let two) = engine.makeObjectResult(.integer([2])),
                  case .success(let name) = engine.callBase("[[", [object, one]),
                  case .success(let value) = engine.callBase("[[", [object, two]),
                  case .success(let nameText) = engine.callBase("as.character", [name]),
                  let target = try? engine.value(of: nameText).strings?.first ?? nil
            else { return respond(error: .rError) }
            do { try engine.assign(target, object: value) } catch { return respond(error: .rError) }
            return respondOK()
        }
        var (evaluation, result) = withHardLimit { engine.evaluate(object: object, options: options) }
        if command == .serEEval, evaluation.error == nil, let first = result {
            (evaluation, result) = withHardLimit { engine.evaluate(object: first, options: options) }
        }
        // Rserve answers a failed serEval with status 1 (RSclient shows "status code 0x1").
        guard evaluation.error == nil, let result else { return respond(error: QAP1Status(rawValue: 1)) }
        guard case .success(let null) = engine.makeObjectResult(.null),
              case .success(let bytes) = engine.callBase("serialize", [result, null]) else { return respond(error: .rError) }
        let payload = bytes.withRawBytes { ByteBuffer(bytes: $0) } ?? ByteBuffer.fresh(capacity: 1)
        return respond(.responseOK, payload: payload)
    }

    // MARK: Files in the session's own directory

    private func file(_ command: QAP1Command, _ parameters: [QAP1Parameter]) -> Bool {
        switch command {
        case .openFile, .createFile, .removeFile:
            guard let name = parameters.first?.stringValue, !name.isEmpty else { return respond(error: .invalidParameter) }
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else { return respond(error: .accessDenied) }
            if command == .removeFile { return unlink(name) == 0 ? respondOK() : respond(error: .ioError) }
            if let openFile { fclose(openFile); self.openFile = nil }
            guard let f = fopen(name, command == .openFile ? "rb" : "wb") else { return respond(error: .ioError) }
            openFile = f
            return respondOK()
        case .closeFile:
            if let openFile { fclose(openFile); self.openFile = nil }
            return respondOK()
        case .readFile:
            guard let openFile else { return respond(error: .notOpen) }
            var size = 32768
            if case .int(let n)? = parameters.first, n > 0 { size = Int(min(n, Int32(assignment.maxRequestBytes > Int32.max ? UInt64(Int32.max) : assignment.maxRequestBytes))) }
            var data = [UInt8](repeating: 0, count: size)
            let n = fread(&data, 1, size, openFile)
            return respond(.responseOK, payload: ByteBuffer(bytes: data[0..<n]))
        case .writeFile:
            guard let openFile else { return respond(error: .notOpen) }
            guard case .bytes(let body)? = parameters.first else { return respond(error: .invalidParameter) }
            let bytes = Array(body.readableBytesView)
            return fwrite(bytes, 1, bytes.count, openFile) == bytes.count ? respondOK() : respond(error: .ioError)
        default:
            return respond(error: .invalidCommand)
        }
    }

    // MARK: Out-of-band messages

    private func outOfBand(_ kind: OutOfBandKind, _ object: RObject, _ code: Int32) -> Result<RObject?, EngineError> {
        let base: QAP1Command = kind == .send ? .oobSend : .oobMessage
        let command = QAP1Command(rawValue: base.rawValue | (UInt32(bitPattern: code) & 0xfff))
        var payload = ByteBuffer.fresh()
        do {
            // Straight from R's memory, like results.
            try QAP1SEXP.encode(source: object.view, into: &payload) { size, buffer in
                QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: size, into: &buffer)
            }
        } catch {
            return .failure(EngineError("the out-of-band value could not be encoded: \(error)"))
        }
        guard respond(command, payload: payload) else { return .failure(EngineError("the client connection is gone")) }
        guard kind == .message else { return .success(nil) }
        // The client answers an OOB message with one message of its own (any command code).
        guard case .frame(.message(let reply)) = nextFrame() else {
            return .failure(EngineError("the client did not answer the out-of-band message"))
        }
        let answer: RValue
        do {
            switch try QAP1Parameter.parse(reply.payload).first {
            case .sexp(let body)?: answer = try QAP1SEXP.decode(body)
            case .string(let bytes)?: answer = .character([String(decoding: bytes, as: UTF8.self)])
            default: answer = .null
            }
        } catch {
            return .failure(EngineError("the client's answer could not be decoded: \(error)"))
        }
        do { return .success(try engine.makeObject(answer)) } catch { return .failure(error) }
    }
}

extension REngine {
    func makeObjectResult(_ value: RValue) -> Result<RObject, EngineError> {
        do { return .success(try makeObject(value)) } catch { return .failure(error) }
    }
}

extension QAP1Session {
    /// Holds a short QAP1 conversation with this process's own R over a socket pair (evals of a
    /// number, a named string vector with an NA and a list, a voidEval, an error), so that what every QAP1 session runs first (Swift
    /// type metadata and lazy globals, the encoder, R's compiled code for these paths) is paid once
    /// in the zygote instead of in every forked session: fewer pages copied per session (each
    /// first use writes runtime caches) and less CPU. Uses the built-in `analyst` role.
    static func warmUp(engine: REngine, settings: WorkerSettings) {
        guard settings.policy.roles["analyst"] != nil else { return }
        var requests = ByteBuffer()
        let exchange: [(QAP1Command, String)] = [
            (.eval, "1+1"), (.voidEval, "invisible(2)"), (.eval, "c(a = 'x', b = NA)"), (.eval, "list(n = 1L, d = 2.5)"),
            (.eval, "stop('e')"),
        ]
        for (command, code) in exchange {
            var payload = ByteBuffer()
            QAP1Parameter.string(code).encode(into: &payload)
            QAP1Header(command: command, length: UInt64(payload.readableBytes)).encode(into: &requests)
            requests.writeBuffer(&payload)
        }
        guard let (client, peer) = ClientConnection.warmUpPair(requests: requests) else { return }
        defer { close(client.descriptor); close(peer) }
        var assignment = ClientConnection.warmUpAssignment(.qap1)
        assignment.anonymousRole = "analyst"
        let session = QAP1Session(
            engine: engine, client: client, assignment: assignment,
            control: ControlSocket(descriptor: -1), settings: settings, sandbox: .zygoteWarmUp(settings: settings))
        _ = session.serve()
    }
}
