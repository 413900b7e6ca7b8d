internal import CRgateSystem
import Logging
import NIOCore
import NIOSSL
import RgateBridge
import RgateIPC
import RgateQAP1
import RgateText
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches every running session process through its control socket, on one thread with poll().
///
/// The supervisor keeps a duplicate of each client socket it hands to a session process. When
/// the session ends on purpose (`ended`), the duplicate is simply closed. When the process dies
/// without saying so (crash, `kill -9`, out-of-memory kill), the socket closes at once and the
/// monitor tells the client in its own protocol that the session was lost, then closes it.
final class SessionMonitor: Sendable {
    struct Client: Sendable {
        let sessionID: UInt64
        let descriptor: Int32
        let wireProtocol: WireProtocol
        var peer: String = ""
        /// The anonymous role the session started with ("" when it must log in).
        var role: String = ""
        /// Switched to TLS in-band: the socket carries TLS now, so no clear-text error may be written to it.
        var switchedToTLS = false
        /// The user the supervisor authenticated before the session started (bridge sessions).
        var user: String? = nil
        /// Which admission share the session holds.
        var workload: SessionWorkload = .interactive
        /// Bridge sessions: told how the session ended instead of anything written to a socket
        /// (``descriptor`` is then -1).
        var onEnd: (@Sendable (SessionEnd) -> Void)? = nil
    }

    /// Who a session's client turned out to be, once logged in.
    private struct Identity {
        var user: String?
        var role: String
    }

    private struct Record {
        let pid: Int32
        let control: ControlSocket
        var clients: [Client]
        let shared: Bool
    }

    private struct State {
        var records: [Int32: Record] = [:] // by control descriptor
        var stopped = false
        var exitStatus: [Int32: Int32] = [:] // pid → wait status, as reported by the zygote
        var identities: [UInt64: Identity] = [:] // session → logged-in user
        var authenticating: Set<UInt64> = [] // sessions with a login being checked
    }

    private let state = Mutex(State())
    private let wake: Int32
    private let logger: Logger
    /// Called when a session process is gone, with whether it was the shared one.
    private let onGone: @Sendable (_ shared: Bool) -> Void
    /// Called when a session asks for the server to shut down (already authorised).
    private let onShutdownRequest: @Sendable () -> Void
    /// Called once per client whose session ended (normally or not), with whether it was shared.
    private let onSessionEnd: @Sendable (_ client: Client, _ shared: Bool) -> Void

    private let authenticator: Authenticator?
    private let audit: AuditLog?
    private let tlsContext: NIOSSLContext?
    /// Whether a session of this role (logged in or anonymous) may shut the server down.
    private let mayShutDown: @Sendable (_ role: String, _ loggedIn: Bool) -> Bool

    init(logger: Logger, authenticator: Authenticator?, audit: AuditLog?, tlsContext: NIOSSLContext?,
         mayShutDown: @escaping @Sendable (_ role: String, _ loggedIn: Bool) -> Bool, onShutdownRequest: @escaping @Sendable () -> Void, onSessionEnd: @escaping @Sendable (_ client: Client, _ shared: Bool) -> Void,
         onGone: @escaping @Sendable (_ shared: Bool) -> Void) throws {
        self.onSessionEnd = onSessionEnd
        self.onShutdownRequest = onShutdownRequest
        self.authenticator = authenticator
        self.audit = audit
        self.tlsContext = tlsContext
        self.mayShutDown = mayShutDown
        wake = rgs_eventfd()
        guard wake >= 0 else { throw SystemError("eventfd") }
        self.logger = logger
        self.onGone = onGone
        Thread.detach(name: "rgate-sessions") { [self] in loop() }
    }

    /// The number of session processes being watched.
    var activeCount: Int { state.withLock { $0.records.count } }

    /// Starts watching a session process that now serves `client`.
    func watch(pid: Int32, control: ControlSocket, client: Client, shared: Bool) {
        audit?.write(event: "session start", session: client.sessionID, peer: client.peer, user: client.user, role: client.role, protocol: "\(client.wireProtocol)")
        state.withLock { s in
            if let user = client.user { s.identities[client.sessionID] = Identity(user: user, role: client.role) }
            if var record = s.records[control.descriptor] {
                record.clients.append(client)
                s.records[control.descriptor] = record
            } else {
                s.records[control.descriptor] = Record(pid: pid, control: control, clients: [client], shared: shared)
            }
        }
        poke()
    }

    /// Forgets a client whose hand-off failed (the caller still owns the descriptor).
    func unwatch(control: ControlSocket, sessionID: UInt64) {
        state.withLock { s in
            guard var record = s.records[control.descriptor] else { return }
            record.clients.removeAll { $0.sessionID == sessionID }
            if record.clients.isEmpty && !record.shared {
                s.records[control.descriptor] = nil
            } else {
                s.records[control.descriptor] = record
            }
        }
        poke()
    }

    /// Records a session process's exit status (reported by the zygote).
    func recordExit(pid: Int32, status: Int32) {
        state.withLock { s in
            s.exitStatus[pid] = status
            if s.exitStatus.count > 4096 { s.exitStatus.removeAll() }
        }
    }

