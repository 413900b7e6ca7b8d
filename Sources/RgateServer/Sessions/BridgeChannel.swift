import NIOCore
import NIOPosix
public import RgateBridge
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A session leased through the ``SessionBroker``: the supervisor's end of one session
/// process's data plane (a socket pair), driven with NIO on the shared event loops.
///
/// Requests are served one at a time in the order they are made (they queue on the channel's
/// event loop). ``cancel()`` stops the request in flight; a task cancelled while it awaits a reply
/// cancels its request the same way. When the process dies, every awaiting task fails with the
/// cause the zygote reported (crash signal, killed, time limit); when the session ends on
/// purpose (idle expiry, `q()`, ``close()``), with ``SessionError/Code/ended``.
public final class BridgeChannel: SessionChannel {
    private struct EndState {
        var end: SessionEnd?
        var waiters: [CheckedContinuation<SessionEnd?, Never>] = []
        var closedByUs = false
    }

    public let sessionID: UInt64
    /// The session process.
    public let pid: Int32
    private let channel: any Channel
    private let handler: NIOLoopBound<BridgeClientHandler>
    private let state = Mutex(EndState())
    private let tokens = Atomic<UInt64>(0)

    private init(sessionID: UInt64, pid: Int32, channel: any Channel, handler: NIOLoopBound<BridgeClientHandler>) {
        self.sessionID = sessionID
        self.pid = pid
        self.channel = channel
        self.handler = handler
    }

    /// Wraps the supervisor's end of a session's socket pair (the channel owns the descriptor).
    /// - Parameter maximumReplyBytes: the largest reply accepted (a larger one ends the session).
    static func make(descriptor: Int32, sessionID: UInt64, pid: Int32, maximumReplyBytes: UInt64) async throws -> BridgeChannel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(BridgeFrameDecoder(side: .supervisor, maximumPayloadBytes: maximumReplyBytes)))
                    try channel.pipeline.syncOperations.addHandler(BridgeClientHandler())
                }
            }
            .withConnectedSocket(descriptor).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: BridgeClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return BridgeChannel(sessionID: sessionID, pid: pid, channel: channel, handler: handler)
    }

    deinit {
        channel.close(promise: nil)
    }

    public func send(_ request: BridgeRequest) async throws(SessionError) -> BridgeReply {
        let (end, closedByUs) = state.withLock { ($0.end, $0.closedByUs) }
        if let end { throw end.error }
        if closedByUs { throw SessionError(.ended, "the session was closed") }
        let token = tokens.add(1, ordering: .relaxed).newValue
        return try await exchange(token: token) { handler, promise in handler.submit(request, token: token, promise: promise) }
    }

    /// Waits until the session process says it is confined and ready.
    /// - Throws: ``SessionError`` with the session's reason (`unknown-role` when it cannot be
    ///   confined for the role), or the cause of its end.
    func ready() async throws(SessionError) {
        let hello = try await exchange(token: 0) { handler, promise in handler.awaitHello(promise: promise) }
        if let failure = hello.failure {
            close()
            throw SessionError(.unknownRole, failure.message)
        }
    }

    /// Starts an exchange on the event loop and awaits its reply (the hello may already be
    /// buffered even when the session has ended since, so ended sessions are checked by callers).
    private func exchange(token: UInt64, _ start: @escaping @Sendable (BridgeClientHandler, EventLoopPromise<BridgeReply>) -> Void) async throws(SessionError) -> BridgeReply {
        let promise = channel.eventLoop.makePromise(of: BridgeReply.self)
        let handler = self.handler
        channel.eventLoop.execute { start(handler.value, promise) }
        let outcome: Result<BridgeReply, any Error> = await withTaskCancellationHandler {
            do { return .success(try await promise.futureResult.get()) } catch { return .failure(error) }
        } onCancel: {
            // Only this task's request: withdrawn if still queued, stopped if running.
            let handler = self.handler
            self.channel.eventLoop.execute { handler.value.cancel(token: token) }
        }
        switch outcome {
        case .success(let reply):
            return reply
        case .failure(let error):
            if error is BridgeClientHandler.Withdrawn {
                throw SessionError(.cancelled, "the request was cancelled before the session started it")
            }
            if let violation = (error as? BridgeClientHandler.Closed)?.violation {
                kill()
                if violation.code == .tooLarge {
                    throw SessionError(.tooLarge, "rgate: the result is larger than the server's max_result_size (\(violation.message)); the session was ended")
                }
                throw SessionError(.protocolViolation, "the session process broke the data-plane protocol (\(violation)); it was stopped")
            }
            throw await endError()
        }
    }

    public func cancel() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.cancelInFlight() }
    }

    public func kill() {
        _ = Glibc.kill(pid, SIGKILL)
    }

    public func close() {
        state.withLock { $0.closedByUs = true }
        channel.close(promise: nil)
    }

    /// Called by the session monitor, once, when the session is over.
    func sessionEnded(_ end: SessionEnd) {
        let waiters = state.withLock { s -> [CheckedContinuation<SessionEnd?, Never>] in
            s.end = s.end ?? end
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        waiters.forEach { $0.resume(returning: end) }
        // The channel is not closed here: a reply the session wrote before it ended (q()) may
        // still be on its way; the process's end closes the stream after it.
    }

    /// The error for a request whose channel closed: the monitor's verdict on the session
    /// (which may arrive a moment after the channel sees the end of the stream).
    private func endError() async -> SessionError {
        let end: SessionEnd? = await withTaskGroup(of: SessionEnd?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let known = self.state.withLock { s -> SessionEnd?? in
                        if let end = s.end { return .some(end) }
                        s.waiters.append(continuation)
                        return .none
                    }
                    if let known { continuation.resume(returning: known) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return nil
            }
            let first = await group.next()!
            if first != nil { group.cancelAll(); return first }
            // No verdict in time: release the waiter.
            let waiters = self.state.withLock { s -> [CheckedContinuation<SessionEnd?, Never>] in
                defer { s.waiters.removeAll() }
                return s.waiters
            }
            waiters.forEach { $0.resume(returning: nil) }
            return await group.next()! ?? nil
        }
        if let end { return end.error }
        if state.withLock({ $0.closedByUs }) { return SessionError(.ended, "the session was closed") }
        return SessionError(.lost, "the R session was lost: its process ended unexpectedly")
    }
}
