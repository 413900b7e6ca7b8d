/// What kind of work a session is leased for. Admission is shared by every protocol but
/// partitioned: batch work (jobs) may hold only part of the session slots, so it cannot starve
/// interactive clients.
public struct SessionWorkload: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A client waiting for the answer (a QAP1 or text connection, an HTTP request).
    public static let interactive = SessionWorkload(rawValue: 0)
    /// Work nobody is waiting on right now (a job).
    public static let batch = SessionWorkload(rawValue: 1)

    public var description: String { self == .batch ? "batch" : "interactive" }
}

/// A request for a session: who it is for and under which limits.
public struct SessionSpec: Sendable, Hashable {
    /// The role the session runs as (a role of the server's configuration); the caller has
    /// authenticated the user already.
    public var role: String
    /// The user, when one logged in (for logs and audit lines).
    public var user: String?
    /// Interactive or batch, for admission.
    public var workload: SessionWorkload
    /// Wall-clock limit per request; nil: the role's or the server's.
    public var evalTimeout: Duration?
    /// The session ends after this long without a request; nil: the server's idle timeout.
    public var idleTimeout: Duration?
    /// Who asked, for logs and audit lines (`203.0.113.5:41000`, `job 42`).
    public var peer: String
    /// The front end's name, for logs, audit lines and metrics (`http`, `jobs`).
    public var frontEnd: String

    /// Creates a spec.
    public init(role: String, user: String? = nil, workload: SessionWorkload = .interactive, evalTimeout: Duration? = nil,
                idleTimeout: Duration? = nil, peer: String = "", frontEnd: String = "bridge") {
        self.role = role
        self.user = user
        self.workload = workload
        self.evalTimeout = evalTimeout
        self.idleTimeout = idleTimeout
        self.peer = peer
        self.frontEnd = frontEnd
    }
}
