/// A leased session: one session process with its own R, sandbox and limits, driven by the
/// supervisor over the data plane. Requests are served one at a time, in the order they are
/// made; ``cancel()`` and ``kill()`` may be called from any task at any time.
public protocol SessionChannel: Sendable {
    /// The supervisor's id of the session (for logs).
    var sessionID: UInt64 { get }

    /// Sends `request` and waits for its reply.
    /// - Throws: ``SessionError`` when the session is gone (with the cause) or ended.
    func send(_ request: BridgeRequest) async throws(SessionError) -> BridgeReply

    /// Stops the running request (its reply says `cancelled`); nothing when idle.
    func cancel()

    /// Kills the session process now; awaiting and later requests fail with ``SessionError/Code/lost``.
    func kill()

    /// Ends the session (its process exits); later requests fail with ``SessionError/Code/ended``.
    func close()
}

/// What gives out sessions: the supervisor's session broker, or a fake in tests.
public protocol SessionProviding: Sendable {
    /// Leases a new session for `spec`, waiting for admission and a warm process. The session
    /// lives until ``SessionChannel/close()``, its idle expiry, or its process's death.
    /// - Throws: ``SessionError`` (`busy`, `unknown-role`, `stopping`).
    func openSession(_ spec: SessionSpec) async throws(SessionError) -> any SessionChannel
}

extension SessionProviding {
    /// Runs `body` with a new session that ends when `body` returns or throws.
    public func withSession<T: Sendable>(_ spec: SessionSpec, _ body: (any SessionChannel) async throws -> T) async throws -> T {
        let session = try await openSession(spec)
        defer { session.close() }
        return try await body(session)
    }
}
