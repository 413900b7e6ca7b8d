internal import CRgateSystem
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RgateBridge
import RgateIPC
import RgateQAP1
import RgateText
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches every running session process through its control socket, on one thread with poll(),
/// and drives the ``SessionTable`` with what it sees: messages, control sockets closing, the
/// zygote's exit reports, and the deadlines for those reports.
///
/// The supervisor keeps a duplicate of each client socket it hands to a session process. When
/// the session ends on purpose (`ended`), the duplicate is simply closed. When the process dies
/// without saying so (crash, `kill -9`, out-of-memory kill), the client is told in its own
/// protocol that the session was lost (a bridged session's owner is told instead), with the
/// cause from the zygote's exit report.
///
/// Lifecycle: ``start()`` (from the server's `run()`) starts the poll thread and the login
/// pool; ``stop()`` lets the thread end once nothing is watched; ``join()`` waits for it.
final class SessionMonitor: Sendable {
    typealias Client = SessionTable.Client

    private struct State {
        var table = SessionTable()
        var stopped = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let wake: Int32
    private let logger: Logger
    private let thread = Mutex<pthread_t?>(nil)
    /// Login checks (a slow hash, maybe a failure delay) run here: a bounded pool, not a thread each.
    private let logins = NIOThreadPool(numberOfThreads: 2)
    /// Called when a session process is gone, with whether it was the shared one.
    private let onGone: @Sendable (_ shared: Bool) -> Void
    /// Called when a session asks for the server to shut down (already authorised).
    private let onShutdownRequest: @Sendable () -> Void
    /// Called once per client whose session ended (normally or not), with whether it was shared.
    private let onSessionEnd: @Sendable (_ client: Client, _ shared: Bool) -> Void

    private let authenticator: Authenticator?
    private let events: ServerEvents
    private let tlsContext: NIOSSLContext?
    /// Whether a session of this role (logged in or anonymous) may shut the server down.
    private let mayShutDown: @Sendable (_ role: String, _ loggedIn: Bool) -> Bool

    init(logger: Logger, authenticator: Authenticator?, events: ServerEvents, tlsContext: NIOSSLContext?,
         mayShutDown: @escaping @Sendable (_ role: String, _ loggedIn: Bool) -> Bool, onShutdownRequest: @escaping @Sendable () -> Void, onSessionEnd: @escaping @Sendable (_ client: Client, _ shared: Bool) -> Void,
         onGone: @escaping @Sendable (_ shared: Bool) -> Void) throws {
        self.onSessionEnd = onSessionEnd
        self.onShutdownRequest = onShutdownRequest
        self.authenticator = authenticator
        self.events = events
        self.tlsContext = tlsContext
        self.mayShutDown = mayShutDown
        wake = rgs_eventfd()
        guard wake >= 0 else { throw SystemError("eventfd") }
        self.logger = logger
        self.onGone = onGone
    }

    deinit { close(wake) }

    /// Starts the poll thread and the login pool (once).
    func start() {
        thread.withLock { t in
            guard t == nil else { return }
            logins.start()
            t = Thread.start(name: "rgate-sessions") { [self] in loop() }
        }
    }

    /// Waits for the poll thread to end (after ``stop()``) and stops the login pool.
    func join() async {
        if let t = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) {
            await Thread.join(t)
        }
        try? await logins.shutdownGracefully()
    }

    /// The number of session processes being watched.
    var activeCount: Int { state.withLock { $0.table.count } }

    /// Starts watching a session process that is being handed `client`; ``confirm(sessionID:)``
    /// once the hand-off went through, ``unwatch(control:sessionID:)`` if it failed.
    func watch(pid: Int32, control: ControlSocket, client: Client, shared: Bool) {
        state.withLock { $0.table.watch(pid: pid, control: control, client: client, shared: shared) }
        poke()
    }

    /// The hand-off went through: the session started.
    func confirm(sessionID: UInt64) {
        run(state.withLock { $0.table.confirm(sessionID: sessionID) })
    }

    /// Forgets a client whose hand-off failed (the caller still owns the descriptor).
    func unwatch(control: ControlSocket, sessionID: UInt64) {
        run(state.withLock { $0.table.unwatch(control: control.descriptor, sessionID: sessionID) })
        poke()
    }

    /// Records a session process's exit status (reported by the zygote, on its reader thread).
    func recordExit(pid: Int32, status: Int32) {
        run(state.withLock { $0.table.exitReported(pid: pid, status: status) })
    }

    /// Waits until no session process is watched, at most `timeout`; whether none is.
    func waitUntilIdle(timeout: Duration) async -> Bool {
        await awaitCondition(timeout: timeout) { continuation in
            self.state.withLock { s in
                if s.table.count == 0 { return true }
                s.idleWaiters.append(continuation)
                return false
            }
        } unpark: {
            self.state.withLock { s in defer { s.idleWaiters.removeAll() }; return s.idleWaiters }
        }
        return activeCount == 0
    }

    /// Asks every session process to stop now (SIGKILL) after the caller's grace period.
    func killAll() {
        for pid in state.withLock({ $0.table.pids }) { kill(pid, SIGKILL) }
    }

    /// Lets the poll thread end once nothing is watched.
    func stop() {
        state.withLock { $0.stopped = true }
        poke()
    }