    /// The exit status of `pid`, waiting briefly for the zygote's report.
    private func exitStatus(of pid: Int32) -> Int32? {
        for _ in 0..<40 {
            if let status = state.withLock({ $0.exitStatus.removeValue(forKey: pid) }) { return status }
            usleep(5_000)
        }
        return nil
    }

    /// Asks every session process to stop now (SIGKILL) after the caller's grace period.
    func killAll() {
        let pids = state.withLock { $0.records.values.map(\.pid) }
        for pid in pids { kill(pid, SIGKILL) }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        poke()
    }

    private func poke() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    private func loop() {
        while true {
            let (descriptors, stopped) = state.withLock { s in (Array(s.records.keys), s.stopped) }
            if stopped && descriptors.isEmpty { break }
            var fds = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            fds += descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), stopped ? 100 : -1)
            if n < 0 && errno != EINTR { break }
            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wake, &value, 8)
            }
            for pfd in fds.dropFirst() where pfd.revents != 0 {
                service(descriptor: pfd.fd)
            }
        }
    }

    private func service(descriptor: Int32) {
        guard let control = state.withLock({ $0.records[descriptor]?.control }) else { return }
        let received: (message: ControlMessage, descriptor: Int32?)?
        do { received = try control.receive() } catch { received = nil }
        if let received {
            if case .switchToTLS = received.message {
                switchToTLS(received.descriptor, control: control)
                return
            }
            if let fd = received.descriptor { close(fd) }
            switch received.message {
            case .shutdownRequested:
                // Authorised here, from what the supervisor knows of the session (its login or
                // anonymous role): a session process runs client code and is not trusted.
                let (client, identity) = clientAndIdentity(descriptor)
                guard let client, mayShutDown(identity?.role ?? client.role, identity != nil) else {
                    logger.warning("refused a shutdown request from a session whose role may not shut down",
                                   metadata: ["session.id": "\(client?.sessionID ?? 0)"])
                    return
                }
                logger.notice("a client asked the server to shut down", metadata: ["session.id": "\(client.sessionID)"])
                onShutdownRequest()
                return
            case .authenticate(let request):
                authenticate(request, descriptor: descriptor, control: control)
                return
            case .requestDone(let record):
                recordRequest(record, descriptor: descriptor)
                return
            default:
                break
            }
            guard case .ended(let reason) = received.message else { return }
            let (client, shared) = state.withLock { s -> (Client?, Bool) in
                guard var record = s.records[descriptor], !record.clients.isEmpty else { return (nil, false) }
                let client = record.clients.removeFirst()
                s.records[descriptor] = record
                return (client, record.shared)
            }
            if let client {
                finished(client, outcome: "\(reason)")
                onSessionEnd(client, shared)
                logger.debug("session ended", metadata: ["session.id": "\(client.sessionID)", "reason": "\(reason)"])
                if client.descriptor >= 0 { close(client.descriptor) }
                client.onEnd?(.ended(reason))
            }
            return
        }
        // End of stream: the session process is gone.
        guard let record = state.withLock({ $0.records.removeValue(forKey: descriptor) }) else { return }
        control.close()
        let status = record.clients.isEmpty ? nil : exitStatus(of: record.pid)
        let cause = SessionLostReply.cause(waitStatus: status)
        for client in record.clients {
            logger.warning(
                "session lost: its R process \(cause)",
                metadata: ["session.id": "\(client.sessionID)", "worker.pid": "\(record.pid)"])
            if let onEnd = client.onEnd {
                onEnd(.lost(waitStatus: status))
            } else {
                SessionLostReply.send(to: client, cause: cause)
                close(client.descriptor)
            }
            finished(client, outcome: "lost: worker process \(cause)")
            onSessionEnd(client, record.shared)
        }
        onGone(record.shared)
    }
}

extension SessionMonitor {
    /// Checks a login on its own thread (a slow hash, maybe a failure delay), then answers the
    /// session. The answer goes through a duplicate of the control socket, so it reaches that
    /// session even if its descriptor number is closed and reused meanwhile.
    private func authenticate(_ request: AuthenticationRequest, descriptor: Int32, control: ControlSocket) {
        let client = state.withLock { $0.records[descriptor]?.clients.first }
        let copy = dup(control.descriptor)
        guard copy >= 0 else { return }
        let reply = ControlSocket(descriptor: copy)
        guard let authenticator, let client else {
            try? reply.send(.authenticated(AuthenticationOutcome(accepted: false, user: request.user, role: "", message: "login is not configured")))
            reply.close()
            return
        }
        // One login check at a time per session, and none after a successful one (a session
        // process runs client code: it could otherwise flood the supervisor with scrypt work).
        let admitted = state.withLock { s -> Bool in
            guard s.identities[client.sessionID] == nil, !s.authenticating.contains(client.sessionID) else { return false }
            s.authenticating.insert(client.sessionID)
            return true
        }
        guard admitted else {
            try? reply.send(.authenticated(AuthenticationOutcome(accepted: false, user: request.user, role: "", message: "already logged in")))
            reply.close()
            return
        }
        Thread.detach(name: "rgate-login") { [self] in
            let outcome = authenticator.authenticate(request, peer: client.peer, sessionID: client.sessionID)
            state.withLock { s in
                s.authenticating.remove(client.sessionID)
                if outcome.accepted { s.identities[client.sessionID] = Identity(user: outcome.user, role: outcome.role) }
            }
            try? reply.send(.authenticated(outcome))
            reply.close()
        }
    }

