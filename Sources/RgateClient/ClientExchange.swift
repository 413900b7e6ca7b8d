import NIOCore

/// Exclusive use of a client connection: what a task holds while its request and its reply are
/// on the wire. Only ``ClientConnection/withExchange(_:)`` lends one, so one task at a time
/// writes and reads.
///
/// It remembers a request whose reply nobody has read: a task cancelled while it waits for its
/// reply leaves at once, and the reply stays on the wire. ``send(_:)`` first reads and drops
/// such a reply, so every reply reaches the request it answers, and the server never gets a
/// request before it has answered the one before (QAP1's out-of-band messages depend on that:
/// the server reads the client's next message as their answer).
struct ClientExchange<Frame: Sendable>: Sendable {
    /// What a frame read while waiting for a reply is.
    enum Disposition: Sendable {
        /// The reply (the last frame of a request's answer).
        case reply
        /// A message before the reply, such as QAP1's out-of-band messages; `answer`, when
        /// given, is written back before reading on.
        case interim(answer: ByteBuffer?)
    }

    /// Tells replies from interim messages (and answers the latter); may suspend.
    typealias Classifier = @Sendable (Frame) async -> Disposition

    private let channel: any Channel
    private let inbound: InboundQueue<Frame>
    private let classify: Classifier
    /// True from writing a request until its reply is read, by its task or by the next sender.
    private var replyPending = false

    init(channel: any Channel, inbound: InboundQueue<Frame>, classify: @escaping Classifier) {
        self.channel = channel
        self.inbound = inbound
        self.classify = classify
    }

    /// Sends a request and returns its reply.
    mutating func request(_ request: ByteBuffer) async throws -> Frame {
        try await send(request)
        return try await reply()
    }

    /// Writes a request once the reply to the previous one is read (and dropped, if its task
    /// gave up waiting).
    /// - Throws: `CancellationError` before writing when the task is cancelled; the connection's
    ///   end while reading earlier replies.
    mutating func send(_ request: ByteBuffer) async throws {
        if replyPending { _ = try await reply() }
        try Task.checkCancellation()
        // Not awaited: a failed write closes the channel, and the reply's wait then ends.
        channel.writeAndFlush(request, promise: nil)
        replyPending = true
    }

    /// Reads up to the reply to the last request sent, answering interim messages on the way.
    /// - Throws: `CancellationError` when the task is cancelled while waiting (the reply is then
    ///   read by the next ``send(_:)``); the connection's end.
    mutating func reply() async throws -> Frame {
        precondition(replyPending, "no request is waiting for a reply")
        while true {
            let frame = try await inbound.next()
            switch await classify(frame) {
            case .interim(let answer):
                if let answer { channel.writeAndFlush(answer, promise: nil) }
            case .reply:
                replyPending = false
                return frame
            }
        }
    }

    /// The next frame as it is, for handshakes before any request.
    func next() async throws -> Frame {
        try await inbound.next()
    }
}
