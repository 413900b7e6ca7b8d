public import NIOCore
import NIOPosix
public import RgateText

/// A client for the seed's text protocol (and rgate's `status` extension), on async/await.
///
/// ```swift
/// let result = try await TextClient.evaluate("summary(cars)", host: "127.0.0.1", port: 8080)
/// print(result.text)
/// ```
public enum TextClient {
    /// What the server answered.
    public struct Result: Sendable, Hashable {
        /// `ok`, or the failure code the server reported (`r-error`, `parse-error`, `timeout`, ...).
        public var status: String
        /// What R printed (the console transcript).
        public var text: String
        /// True when the server reported no error.
        public var succeeded: Bool { status == "ok" }
    }

    /// A connection for several requests in a row.
    public struct Connection: Sendable {
        fileprivate let inbound: NIOAsyncChannelInboundStream<TextReply>.AsyncIterator.Box
        fileprivate let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        fileprivate let encoding: TextEncoding

        /// Sends `code` and waits for the reply.
        public func evaluate(_ code: String) async throws -> Result {
            var request = ByteBuffer()
            TextRequest(encodingName: encoding.canonicalName, options: ["status"], code: encoding.encode(code)).encode(into: &request)
            try await outbound.write(request)
            guard let reply = try await inbound.next() else {
                throw TextProtocolError(.truncated, "the server closed the connection without a reply")
            }
            let text = try Self.decode(reply.body, encoding)
            if let (status, rest) = TextReply.splitStatus(text) { return Result(status: status, text: rest) }
            // A server without rgate's extension (e.g. the seed server): no status line.
            return Result(status: text.hasPrefix("Error") ? "error" : "ok", text: text)
        }

        private static func decode(_ body: ByteBuffer, _ encoding: TextEncoding) throws -> String {
            let utf8 = try encoding.decodeToUTF8(body)
            return String(decoding: utf8, as: UTF8.self)
        }
    }

    /// Connects, runs `body` with the connection, then closes it.
    public static func withConnection<T: Sendable>(
        host: String, port: Int, encoding: String = "UTF-8",
        _ body: @Sendable (Connection) async throws -> T
    ) async throws -> T {
        let textEncoding = try TextEncoding(named: encoding)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TextReplyDecoder()))
                    return try NIOAsyncChannel<TextReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = Connection(inbound: .init(inbound.makeAsyncIterator()), outbound: outbound, encoding: textEncoding)
            return try await body(connection)
        }
    }

    /// Connects, evaluates `code`, closes.
    public static func evaluate(_ code: String, host: String, port: Int, encoding: String = "UTF-8") async throws -> Result {
        try await withConnection(host: host, port: port, encoding: encoding) { try await $0.evaluate(code) }
    }
}

extension NIOAsyncChannelInboundStream.AsyncIterator {
    /// A reference to an iterator so a `Sendable` connection can advance it.
    final class Box: @unchecked Sendable {
        // Safe: a Connection is used by one task at a time (requests are strictly sequential).
        private var iterator: NIOAsyncChannelInboundStream<Inbound>.AsyncIterator
        init(_ iterator: NIOAsyncChannelInboundStream<Inbound>.AsyncIterator) { self.iterator = iterator }
        func next() async throws -> Inbound? { try await iterator.next() }
    }
}
