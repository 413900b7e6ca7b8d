public import Logging
import NIOCore
import NIOSSL
import RgateIPC
import RgateQAP1
import RgateText
public import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The supervisor: owns the listeners, the worker pool and every session, as one `Service`.
///
/// Connections are accepted here and handed, socket and all, to a warm session process forked
/// from the zygote; that process then talks to the client directly, so no request crosses the
/// supervisor. On graceful shutdown the server stops accepting, lets sessions finish for
/// ``ServerConfiguration/shutdownGrace``, then stops every worker process.
public final class RgateServer: Service, Sendable {
    private struct State {
        /// Where the server is in its life: ``run()`` runs once.
        enum Lifecycle { case notStarted, running, stopped }
        var lifecycle = Lifecycle.notStarted
        var listeners: [(TCPListener, WireProtocol)] = []
    }

    /// The one session process of shared-session mode, if it is running.
    private final class SharedSlot: Sendable {
        let worker = Mutex<SpareWorker?>(nil)
    }

    private let configuration: ServerConfiguration
    private let logger: Logger
    private let state = Mutex(State())
    private let shared = SharedSlot()
    private let gate: AdmissionGate
    private let stopper: Stopper

    /// Lets a client's `shutdown` stop the listeners from the monitor thread.
    private final class Stopper: Sendable {
        let listeners = Mutex<[TCPListener]>([])
        func stop() { listeners.withLock { $0 }.forEach { $0.shutdown() } }
    }
    private let pool: WorkerPool
    private let monitor: SessionMonitor
    private let ids = SessionIDs()
    /// Sessions the supervisor drives itself (HTTP, jobs): see ``SessionBroker``.
    public let sessions: SessionBroker
    private let authenticator: Authenticator?
    private let audit: AuditLog?
    private let events: ServerEvents
    private let statisticsSink = StatisticsSink()
    /// The TLS port's context, built at init so a bad certificate or key is refused at start.
    private let tlsContext: NIOSSLContext?
    /// Called once the listeners are bound, with (protocol name, address).
    private let onListening: @Sendable ([(String, String)]) -> Void

    /// Counters of sessions, requests, logins, admission and limits since the server started.
    public var statistics: ServerStatistics { statisticsSink.snapshot }

    /// Creates a server; nothing starts before ``run()``.
    /// - Parameter eventSinks: observers of the server's event stream, besides the audit log
    ///   (when configured) and ``statistics``.
    public init(
        configuration: ServerConfiguration, logger: Logger, eventSinks: [any ServerEventSink] = [],
        onListening: @escaping @Sendable ([(String, String)]) -> Void = { _ in }
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
        let slot = shared
        let gate = AdmissionGate(capacity: configuration.maxSessions, queueLimit: max(64, configuration.maxSessions * 4))
        self.gate = gate
        let stopper = Stopper()
        self.stopper = stopper
        let audit = try configuration.auditLog.map { path throws(ConfigurationError) in
            try AuditLog(path: path, maxBytes: configuration.auditMaxBytes, keep: configuration.auditKeep)
        }
        self.audit = audit
        let events = ServerEvents(sinks: (audit.map { [AuditSink(log: $0)] } ?? []) + [statisticsSink] + eventSinks)
        self.events = events
        let authenticator = configuration.policy.hasUsers
            ? try Authenticator(
                policy: configuration.policy, rsaKeyFile: configuration.qapRSAKeyFile,
                throttle: .init(maxFailures: configuration.loginMaxFailures, window: configuration.loginLockout, delay: configuration.loginDelay),
                logger: logger, events: events)
            : nil
        self.authenticator = authenticator
        let tlsContext = try Self.makeTLSContext(configuration)
        self.tlsContext = tlsContext
        let policy = configuration.policy
        let allowShutdown = configuration.allowShutdown
        monitor = try SessionMonitor(
            logger: logger, authenticator: authenticator, events: events, tlsContext: tlsContext,
            mayShutDown: { roleName, loggedIn in
                guard let role = policy.roles[roleName] else { return false }
                return role.mayShutDown || (allowShutdown && !loggedIn && role.runsArbitraryCode)
            },
            onShutdownRequest: { stopper.stop() }, onSessionEnd: { client, shared in
            if !shared { gate.release(client.workload) }
        }) { wasShared in
            if wasShared { slot.worker.withLock { $0 = nil } }
        }
        let monitorRef = monitor
        pool = try WorkerPool(configuration: configuration, logger: logger, events: events, rsaPublicKeyDER: authenticator?.rsaPublicKeyPEMFree) { pid, status in
            monitorRef.recordExit(pid: pid, status: status)
        }
        sessions = SessionBroker(
            configuration: configuration, gate: gate, pool: pool, monitor: monitor, ids: ids, auditRequests: audit != nil, events: events, logger: logger)
    }

