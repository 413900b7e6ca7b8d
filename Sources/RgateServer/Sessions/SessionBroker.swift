import Logging
public import RgateBridge
import RgateIPC
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Gives out sessions the supervisor drives itself (``BridgeChannel``), for front ends that
/// have no client socket to hand over: HTTP requests, jobs. Admission is the one every
/// protocol shares (partitioned: batch work holds at most its share of the slots), the session
/// processes are the same warm spares, and each bridged session gets the sandbox and limits of
/// its role exactly as a QAP1 session does.
public final class SessionBroker: SessionProviding, Sendable {
    private let configuration: ServerConfiguration
    private let gate: AdmissionGate
    private let pool: WorkerPool
    private let monitor: SessionMonitor
    private let ids: SessionIDs
    private let auditRequests: Bool
    private let events: ServerEvents
    private let logger: Logger

    init(configuration: ServerConfiguration, gate: AdmissionGate, pool: WorkerPool, monitor: SessionMonitor, ids: SessionIDs, auditRequests: Bool, events: ServerEvents, logger: Logger) {
        self.events = events
        self.configuration = configuration
        self.gate = gate
        self.pool = pool
        self.monitor = monitor
        self.ids = ids
        self.auditRequests = auditRequests
        self.logger = logger
    }

    public func openSession(_ spec: SessionSpec) async throws(SessionError) -> any SessionChannel {
        try await open(spec)
    }

    /// ``openSession(_:)`` with the concrete channel type.
    public func open(_ spec: SessionSpec) async throws(SessionError) -> BridgeChannel {
        guard let role = configuration.policy.roles[spec.role] else {
            throw SessionError(.unknownRole, "rgate: role \(spec.role) is not defined by the server's configuration")
        }
        let id = ids.next()
        let waitStart = ContinuousClock.now
        guard await gate.acquire(timeout: configuration.workerWaitTimeout, workload: spec.workload) else {
            events.emit(.admissionRefused(frontEnd: spec.frontEnd, workload: spec.workload))
            logger.warning("session refused: the server is busy", metadata: ["session.id": "\(id)", "workload": "\(spec.workload)"])
            throw SessionError(.busy, "rgate: the server is busy (all \(spec.workload == .batch ? gate.batchLimit : gate.capacity) \(spec.workload) sessions are in use); try again later")
        }
        events.emit(.admissionWaited(frontEnd: spec.frontEnd, workload: spec.workload, duration: .now - waitStart))
        var admitted = true // the slot is released by the monitor once the session is watched
        defer { if admitted { gate.release(spec.workload) } }
        var work = configuration.assignment(for: .bridge, id: id)
        work.anonymousRole = spec.role
        work.user = spec.user ?? ""
        work.peer = spec.peer
        work.auditRequests = auditRequests
        // Bridge sessions take the limit the supervisor computes: the request's, within the role's or server's.
        let roleLimit = role.evalTimeoutMilliseconds ?? work.evalTimeoutMilliseconds
        if let asked = spec.evalTimeout?.milliseconds, asked > 0 {
            work.evalTimeoutMilliseconds = roleLimit == 0 ? asked : min(asked, roleLimit)
        } else {
            work.evalTimeoutMilliseconds = roleLimit
        }
        if let idle = spec.idleTimeout { work.idleTimeoutMilliseconds = idle.milliseconds }
        for _ in 0..<3 {
            let worker: SpareWorker
            do {
                worker = try await pool.checkout()
            } catch {
                throw SessionError(error == .stopping ? .stopping : .busy, "rgate: \(error)")
            }
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                worker.control.close()
                throw SessionError(.busy, "rgate: cannot make a socket pair (errno \(errno))")
            }
            let channel: BridgeChannel
            do {
                channel = try await BridgeChannel.make(descriptor: pair[0], sessionID: id, pid: worker.pid, maximumReplyBytes: UInt64(configuration.maxResultBytes))
            } catch {
                close(pair[0])
                close(pair[1])
                worker.control.close()
                throw SessionError(.busy, "rgate: cannot drive the session's socket: \(error)")
            }
            let client = SessionMonitor.Client(
                sessionID: id, descriptor: -1, wireProtocol: .bridge, peer: spec.peer, role: spec.role, user: spec.user,
                workload: spec.workload, onEnd: { [weak channel] end in channel?.sessionEnded(end) })
            monitor.watch(pid: worker.pid, control: worker.control, client: client, shared: false)
            do {
                try worker.control.send(.assign(work), passing: pair[1])
            } catch {
                monitor.unwatch(control: worker.control, sessionID: id)
                close(pair[1])
                channel.close()
                logger.warning("a warm session process was gone; retrying", metadata: ["worker.pid": "\(worker.pid)"])
                continue
            }
            close(pair[1])
            monitor.confirm(sessionID: id)
            admitted = false // the monitor releases the slot when the session ends
            pool.replenish()
            do {
                try await channel.ready()
            } catch {
                logger.warning("session refused: \(error)", metadata: ["session.id": "\(id)"])
                throw error
            }
            logger.debug("session started", metadata: ["session.id": "\(id)", "worker.pid": "\(worker.pid)", "protocol": "\(spec.frontEnd)"])
            return channel
        }
        throw SessionError(.busy, "rgate: no R session process could take the session")
    }
}

/// The supervisor's session ids (shared by every front end).
final class SessionIDs: Sendable {
    private let counter = Atomic<UInt64>(0)
    func next() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }
}

extension ServerConfiguration {
    /// The part of a session's assignment that comes from the server's settings.
    func assignment(for wireProtocol: WireProtocol, id: UInt64) -> SessionAssignment {
        var a = SessionAssignment(
            sessionID: id, wireProtocol: wireProtocol,
            evalTimeoutMilliseconds: evalTimeout?.milliseconds ?? 0,
            killGraceMilliseconds: killGrace.milliseconds,
            idleTimeoutMilliseconds: idleTimeout?.milliseconds ?? 0,
            maxRequestBytes: UInt64(FrontEnd.of(wireProtocol).maxRequestBytes(self)),
            maxOutputBytes: UInt64(maxOutputBytes),
            sharedSession: sharedSession && wireProtocol == .text,
            allowShutdown: allowShutdown,
            memoryLimitBytes: UInt64(memoryLimitBytes ?? 0),
            fileSizeLimitBytes: UInt64(fileSizeLimitBytes),
            openFilesLimit: UInt32(clamping: openFilesLimit))
        a.anonymousRole = policy.anonymousRole ?? ""
        return a
    }
}
