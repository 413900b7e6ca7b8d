import NIOCore
import NIOPosix

/// A client's TCP connection, shared by every task that uses the client: requests take turns
/// (``withExchange(_:)``) in the order they arrive.
///
/// The pipeline is the protocol's decoder followed by an ``InboundQueue``; requests are written
/// straight to the channel. Both clients (``QAP1Client``, ``TextClient``) connect through
/// ``withConnection(host:port:decoder:classify:_:)``.
final class ClientConnection<Frame: Sendable>: Sendable {
    private let channel: any Channel
    private let turns: FIFOLock<ClientExchange<Frame>>

    private init(channel: any Channel, inbound: InboundQueue<Frame>, classify: @escaping ClientExchange<Frame>.Classifier) {
        self.channel = channel
        turns = FIFOLock(ClientExchange(channel: channel, inbound: inbound, classify: classify))
    }

    /// Connects (TCP_NODELAY), runs `body` with the connection, then closes it, also when
    /// `body` throws.
    /// - Parameters:
    ///   - decoder: makes the decoder of the protocol's frames.
    ///   - classify: tells replies from interim messages (see ``ClientExchange/Disposition``).
    static func withConnection<Decoder: NIOSingleStepByteToMessageDecoder, T>(
        host: String, port: Int, decoder: @escaping @Sendable () -> Decoder,
        classify: @escaping ClientExchange<Frame>.Classifier = { _ in .reply },
        _ body: (ClientConnection) async throws -> T
    ) async throws -> T where Decoder.InboundOut == Frame {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let inbound = InboundQueue<Frame>()
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder()))
                    try channel.pipeline.syncOperations.addHandler(inbound)
                    return ClientConnection(channel: channel, inbound: inbound, classify: classify)
                }
            }
        let result: T
        do {
            result = try await body(connection)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return result
    }

    /// Waits for the connection's turn (behind every earlier caller), then runs `body` with
    /// exclusive use of it. Several requests in one `body` run with nothing in between.
    /// - Throws: `CancellationError` when cancelled while waiting; whatever `body` throws.
    func withExchange<R>(_ body: (inout ClientExchange<Frame>) async throws -> R) async throws -> R {
        try await turns.withLock(body)
    }

    /// Sends one request in its turn and returns the reply.
    func request(_ request: ByteBuffer) async throws -> Frame {
        try await withExchange { try await $0.request(request) }
    }

    private func close() async {
        // Already closed (by the server, or a failed write) is fine.
        try? await channel.close()
    }
}
