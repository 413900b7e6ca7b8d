import NIOCore
import Synchronization

/// The frames a client connection has received, handed one at a time to the task reading them.
///
/// The last handler of a client pipeline: the event loop appends each decoded frame, ``next()``
/// takes the oldest. Unlike an `NIOAsyncChannel` iterator, a cancelled ``next()`` only gives up
/// the wait: no frame is lost and the stream goes on, so the next reader gets the frame the
/// cancelled one would have had (``ClientExchange`` relies on this to drop an abandoned reply).
/// When the channel closes or fails, frames already received are still handed out; after them
/// every ``next()`` throws (``ConnectionClosedError`` or the pipeline's error).
///
/// One reader at a time: ``ClientConnection`` lets only the holder of its lock read.
final class InboundQueue<Frame: Sendable>: ChannelInboundHandler, Sendable {
    typealias InboundIn = Frame

    private struct State: Sendable {
        var frames = CircularBuffer<Frame>()
        var reader: CheckedContinuation<Frame, any Error>?
        /// Set once, when the channel closes or fails.
        var end: (any Error)?
    }

    private let state = Mutex(State())

    /// The oldest frame not yet taken, waiting for one if none is there.
    /// - Throws: `CancellationError` when the task is cancelled while waiting (the frame, when it
    ///   comes, stays for the next reader); the reason the stream ended once it has.
    func next() async throws -> Frame {
        if let ready = state.withLock({ Self.take(&$0) }) { return try ready.get() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<Frame, any Error>? in
                    if let ready = Self.take(&state) { return ready }
                    // Checked under the mutex, as in FIFOLock.acquire.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    precondition(state.reader == nil, "two tasks read one client connection")
                    state.reader = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            state.withLock { $0.reader.take() }?.resume(throwing: CancellationError())
        }
    }

    private static func take(_ state: inout State) -> Result<Frame, any Error>? {
        if let frame = state.frames.popFirst() { return .success(frame) }
        if let end = state.end { return .failure(end) }
        return nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let reader = state.withLock { state -> CheckedContinuation<Frame, any Error>? in
            if let reader = state.reader.take() { return reader }
            state.frames.append(frame)
            return nil
        }
        reader?.resume(returning: frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(ConnectionClosedError())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A decoding error leaves the stream out of step: end it here.
        finish(error)
        context.close(promise: nil)
    }

    private func finish(_ error: any Error) {
        let (reader, end) = state.withLock { state in
            if state.end == nil { state.end = error }
            return (state.reader.take(), state.end!)
        }
        reader?.resume(throwing: end)
    }
}
