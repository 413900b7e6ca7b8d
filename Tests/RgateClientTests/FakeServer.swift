import NIOCore
import NIOPosix
import RgateQAP1
import RgateText
import Synchronization

/// The two protocols the clients speak.
enum Wire: String, Sendable, CaseIterable, CustomStringConvertible {
    case qap1, text
    var description: String { rawValue }
}

/// An in-process server on 127.0.0.1 (port 0) that answers each request with its own code, one
/// request at a time and in order, as an R session does; no R. Codes steer it:
/// - `hold…`: the answer waits for ``release(_:)``;
/// - `…close…`: the server closes the connection instead of answering (after the hold, if any);
/// - `…oob…` (QAP1): before answering, an out-of-band message carrying the code, whose answer
///   is appended to the reply (`code|answer`);
/// - anything else: answered after a random delay of up to `maximumDelay`.
///
/// It records the requests in arrival order and counts overlaps: requests that arrived while an
/// earlier one was unanswered (a serialising client never causes any).
final class FakeServer: Sendable {
    let wire: Wire
    let port: Int
    private let maximumDelay: Duration
    private let signals = Signals()
    private let state = Mutex(State())

    private struct State {
        var received: [String] = []
        var unanswered = 0
        var overlaps = 0
    }

    /// Requests received, in arrival order.
    var received: [String] { state.withLock { $0.received } }
    /// Requests that arrived while an earlier one was unanswered.
    var overlaps: Int { state.withLock { $0.overlaps } }

    /// Returns once the server has received a request with this code.
    func waitUntilReceived(_ code: String) async { await signals.wait("received " + code) }
    /// Lets the server answer (or close on) the held request with this code.
    func release(_ code: String) { signals.fire("release " + code) }

    private init(wire: Wire, port: Int, maximumDelay: Duration) {
        self.wire = wire
        self.port = port
        self.maximumDelay = maximumDelay
    }

    /// Starts a server, runs `body` with it, stops it.
    static func with<T: Sendable>(
        _ wire: Wire, maximumDelay: Duration = .milliseconds(1), _ body: @Sendable (FakeServer) async throws -> T
    ) async throws -> T {
        let arrivals = Mutex<FakeServer?>(nil)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let server = arrivals.withLock { $0! }
                    let pipeline = channel.pipeline.syncOperations
                    switch wire {
                    case .qap1:
                        try pipeline.addHandler(ByteToMessageHandler(QAP1MessageDecoder()))
                        try pipeline.addHandler(ArrivalHandler(server: server, convert: incoming(_:) as (QAP1Frame) -> Incoming))
                    case .text:
                        try pipeline.addHandler(ByteToMessageHandler(TextRequestDecoder()))
                        try pipeline.addHandler(ArrivalHandler(server: server, convert: incoming(_:) as (TextRequest) -> Incoming))
                    }
                    return try NIOAsyncChannel<Incoming, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let server = FakeServer(wire: wire, port: listener.channel.localAddress!.port!, maximumDelay: maximumDelay)
        arrivals.withLock { $0 = server }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await listener.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { serving in
                        for try await connection in connections {
                            serving.addTask { await server.serve(connection) }
                        }
                    }
                }
            }
            let result = try await body(server)
            group.cancelAll()
            return result
        }
    }

    /// A decoded message from a client: a request, or a QAP1 client's out-of-band answer.
    fileprivate struct Incoming: Sendable {
        var code: String
        var isOutOfBandAnswer = false
    }

    /// Runs on the event loop as each message arrives: records it and counts overlaps.
    fileprivate func arrived(_ incoming: Incoming) {
        guard !incoming.isOutOfBandAnswer else { return }
        state.withLock { state in
            if state.unanswered > 0 { state.overlaps += 1 }
            state.unanswered += 1
            state.received.append(incoming.code)
        }
        signals.fire("received " + incoming.code)
    }

    private func serve(_ connection: NIOAsyncChannel<Incoming, ByteBuffer>) async {
        try? await connection.executeThenClose { inbound, outbound in
            if wire == .qap1 { try await outbound.write(ByteBuffer(bytes: QAP1Identification.make())) }
            var requests = inbound.makeAsyncIterator()
            while let request = try await requests.next() {
                let code = request.code
                if code.hasPrefix("hold") {
                    await signals.wait("release " + code)
                } else {
                    try await Task.sleep(for: maximumDelay * Double.random(in: 0...1))
                }
                if code.contains("close") { return }
                var answer = code
                if wire == .qap1, code.contains("oob") {
                    try await outbound.write(Self.qap1(.oobMessage | 1, code))
                    guard let reply = try await requests.next(), reply.isOutOfBandAnswer else { return }
                    answer += "|" + reply.code
                }
                // Counted before the reply is written, so a request that follows it is no overlap.
                state.withLock { $0.unanswered -= 1 }
                switch wire {
                case .qap1: try await outbound.write(Self.qap1(.responseOK, answer))
                case .text: try await outbound.write(Self.text(answer))
                }
            }
        }
    }

    private static func qap1(_ command: QAP1Command, _ text: String) throws -> ByteBuffer {
        var payload = ByteBuffer()
        try QAP1Parameter.sexp(.character([text])).encode(into: &payload)
        var out = ByteBuffer()
        QAP1Message(command: command, payload: payload).encode(into: &out)
        return out
    }

    private static func text(_ text: String) -> ByteBuffer {
        var out = ByteBuffer()
        TextReply(body: ByteBuffer(string: TextReply.statusPrefix + "ok\n" + text)).encode(into: &out)
        return out
    }

    /// Turns decoded frames into ``Incoming`` and reports their arrival.
    private final class ArrivalHandler<Frame>: ChannelInboundHandler {
        typealias InboundIn = Frame
        typealias InboundOut = Incoming
        private let server: FakeServer
        private let convert: (Frame) -> Incoming

        init(server: FakeServer, convert: @escaping (Frame) -> Incoming) {
            self.server = server
            self.convert = convert
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let incoming = convert(unwrapInboundIn(data))
            server.arrived(incoming)
            context.fireChannelRead(wrapInboundOut(incoming))
        }
    }

    fileprivate static func incoming(_ request: TextRequest) -> Incoming {
        Incoming(code: String(buffer: request.code))
    }

    fileprivate static func incoming(_ frame: QAP1Frame) -> Incoming {
        guard case .message(let message) = frame else { return Incoming(code: "<oversized>") }
        let isAnswer = message.header.command.rawValue & QAP1Command.response.rawValue != 0
        switch try? QAP1Parameter.parse(message.payload).first {
        case .string(let bytes)?:
            return Incoming(code: String(decoding: bytes, as: UTF8.self), isOutOfBandAnswer: isAnswer)
        case .sexp(let body)?:
            let text = (try? QAP1SEXP.decode(body))?.strings?.first ?? nil
            return Incoming(code: text ?? "<not a string>", isOutOfBandAnswer: isAnswer)
        default:
            return Incoming(code: "<no parameter>", isOutOfBandAnswer: isAnswer)
        }
    }
}

extension QAP1Command {
    fileprivate static func | (command: QAP1Command, code: UInt32) -> QAP1Command {
        QAP1Command(rawValue: command.rawValue | code)
    }
}
