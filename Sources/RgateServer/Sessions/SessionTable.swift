import RgateBridge
import RgateIPC
#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's table of running session processes, as a pure value: every event (a
/// session watched, its hand-off confirmed, an `ended` message, its control socket closing, the
/// zygote reporting its exit, time passing) is a `mutating` transition that returns the actions
/// to run. ``SessionMonitor`` drives it from its poll thread and runs the actions; tests drive
/// it with no processes and no sockets.
///
/// A session process that dies closes its control socket at once, but its exit status comes
/// through the zygote a moment later: a record whose control socket closed waits for that
/// report (or for ``exitWait`` to pass) before its clients are told how the session was lost.
struct SessionTable {
    /// A client a session process serves.
    struct Client: Sendable {
        let sessionID: UInt64
        /// A duplicate of the client's socket (for the lost reply), or -1 (bridged sessions).
        let descriptor: Int32
        let wireProtocol: WireProtocol
        var peer: String = ""
        /// The role the session started with ("" when it must log in).
        var role: String = ""
        /// Switched to TLS in-band: the socket carries TLS now, so no clear-text error may be written to it.
        var switchedToTLS = false
        /// The user the supervisor authenticated before the session started (bridged sessions).
        var user: String? = nil
        /// Which admission share the session holds.
        var workload: SessionWorkload = .interactive
        /// When the session started.
        var started: ContinuousClock.Instant = .now
        /// Bridged sessions: told how the session ended, instead of anything written to a socket.
        var onEnd: (@Sendable (SessionEnd) -> Void)? = nil
    }

    /// Who a session's client turned out to be, once logged in.
    struct Identity: Sendable, Hashable {
        var user: String?
        var role: String
    }

    struct Record {
        let pid: Int32
        let control: ControlSocket
        var clients: [Client]
        let shared: Bool
        /// Set when the control socket closed: the exit report is awaited until then.
        var awaitingExitUntil: ContinuousClock.Instant?
    }

    /// What the driver does.
    enum Action {
        /// Tell observers.
        case emit(ServerEvent)
        /// Close a client socket's duplicate (the session ended on purpose).
        case closeClient(Int32)
        /// The process is gone: close its control socket.
        case closeControl(ControlSocket)
        /// Tell a socket client in its protocol that its session was lost, then close the socket.
        case replyLost(Client, pid: Int32, cause: String)
        /// Tell a bridged session's owner how it ended.
        case notifyEnd(Client, SessionEnd)
        /// A client's session is over: release its admission slot and its login's bookkeeping.
        case released(Client, shared: Bool)
        /// A session process is gone (its shared slot, if it was the shared one, is free).
        case gone(shared: Bool)
        /// No session process is left (drain waiters may go on).
        case idle
    }

    /// How long a closed record waits for the zygote's exit report.
    let exitWait: Duration
    private(set) var records: [Int32: Record] = [:]
    /// Exit statuses reported before their record's control socket closed, by pid (bounded).
    private var exitStatus: [Int32: Int32] = [:]
    private(set) var identities: [UInt64: Identity] = [:]
    /// Sessions with a login being checked.
    private var authenticating: Set<UInt64> = []
    /// Sessions whose start was told (a hand-off confirmed, or its end seen first).
    private var started: Set<UInt64> = []

    init(exitWait: Duration = .milliseconds(500)) {
        self.exitWait = exitWait
    }

    /// Processes being watched.
    var count: Int { records.count }

    /// The control sockets to poll (records still waiting for messages).
    var pollDescriptors: [Int32] { records.compactMap { $0.value.awaitingExitUntil == nil ? $0.key : nil } }

    /// The earliest moment ``tick(now:)`` has something to do.
    var nextDeadline: ContinuousClock.Instant? { records.values.compactMap(\.awaitingExitUntil).min() }

    /// The process behind a control socket.
    func record(_ descriptor: Int32) -> Record? { records[descriptor] }

    /// The client a session process serves and, once it logged in, who it is.
    func clientAndIdentity(_ descriptor: Int32) -> (Client?, Identity?) {
        let client = records[descriptor]?.clients.first
        return (client, client.flatMap { identities[$0.sessionID] })
    }

    // MARK: Transitions

    /// Starts watching a process that is being handed `client` (its start is told at
    /// ``confirm(sessionID:)``, once the hand-off went through).
    mutating func watch(pid: Int32, control: ControlSocket, client: Client, shared: Bool) {
        if let user = client.user { identities[client.sessionID] = Identity(user: user, role: client.role) }
        if records[control.descriptor] != nil {
            records[control.descriptor]!.clients.append(client)
        } else {
            records[control.descriptor] = Record(pid: pid, control: control, clients: [client], shared: shared)
        }
    }

    /// The hand-off went through: the session started.
    mutating func confirm(sessionID: UInt64) -> [Action] {
        guard let client = records.values.lazy.flatMap(\.clients).first(where: { $0.sessionID == sessionID }),
              started.insert(sessionID).inserted else { return [] }
        return [.emit(.sessionStarted(info(client)))]
    }

