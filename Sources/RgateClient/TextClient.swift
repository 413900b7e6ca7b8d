import NIOCore
import RgateText

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

    /// A connection for several requests.
    ///
    /// `Sendable`: tasks may share it. Their requests take turns in the order they are made
    /// (the protocol has no request ids: each request's write and reply run alone), so they are
    /// safe but not parallel, and share one R session; use several connections for parallel
    /// work. A task cancelled while waiting for its turn throws `CancellationError` without
    /// sending; one cancelled after sending throws `CancellationError` at once, and its reply is
    /// read and dropped before the next request is sent, so it never reaches another request.
    /// When the server closes the connection, the request in progress and every later one throw
    /// a ``RgateText/TextProtocolError`` (`truncated`).
    public struct Connection: Sendable {
        fileprivate let connection: ClientConnection<TextReply>
        fileprivate let encoding: TextEncoding

        /// Sends `code` in the connection's turn and waits for the reply.
        public func evaluate(_ code: String) async throws -> Result {
            var request = ByteBuffer()
            TextRequest(encodingName: encoding.canonicalName, options: ["status"], code: encoding.encode(code)).encode(into: &request)
            let reply: TextReply
            do {
                reply = try await connection.request(request)
            } catch is ConnectionClosedError {
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

    /// Connects, runs `body` with the connection, then closes it. The connection may be shared
    /// by tasks that `body` starts (see ``Connection``); it must not be used after `body`
    /// returns: its requests then throw.
    public static func withConnection<T: Sendable>(
        host: String, port: Int, encoding: String = "UTF-8",
        _ body: @Sendable (Connection) async throws -> T
    ) async throws -> T {
        let textEncoding = try TextEncoding(named: encoding)
        return try await ClientConnection.withConnection(host: host, port: port, decoder: { TextReplyDecoder() }) { connection in
            try await body(Connection(connection: connection, encoding: textEncoding))
        }
    }

    /// Connects, evaluates `code`, closes.
    public static func evaluate(_ code: String, host: String, port: Int, encoding: String = "UTF-8") async throws -> Result {
        try await withConnection(host: host, port: port, encoding: encoding) { try await $0.evaluate(code) }
    }
}
