import NIOCore
import RgateEngine
import RgateIPC
import RgateModel
import RgatePolicy
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

/// Serves Rserve's QAP1 protocol on one connection, so that existing Rserve clients (pyRserve,
/// RSclient, REngine, ...) work unchanged. The session's R is this process's own.
///
/// This file holds the loop, the frame pump, the responses and the dispatch that carries out
/// Rserve's gating rules (``QAP1ConnectionState``); the commands are in `QAP1Session+*.swift`.
final class QAP1Session {
    let engine: REngine
    var client: ClientConnection
    let assignment: SessionAssignment
    let control: ControlSocket
    /// Role, limits and request records, shared with the other session adapters.
    var runtime: SessionRuntime
    /// The role and the gate every request passes.
    var access: SessionAccess {
        get { runtime.access! }
        set { runtime.access = newValue }
    }
    /// Rserve's login and gating rules for this connection.
    var state: QAP1ConnectionState
    /// The public RSA login key (DER), when RSA logins are possible.
    let rsaPublicKeyDER: [UInt8]?
    /// The random key of this connection's last `keyReq` (``state`` knows whether it is unspent).
    var authKey: [UInt8]?
    lazy var salt: String = Self.makeSalt()
    /// OCAP mode: capability token → allow-listed function (`""`: the login capability).
    var capabilities: [String: String] = [:]
    var isOCAP: Bool { state.configuration.objectCapabilities }
    var decoder: QAP1MessageDecoder
    var buffer = ByteBuffer.fresh(capacity: 64 << 10)
    /// The file of `openFile`/`createFile`, in the session's own directory.
    var openFile: UnsafeMutablePointer<FILE>?
    /// Why the session ended, when a command ended it.
    var ended: SessionEndReason?

    let sandbox: SessionSandbox

    init(engine: REngine, client: ClientConnection, assignment: SessionAssignment, control: ControlSocket, settings: WorkerSettings, sandbox: SessionSandbox) {
        self.sandbox = sandbox
        self.control = control
        let rsaPublicKeyDER = assignment.loginMethods.contains(.rsa) ? settings.rsaPublicKeyDER : nil
        self.rsaPublicKeyDER = rsaPublicKeyDER
        let access = SessionAccess(settings: settings, anonymousRole: assignment.anonymousRole)
        runtime = SessionRuntime(engine: engine, assignment: assignment, control: control, access: access)
        state = QAP1ConnectionState(
            QAP1ConnectionState.Configuration(
                objectCapabilities: assignment.wireProtocol == .ocap, loginsChecked: !assignment.loginMethods.isEmpty,
                rsaLogin: rsaPublicKeyDER != nil, tlsOffered: assignment.tlsSwitch),
            authenticated: access.role != nil, serializedCommandsAllowed: access.role?.mayUseSerializedCommands == true)
        self.engine = engine
        self.client = client
        self.assignment = assignment
        decoder = QAP1MessageDecoder(maximumPayloadBytes: assignment.maxRequestBytes)
    }

    var options: EvaluationOptions {
        // Like Rserve: no console transcript to build, so no condition recording per request.
        runtime.options(printVisible: false, captureConditions: false)
    }

