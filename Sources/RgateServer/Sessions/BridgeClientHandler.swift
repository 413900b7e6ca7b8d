import NIOCore
import RgateBridge

/// The supervisor's end of one session's data plane, on its channel's event loop: requests
/// queue here and go out one at a time, each when the previous reply has arrived; a cancel goes
/// out at once, for the request in flight only. All state is confined to the event loop.
final class BridgeClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = BridgeFrame
    typealias OutboundOut = ByteBuffer

    /// The channel closed (the session process ended or died) or broke the protocol.
    struct Closed: Error {
        var violation: BridgeError?
    }

    /// A request that was withdrawn before it was sent (its task was cancelled).
    struct Withdrawn: Error {}

    private var queue: CircularBuffer<(token: UInt64, request: BridgeRequest, promise: EventLoopPromise<BridgeReply>)> = []
    private var inFlight: (id: UInt32, token: UInt64, promise: EventLoopPromise<BridgeReply>)?
    private var nextID: UInt32 = 0
    private var closed: Closed?
    /// The session's hello, when it arrived before ``awaitHello(promise:)``.
    private var earlyHello: BridgeReply?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Queues `request`; `promise` gets its reply. `token` names it for ``cancel(token:)``.
    /// Call on the event loop.
    func submit(_ request: BridgeRequest, token: UInt64, promise: EventLoopPromise<BridgeReply>) {
        if let closed {
            promise.fail(closed)
            return
        }
        queue.append((token, request, promise))
        sendNext()
    }

    /// Cancels the request `token` names: still queued, it is withdrawn (its promise fails with
    /// ``Withdrawn``); in flight, the session is asked to stop it. Call on the event loop.
    func cancel(token: UInt64) {
        if let i = queue.firstIndex(where: { $0.token == token }) {
            let entry = queue.remove(at: i)
            entry.promise.fail(Withdrawn())
        } else if inFlight?.token == token {
            cancelInFlight()
        }
    }

    /// Waits for the session's first frame (request id 0: it is confined and ready, or says why
    /// not). Call on the event loop, before any ``submit(_:promise:)``.
    func awaitHello(promise: EventLoopPromise<BridgeReply>) {
        precondition(inFlight == nil && nextID == 0, "the hello comes first")
        // A hello that arrived first counts even if the session has ended since (one that
        // refused to serve writes its reason, then exits).
        if let earlyHello {
            self.earlyHello = nil
            promise.succeed(earlyHello)
            return
        }
        if let closed {
            promise.fail(closed)
            return
        }
        inFlight = (0, 0, promise)
    }

    /// Sends a cancel for the request in flight, if any. Call on the event loop.
    func cancelInFlight() {
        guard let inFlight, inFlight.id != 0, closed == nil, let context else { return }
        context.writeAndFlush(wrapOutboundOut(BridgeFrame.request(.cancel, id: inFlight.id).encoded), promise: nil)
    }

    private func sendNext() {
        guard inFlight == nil, let context, !queue.isEmpty else { return }
        let (token, request, promise) = queue.removeFirst()
        nextID &+= 1
        inFlight = (nextID, token, promise)
        context.writeAndFlush(wrapOutboundOut(BridgeFrame.request(request, id: nextID).encoded), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .reply(let reply) = frame.body, frame.requestID == 0, inFlight == nil, nextID == 0, earlyHello == nil {
            earlyHello = reply
            return
        }
        guard case .reply(let reply) = frame.body, let inFlight, frame.requestID == inFlight.id else {
            fail(Closed(violation: BridgeError(.unexpectedFrame, "a reply for request \(frame.requestID), which is not in flight")), context: context)
            return
        }
        self.inFlight = nil
        inFlight.promise.succeed(reply)
        sendNext()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(Closed(), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(Closed(violation: error as? BridgeError ?? BridgeError(.badFrame, "\(error)")), context: context)
    }

    private func fail(_ error: Closed, context: ChannelHandlerContext) {
        if closed == nil { closed = error }
        let pending = (inFlight.map { [$0.promise] } ?? []) + queue.map(\.promise)
        inFlight = nil
        queue.removeAll()
        pending.forEach { $0.fail(closed!) }
        context.close(promise: nil)
    }
}