    /// Forgets a client whose hand-off failed (nothing was told: it never started).
    mutating func unwatch(control descriptor: Int32, sessionID: UInt64) -> [Action] {
        guard var record = records[descriptor] else { return [] }
        record.clients.removeAll { $0.sessionID == sessionID }
        identities[sessionID] = nil
        started.remove(sessionID)
        if record.clients.isEmpty && !record.shared {
            records[descriptor] = nil
            return records.isEmpty ? [.idle] : []
        }
        records[descriptor] = record
        return []
    }

    /// The session process said its (first) client's session ended.
    mutating func ended(control descriptor: Int32, reason: SessionEndReason) -> [Action] {
        guard var record = records[descriptor], !record.clients.isEmpty else { return [] }
        let client = record.clients.removeFirst()
        records[descriptor] = record
        var actions = startedIfUntold(client)
        if client.descriptor >= 0 { actions.append(.closeClient(client.descriptor)) }
        if client.onEnd != nil { actions.append(.notifyEnd(client, .ended(reason))) }
        actions += finish(client, .ended(reason), shared: record.shared)
        return actions
    }

    /// The control socket reached its end: the process is gone. Its clients are told once the
    /// zygote reported the exit status (now, if it already did; else at the report or the deadline).
    mutating func controlClosed(_ descriptor: Int32, now: ContinuousClock.Instant) -> [Action] {
        guard var record = records[descriptor], record.awaitingExitUntil == nil else { return [] }
        if record.clients.isEmpty { return remove(descriptor, status: nil) }
        if let status = exitStatus.removeValue(forKey: record.pid) { return remove(descriptor, status: status) }
        record.awaitingExitUntil = now + exitWait
        records[descriptor] = record
        return []
    }

    /// The zygote reported that `pid` exited with `status`.
    mutating func exitReported(pid: Int32, status: Int32) -> [Action] {
        if let (descriptor, _) = records.first(where: { $0.value.pid == pid && $0.value.awaitingExitUntil != nil }) {
            return remove(descriptor, status: status)
        }
        if records.values.contains(where: { $0.pid == pid }) {
            if exitStatus.count >= 4096 { exitStatus.removeAll() }
            exitStatus[pid] = status
        }
        return []
    }

    /// Time passed: records whose exit report did not come in time are told with an unknown cause.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        let due = records.filter { ($0.value.awaitingExitUntil ?? now.advanced(by: .seconds(1))) <= now }.map(\.key)
        return due.flatMap { remove($0, status: nil) }
    }

    /// Marks the session's client as switched to TLS (no clear text may be written to it).
    mutating func switchedToTLS(control descriptor: Int32) {
        guard records[descriptor]?.clients.isEmpty == false else { return }
        records[descriptor]!.clients[0].switchedToTLS = true
    }

    /// A login check may start for `sessionID`: one at a time, and none after a success.
    mutating func beginLogin(sessionID: UInt64) -> Bool {
        guard identities[sessionID] == nil, !authenticating.contains(sessionID) else { return false }
        authenticating.insert(sessionID)
        return true
    }

    /// A login check finished.
    mutating func loginChecked(sessionID: UInt64, identity: Identity?) {
        authenticating.remove(sessionID)
        if let identity { identities[sessionID] = identity }
    }

    /// Every watched process (to kill at the end of the shutdown grace).
    var pids: [Int32] { records.values.map(\.pid) }

    // MARK: Helpers

    private func info(_ client: Client) -> SessionInfo {
        client.info(identity: identities[client.sessionID])
    }

    private mutating func startedIfUntold(_ client: Client) -> [Action] {
        started.insert(client.sessionID).inserted ? [.emit(.sessionStarted(info(client)))] : []
    }

    private mutating func finish(_ client: Client, _ outcome: SessionOutcome, shared: Bool) -> [Action] {
        let info = info(client)
        identities[client.sessionID] = nil
        authenticating.remove(client.sessionID)
        started.remove(client.sessionID)
        var actions: [Action] = []
        if case .lost(_, let signal) = outcome, signal == SIGALRM { actions.append(.emit(.limitHit(info, limit: "hard_time_limit"))) }
        actions.append(.emit(.sessionEnded(info, outcome, duration: .now - client.started)))
        actions.append(.released(client, shared: shared))
        return actions
    }

    private mutating func remove(_ descriptor: Int32, status: Int32?) -> [Action] {
        guard let record = records.removeValue(forKey: descriptor) else { return [] }
        var actions: [Action] = [.closeControl(record.control)]
        let cause = SessionLostReply.cause(waitStatus: status)
        let signal = SessionLostReply.signal(waitStatus: status)
        for client in record.clients {
            actions += startedIfUntold(client)
            actions.append(client.onEnd != nil ? .notifyEnd(client, .lost(waitStatus: status)) : .replyLost(client, pid: record.pid, cause: cause))
            actions += finish(client, .lost(cause: cause, signal: signal), shared: record.shared)
        }
        actions.append(.gone(shared: record.shared))
        if records.isEmpty { actions.append(.idle) }
        return actions
    }
}