    func serve() -> SessionEndReason {
        if isOCAP {
            guard sendCapabilities() else { return .protocolError }
        } else {
            let identification = state.isAuthenticated
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
                    switch state.receivedOversized(messageID: header.messageID) {
                    case .refuseAndClose(let status):
                        return respond(error: status) ? .protocolError : .ioError
                    case .refuse(let status):
                        guard respond(error: status) else { return .ioError }
                    default:
                        return .protocolError
                    }
                case .message(let message):
                    guard handle(message) else { return ended ?? .ioError }
                }
            case .end(let reason):
                return reason
            }
        }
    }

    enum Next {
        case frame(QAP1Frame)
        case end(SessionEndReason)
    }

    /// The next frame from the client, reading as needed.
    func nextFrame() -> Next {
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

    func respond(_ command: QAP1Command, payload: ByteBuffer = ByteBuffer.fresh(capacity: 1)) -> Bool {
        var out = ByteBuffer.fresh(capacity: QAP1Header.size + payload.readableBytes)
        QAP1Message(command: command, payload: payload, messageID: state.replyID).encode(into: &out)
        return client.writeAll(out)
    }

    func respond(error status: QAP1Status) -> Bool { respond(.error(status)) }

    func respondOK(_ parameters: [QAP1Parameter] = []) -> Bool {
        var payload = ByteBuffer.fresh()
        for p in parameters { p.encode(into: &payload) }
        return respond(.responseOK, payload: payload)
    }

    /// Encodes a result straight from R's memory into the response (one copy of the data).
    func respondOK(object: RObject) -> Bool {
        var out = ByteBuffer.fresh()
        var external: [(offset: Int, data: UnsafeRawBufferPointer)] = []
        do {
            // Large numeric vectors are sent from R's memory (writev), not copied.
            try QAP1SEXP.encode(source: object.view, into: &out, external: &external) { size, buffer in
                let paramHeader = size > 0xff_fff0 ? 8 : 4
                QAP1Header(command: .responseOK, length: UInt64(paramHeader + size), messageID: state.replyID).encode(into: &buffer)
                QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: size, into: &buffer)
            }
        } catch {
            engine.setErrorMessage("Error: the result could not be encoded: \(error)\n")
            return respond(error: .rError)
        }
        return withExtendedLifetime(object) { client.writeAll(out, splicing: external) }
    }

    /// Answers with `status`, then ends the session (as Rserve: the connection is closed).
    func refuseAndClose(_ status: QAP1Status) -> Bool {
        _ = respond(error: status)
        ended = .protocolError
        return false
    }

    /// Ends the session without a reply.
    func closeSilently() -> Bool {
        ended = .protocolError
        return false
    }

    /// Reports a request for the audit log, when asked to.
    func report(command: String, code: [UInt8]? = nil, outcome: String, since start: ContinuousClock.Instant? = nil, limit: String = "") {
        guard assignment.auditRequests else { return }
        if let code {
            code.withUnsafeBytes { runtime.report(command: command, code: $0, outcome: outcome, since: start, limit: limit) }
        } else {
            runtime.report(command: command, outcome: outcome, since: start, limit: limit)
        }
    }

    /// Runs `body` under the role's hard limit (see ``SessionRuntime/withHardLimit(_:)``).
    func withHardLimit<T>(_ body: () -> T) -> T { runtime.withHardLimit(body) }

    /// Refuses a command the role may not use (the session goes on).
    func refuse(command: String, status: QAP1Status = .rError) -> Bool {
        let message = access.refusalMessage(command: command)
        engine.setErrorMessage("Error: \(message)\n")
        WorkerLog.info("session \(assignment.sessionID): \(message)")
        report(command: command, outcome: "refused")
        return respond(error: status)
    }

    // MARK: Commands

    /// Carries out a gate of ``state``: nil when the command is to run (the process confined
    /// first, if the gate says so); otherwise the request is answered, and false ends the session.
    func execute(_ gate: QAP1ConnectionState.Gate, for command: QAP1Command) -> Bool? {
        switch gate {
        case .dispatch:
            return nil
        case .dispatchAfterConfining:
            // The first use: confine the process for the role before any client code runs.
            guard let role = access.role, sandbox.enter(role) else { return refuseAndClose(.accessDenied) }
            return nil
        case .answerOK:
            return respondOK()
        case .refuse(let status):
            return respond(error: status)
        case .deny(let status):
            let what = command == .login || command == .secureLogin ? "login after other commands (log in first)" : "\(command)"
            return refuse(command: what, status: status)
        case .refuseAndClose(let status):
            return refuseAndClose(status)
        }
    }

    /// Handles one message; false ends the session.
    func handle(_ message: QAP1Message) -> Bool {
        let command = message.header.command
        var parameters: [QAP1Parameter] = []
        if !isOCAP, !command.hasRawPayload {
            // Malformed parameters are answered with their status, before any gate.
            do {
                parameters = try QAP1Parameter.parse(message.payload)
            } catch {
                return respond(error: error.status)
            }
        }
        if let answered = execute(state.received(command, messageID: message.header.messageID), for: command) { return answered }
        if isOCAP { return capabilityCall(message) }
        if command.hasRawPayload { return serialized(command, message.payload) }
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
            return closeSilently()
        case .openFile, .createFile, .closeFile, .readFile, .writeFile, .removeFile:
            guard access.role?.mayUseFiles == true else { return refuse(command: "\(command)") }
            return file(command, parameters)
        default:
            return respond(error: .invalidCommand)
        }
    }
}