    /// `CMD_switch "TLS"`: runs TLS on the client's socket (in NIO) and gives the session the
    /// relay's end once the handshake is done (through a duplicate of its control socket).
    private func switchToTLS(_ client: Int32?, control: ControlSocket) {
        state.withLock { s in
            guard var record = s.records[control.descriptor], !record.clients.isEmpty else { return }
            record.clients[0].switchedToTLS = true
            s.records[control.descriptor] = record
        }
        let copy = dup(control.descriptor)
        guard copy >= 0 else { if let client { close(client) }; return }
        let reply = ControlSocket(descriptor: copy)
        guard let client, let tlsContext else {
            if let client { close(client) }
            try? reply.send(.switchedToTLS)
            reply.close()
            return
        }
        TLSTerminator.adopt(client, context: tlsContext) { relay in
            try? reply.send(.switchedToTLS, passing: relay)
            if let relay { close(relay) }
            reply.close()
        }
    }

    private func recordRequest(_ record: RequestRecord, descriptor: Int32) {
        guard let audit else { return }
        let (client, identity) = clientAndIdentity(descriptor)
        guard let client else { return }
        let hash = hexString(record.codeSHA256)
        audit.write(
            event: "request", session: client.sessionID, peer: client.peer, user: identity?.user,
            role: identity?.role ?? client.role, protocol: "\(client.wireProtocol)",
            fields: [
                ("command", .string(record.command)), ("code_bytes", .int(Int(record.codeBytes))),
                ("code_sha256", hash.isEmpty ? nil : .string(hash)),
                ("duration_ms", .double(Double(record.durationMicroseconds) / 1000)),
                ("limit", record.limit.isEmpty ? nil : .string(record.limit)),
            ],
            outcome: record.outcome)
    }

    /// The client a session process serves and, once it logged in, who it is.
    private func clientAndIdentity(_ descriptor: Int32) -> (Client?, Identity?) {
        state.withLock { s in
            let client = s.records[descriptor]?.clients.first
            return (client, client.flatMap { s.identities[$0.sessionID] })
        }
    }

    /// A client's session is over: forget it and write its audit line.
    private func finished(_ client: Client, outcome: String) {
        let identity = state.withLock { $0.identities.removeValue(forKey: client.sessionID) }
        authenticator?.sessionEnded(client.sessionID)
        audit?.write(
            event: "session end", session: client.sessionID, peer: client.peer, user: identity?.user,
            role: identity?.role ?? client.role, protocol: "\(client.wireProtocol)", outcome: outcome)
    }
}

/// The error a client gets, in its protocol, when its session process dies.
enum SessionLostReply {
    /// Why the process ended, from its wait status, for the client and the log.
    static func cause(waitStatus: Int32?) -> String {
        guard let status = waitStatus else { return "ended unexpectedly (crashed, ran out of memory or was killed)" }
        let signal = status & 0x7f
        switch signal {
        case 0: return "exited with status \((status >> 8) & 0xff)"
        case SIGALRM: return "was stopped: the request ran past its time limit and R did not stop within the grace period"
        case SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: return "crashed (signal \(signal))"
        case SIGKILL: return "was killed (SIGKILL: out of memory, or stopped from outside)"
        default: return "was ended by signal \(signal)"
        }
    }

    static func message(cause: String) -> String {
        "Error: rgate: the R session was lost: its worker process \(cause). Connect again to start a new session.\n"
    }

    static func send(to client: SessionMonitor.Client, cause: String) {
        if client.switchedToTLS {
            shutdown(client.descriptor, Int32(SHUT_RDWR)) // inside TLS: only the connection's end
            return
        }
        var buffer = ByteBuffer()
        switch client.wireProtocol {
        case .text:
            TextReply(body: ByteBuffer(string: message(cause: cause))).encode(into: &buffer)
        case .qap1, .ocap:
            // An R-error status; the client's follow-up (e.g. geterrmessage()) finds the connection closed.
            QAP1Message(command: .error(.rError)).encode(into: &buffer)
        default:
            return
        }
        // Best effort, never blocking the monitor: the peer may be gone already.
        let flags = fcntl(client.descriptor, F_GETFL)
        _ = fcntl(client.descriptor, F_SETFL, flags | O_NONBLOCK)
        buffer.withUnsafeReadableBytes { raw in
            _ = Glibc.send(client.descriptor, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
        }
        shutdown(client.descriptor, Int32(SHUT_RDWR))
    }
}
