public import RgateBridge
public import RgateIPC

/// Who a session is, as events name it.
public struct SessionInfo: Sendable, Hashable {
    /// The supervisor's session id.
    public var id: UInt64
    /// The front end: `text`, `qap1`, `ocap`, `bridge`.
    public var frontEnd: String
    /// The role the session runs as ("" while a login is awaited).
    public var role: String
    /// The logged-in user, if any.
    public var user: String?
    /// The client's address (or what the front end named it).
    public var peer: String

    public init(id: UInt64, frontEnd: String, role: String, user: String? = nil, peer: String = "") {
        self.id = id
        self.frontEnd = frontEnd
        self.role = role
        self.user = user
        self.peer = peer
    }
}

/// How a session ended.
public enum SessionOutcome: Sendable, Hashable {
    /// The session ended on purpose (client closed, idle timeout, `q()`...).
    case ended(SessionEndReason)
    /// Its process died; the cause as people read it, and the signal when it died of one.
    case lost(cause: String, signal: Int32?)
}

/// How a login went.
public struct LoginOutcome: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let accepted = LoginOutcome(rawValue: "ok")
    public static let failed = LoginOutcome(rawValue: "failed")
    public static let lockedOut = LoginOutcome(rawValue: "locked out")
    public static let unknownRole = LoginOutcome(rawValue: "unknown role")
    public static let roleSessionLimit = LoginOutcome(rawValue: "role session limit")
}

/// Something that happened in the server. One stream of these feeds every observer: the audit
/// log, the counters of ``ServerStatistics``, and (in the HTTP front end) Prometheus metrics.
public enum ServerEvent: Sendable {
    /// A session process took a client (or a bridged session opened).
    case sessionStarted(SessionInfo)
    /// A session is over.
    case sessionEnded(SessionInfo, SessionOutcome, duration: Duration)
    /// Counters of the requests a session served since its last tally (about once a second).
    case requestsServed(SessionInfo, RequestTally)
    /// One request in detail (only while the audit log is on: it costs a message per request).
    case request(SessionInfo, RequestRecord)
    /// A login was checked.
    case login(session: UInt64, peer: String, user: String, role: String?, outcome: LoginOutcome)
    /// A session request waited for a free slot (and got one).
    case admissionWaited(frontEnd: String, workload: SessionWorkload, duration: Duration)
    /// A session request found every slot (of its share) in use for the whole wait.
    case admissionRefused(frontEnd: String, workload: SessionWorkload)
    /// A limit stopped a request or a session (`eval_timeout`, `hard_time_limit`).
    case limitHit(SessionInfo, limit: String)
    /// The zygote (R) was started; `restart` when it replaced one that died.
    case zygoteStarted(pid: Int32, restart: Bool)
}

/// An observer of ``ServerEvent``s. Called synchronously on the thread where the event
/// happened (the session monitor, an accept loop, a login check): keep it quick and never block.
public protocol ServerEventSink: Sendable {
    /// Takes one event.
    func record(_ event: ServerEvent)
}

/// The server's event stream: every sink gets every event, in order per thread.
struct ServerEvents: Sendable {
    let sinks: [any ServerEventSink]

    /// Whether anyone listens (callers skip building events nobody reads).
    var isEmpty: Bool { sinks.isEmpty }

    func emit(_ event: @autoclosure () -> ServerEvent) {
        guard !sinks.isEmpty else { return }
        let e = event()
        for sink in sinks { sink.record(e) }
    }
}