    /// Binds the listeners, starts the workers and serves until graceful shutdown. Runs once: a
    /// second call throws.
    public func run() async throws {
        let first = state.withLock { s -> Bool in
            guard s.lifecycle == .notStarted else { return false }
            s.lifecycle = .running
            return true
        }
        guard first else { throw SystemError("the server is already running or has stopped", errno: EALREADY) }
        defer { state.withLock { $0.lifecycle = .stopped } }
        var listeners: [(TCPListener, WireProtocol)] = []
        if let port = configuration.textPort {
            if configuration.policy.anonymousRole == nil {
                // The seed's protocol has no login: it is served only to an anonymous role.
                logger.warning("the text protocol is off: it has no login, and anonymous_role is none")
            } else {
                listeners.append((try TCPListener(host: configuration.host, port: port), .text))
            }
        }
        if let port = configuration.qapPort {
            listeners.append((try TCPListener(host: configuration.host, port: port), .qap1))
        }
        if let port = configuration.ocapPort {
            listeners.append((try TCPListener(host: configuration.host, port: port), .ocap))
        }
        let tls = try makeTLSTerminator()
        let bound = listeners
        guard !bound.isEmpty || tls != nil else {
            throw SystemError("no listener is enabled (every port is off)", errno: EINVAL)
        }
        monitor.start()
        do {
            try await pool.start()
        } catch {
            monitor.stop()
            await monitor.join()
            throw error
        }
        state.withLock { $0.listeners = bound }
        stopper.listeners.withLock { $0 = bound.map(\.0) }
        for (listener, proto) in bound {
            logger.info("listening", metadata: ["protocol": "\(proto)", "address": "\(listener.address)"])
        }
        if let tls { logger.info("listening", metadata: ["protocol": "qap1-tls", "address": "\(tls.address)"]) }
        onListening(bound.map { ("\($0.1)", $0.0.address) } + (tls.map { [("qap1-tls", $0.address)] } ?? []))

        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let tls {
                    group.addTask {
                        await withDiscardingTaskGroup { connections in
                            for await connection in tls.connections {
                                if self.handOffNow(client: connection.descriptor, wireProtocol: .qap1, peer: connection.peer) { continue }
                                connections.addTask { await self.handOff(client: connection.descriptor, wireProtocol: .qap1, peer: connection.peer) }
                            }
                        }
                    }
                }
                for (listener, proto) in bound {
                    group.addTask {
                        await withDiscardingTaskGroup { connections in
                            // Most connections are handed off on the accept thread itself; only those
                            // that must wait (no free slot or warm worker) go through a task.
                            for await client in listener.connections(fastPath: { self.handOffNow(client: $0, wireProtocol: proto) }) {
                                connections.addTask { await self.handOff(client: client, wireProtocol: proto) }
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new connections")
            for (listener, _) in bound { listener.shutdown() }
            tls?.shutdown()
        }
        await drain()
    }

    private func drain() async {
        let sharedWorker = shared.worker.withLock { w -> SpareWorker? in defer { w = nil }; return w }
        if let sharedWorker { kill(sharedWorker.pid, SIGTERM) }
        if !(await monitor.waitUntilIdle(timeout: configuration.shutdownGrace)) {
            logger.warning("stopping \(monitor.activeCount) sessions still running after the shutdown grace period")
            monitor.killAll()
        }
        pool.stop()
        await pool.waitForExit(timeout: .seconds(5))
        monitor.stop()
        await monitor.join()
        for (listener, _) in state.withLock({ $0.listeners }) { close(listener.descriptor) }
        logger.info("stopped")
    }

    private func makeTLSTerminator() throws -> TLSTerminator? {
        guard let port = configuration.tlsPort, let tlsContext else { return nil }
        return try TLSTerminator(host: configuration.host, port: port, context: tlsContext)
    }

    private static func makeTLSContext(_ configuration: ServerConfiguration) throws -> NIOSSLContext? {
        guard configuration.tlsPort != nil, let certificate = configuration.tlsCertificateFile, let key = configuration.tlsKeyFile else { return nil }
        do {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            if let ca = configuration.tlsClientCAFile {
                tls.certificateVerification = .noHostnameVerification
                tls.trustRoots = .file(ca)
            }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ConfigurationError(origin: "tls_cert_file/tls_key_file", reason: "cannot use \(certificate) and \(key): \(error)")
        }
    }

    private func assignment(for wireProtocol: WireProtocol, id: UInt64, client: Int32, peer: String? = nil) -> SessionAssignment {
        var a = configuration.assignment(for: wireProtocol, id: id)
        a.loginMethods = authenticator?.loginMethods ?? []
        a.auditRequests = audit != nil
        a.tlsSwitch = tlsContext != nil && FrontEnd.of(wireProtocol).offersTLSSwitch && peer == nil // not inside TLS already
        if let peer { a.peer = peer } else if audit != nil || authenticator != nil { a.peer = peerAddress(client) }
        return a
    }

    private func client(_ descriptor: Int32, id: UInt64, _ wireProtocol: WireProtocol, _ work: SessionAssignment) -> SessionMonitor.Client {
        SessionMonitor.Client(sessionID: id, descriptor: descriptor, wireProtocol: wireProtocol, peer: work.peer, role: work.anonymousRole)
    }

    /// Hands a connection to a warm session process at once when a slot and a worker are free;
    /// false (nothing done) otherwise. Runs on the accept thread: no task hop on the fast path.
    private func handOffNow(client: Int32, wireProtocol: WireProtocol, peer: String? = nil) -> Bool {
        guard !(configuration.sharedSession && wireProtocol == .text) else { return false }
        guard gate.tryAcquire() else { return false }
        guard let worker = pool.tryCheckout() else {
            gate.release()
            return false
        }
        let id = ids.next()
        let copy = dup(client)
        guard copy >= 0 else {
            gate.release()
            worker.control.close()
            return false
        }
        let work = assignment(for: wireProtocol, id: id, client: client, peer: peer)
        monitor.watch(pid: worker.pid, control: worker.control, client: self.client(copy, id: id, wireProtocol, work), shared: false)
        do {
            try worker.control.send(.assign(work), passing: client)
            monitor.confirm(sessionID: id)
        } catch {
            // That spare is gone (the monitor cleans it up); let the slow path find another.
            monitor.unwatch(control: worker.control, sessionID: id)
            close(copy)
            gate.release()
            return false
        }
        close(client)
        pool.replenish()
        return true
    }

    /// Gives a connection to a session process. Never throws: failures are told to the client.
    private func handOff(client: Int32, wireProtocol: WireProtocol, peer: String? = nil) async {
        let id = ids.next()
        let work = assignment(for: wireProtocol, id: id, client: client, peer: peer)
        if !work.sharedSession {
            let waitStart = ContinuousClock.now
            guard await gate.acquire(timeout: configuration.workerWaitTimeout) else {
                events.emit(.admissionRefused(frontEnd: "\(wireProtocol)", workload: .interactive))
                logger.warning("connection refused: \(configuration.maxSessions) sessions are running", metadata: ["session.id": "\(id)"])
                refuse(client: client, wireProtocol: wireProtocol, message: "Error: rgate: the server is busy (all \(configuration.maxSessions) sessions are in use); try again later\n")
                return
            }
            events.emit(.admissionWaited(frontEnd: "\(wireProtocol)", workload: .interactive, duration: .now - waitStart))
        }
        var admitted = !work.sharedSession
        defer { if admitted { gate.release() } }
        for _ in 0..<3 {
            let worker: SpareWorker
            do {
                worker = try await takeWorker(shared: work.sharedSession)
            } catch {
                logger.warning("connection refused: \(error)", metadata: ["session.id": "\(id)"])
                refuse(client: client, wireProtocol: wireProtocol, message: "Error: rgate: \(error)\n")
                return
            }
            let copy = dup(client)
            guard copy >= 0 else { break }
            let handle = self.client(copy, id: id, wireProtocol, work)
            monitor.watch(pid: worker.pid, control: worker.control, client: handle, shared: work.sharedSession)
            do {
                try worker.control.send(.assign(work), passing: client)
                monitor.confirm(sessionID: id)
                admitted = false // the slot is released when the monitor sees the session end
                close(client)
                if !work.sharedSession { pool.replenish() }
                logger.debug("session started", metadata: ["session.id": "\(id)", "worker.pid": "\(worker.pid)", "protocol": "\(wireProtocol)"])
                return
            } catch {
                // That worker is gone; the monitor reports it. Try another.
                monitor.unwatch(control: worker.control, sessionID: id)
                close(copy)
                logger.warning("a warm worker was gone; retrying", metadata: ["worker.pid": "\(worker.pid)"])
                if work.sharedSession { shared.worker.withLock { $0 = nil } }
            }
        }
        refuse(client: client, wireProtocol: wireProtocol, message: "Error: rgate: no R worker could take the session\n")
    }

    private func takeWorker(shared wantsShared: Bool) async throws -> SpareWorker {
        guard wantsShared else { return try await pool.checkout() }
        if let existing = shared.worker.withLock({ $0 }) { return existing }
        let worker = try await pool.checkout()
        let winner = shared.worker.withLock { w -> SpareWorker in
            if let existing = w { return existing }
            w = worker
            return worker
        }
        if winner.pid != worker.pid { worker.control.close() } // lost a race; that spare exits on EOF
        return winner
    }

    /// `host:port` of the peer (`[v6]:port` for IPv6).
    private func peerAddress(_ descriptor: Int32) -> String {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
        }
        guard ok == 0 else { return "" }
        var host = [CChar](repeating: 0, count: 64)
        let family = Int32(address.ss_family)
        return withUnsafePointer(to: &address) { p -> String in
            if family == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &host, 64)
                    return "[\(String(cString: host))]:\(UInt16(bigEndian: a.pointee.sin6_port))"
                }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                var addr = a.pointee.sin_addr
                inet_ntop(AF_INET, &addr, &host, 64)
                return "\(String(cString: host)):\(UInt16(bigEndian: a.pointee.sin_port))"
            }
        }
    }

    private func refuse(client: Int32, wireProtocol: WireProtocol, message: String) {
        if let buffer = FrontEnd.of(wireProtocol).busyReply(message) {
            buffer.withUnsafeReadableBytes { raw in
                _ = send(client, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
        }
        close(client)
    }
}