    private func poke() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Runs what the table decided, outside the lock.
    private func run(_ actions: [SessionTable.Action]) {
        for action in actions {
            switch action {
            case .emit(let event):
                events.emit(event)
            case .closeClient(let fd):
                close(fd)
            case .closeControl(let control):
                control.close()
            case .replyLost(let client, let pid, let cause):
                logger.warning("session lost: its R process \(cause)", metadata: ["session.id": "\(client.sessionID)", "worker.pid": "\(pid)"])
                SessionLostReply.send(to: client, cause: cause)
                close(client.descriptor)
            case .notifyEnd(let client, let end):
                if case .lost(let status) = end {
                    logger.warning("session lost: its R process \(SessionLostReply.cause(waitStatus: status))", metadata: ["session.id": "\(client.sessionID)"])
                }
                client.onEnd?(end)
            case .released(let client, let shared):
                authenticator?.sessionEnded(client.sessionID)
                onSessionEnd(client, shared)
            case .gone(let shared):
                onGone(shared)
            case .idle:
                let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in defer { s.idleWaiters.removeAll() }; return s.idleWaiters }
                waiters.forEach { $0.resume() }
            }
        }
    }

    private func loop() {
        let clock = ContinuousClock()
        while true {
            let (descriptors, stopped, deadline, empty) = state.withLock { s in
                (s.table.pollDescriptors, s.stopped, s.table.nextDeadline, s.table.count == 0)
            }
            if stopped && empty { break }
            var fds = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            fds += descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let timeout: Int32 = deadline.map { d in
                let left = d - clock.now
                return left <= .zero ? 0 : Int32(clamping: left.wholeMillisecondsRoundedUp)
            } ?? -1
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { break }
            if fds[0].revents != 0 {
                var value: UInt64 = 0
                _ = read(wake, &value, 8)
            }
            for pfd in fds.dropFirst() where pfd.revents != 0 {
                service(descriptor: pfd.fd)
            }
            if deadline != nil { run(state.withLock { $0.table.tick(now: clock.now) }) }
        }
    }

    private func service(descriptor: Int32) {
        guard let control = state.withLock({ $0.table.record(descriptor)?.control }) else { return }
        let received: (message: ControlMessage, descriptor: Int32?)?
        do { received = try control.receive() } catch { received = nil }
        guard let received else {
            // End of stream: the session process is gone.
            run(state.withLock { $0.table.controlClosed(descriptor, now: .now) })
            return
        }
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
        case .authenticate(let request):
            authenticate(request, descriptor: descriptor, control: control)
        case .requestDone(let record):
            let (client, identity) = clientAndIdentity(descriptor)
            if let client { events.emit(.request(client.info(identity: identity), record)) }
        case .requestTally(let tally):
            let (client, identity) = clientAndIdentity(descriptor)
            if let client { events.emit(.requestsServed(client.info(identity: identity), tally)) }
        case .ended(let reason):
            let actions = state.withLock { $0.table.ended(control: descriptor, reason: reason) }
            if case .released(let client, _)? = actions.last {
                logger.debug("session ended", metadata: ["session.id": "\(client.sessionID)", "reason": "\(reason)"])
            }
            run(actions)
        default:
            break
        }
    }
}

extension SessionMonitor {
    /// Checks a login on its own thread (a slow hash, maybe a failure delay), then answers the
    /// session. The answer goes through a duplicate of the control socket, so it reaches that
    /// session even if its descriptor number is closed and reused meanwhile.
    private func authenticate(_ request: AuthenticationRequest, descriptor: Int32, control: ControlSocket) {
        let client = state.withLock { $0.table.record(descriptor)?.clients.first }
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
        let admitted = state.withLock { $0.table.beginLogin(sessionID: client.sessionID) }
        guard admitted else {
            try? reply.send(.authenticated(AuthenticationOutcome(accepted: false, user: request.user, role: "", message: "already logged in")))
            reply.close()
            return
        }
        logins.submit { [self] work in
            let outcome = work == .active
                ? authenticator.authenticate(request, peer: client.peer, sessionID: client.sessionID)
                : AuthenticationOutcome(accepted: false, user: request.user, role: "", message: "the server is shutting down")
            state.withLock { s in
                s.table.loginChecked(sessionID: client.sessionID, identity: outcome.accepted ? .init(user: outcome.user, role: outcome.role) : nil)
            }
            try? reply.send(.authenticated(outcome))
            reply.close()
        }
    }

    /// `CMD_switch "TLS"`: runs TLS on the client's socket (in NIO) and gives the session the
    /// relay's end once the handshake is done (through a duplicate of its control socket).
    private func switchToTLS(_ client: Int32?, control: ControlSocket) {
        state.withLock { $0.table.switchedToTLS(control: control.descriptor) }
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

    /// The client a session process serves and, once it logged in, who it is.
    private func clientAndIdentity(_ descriptor: Int32) -> (Client?, SessionTable.Identity?) {
        state.withLock { $0.table.clientAndIdentity(descriptor) }
    }
}

extension SessionMonitor.Client {
    /// The session as events name it, with the login's user and role once known.
    func info(identity: SessionTable.Identity?) -> SessionInfo {
        SessionInfo(id: sessionID, frontEnd: "\(wireProtocol)", role: identity?.role ?? role, user: identity?.user ?? user, peer: peer)
    }
}

/// The error a client gets, in its protocol, when its session process dies.
enum SessionLostReply {
    /// Why the process ended, from its wait status, for the client and the log.
    /// The signal that ended the process, from its wait status (nil: it exited, or unknown).
    static func signal(waitStatus: Int32?) -> Int32? {
        waitStatus.flatMap { $0 & 0x7f == 0 ? nil : $0 & 0x7f }
    }

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
        guard let buffer = FrontEnd.of(client.wireProtocol).lostReply(message(cause: cause)) else { return }
        // Best effort, never blocking the monitor: the peer may be gone already.
        let flags = fcntl(client.descriptor, F_GETFL)
        _ = fcntl(client.descriptor, F_SETFL, flags | O_NONBLOCK)
        buffer.withUnsafeReadableBytes { raw in
            _ = Glibc.send(client.descriptor, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
        }
        shutdown(client.descriptor, Int32(SHUT_RDWR))
    }
}
