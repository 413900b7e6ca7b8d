import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import RgateIPC
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// QAP1 over TLS (Rserve's `tls.port`): the supervisor terminates TLS with swift-nio-ssl and
/// relays the plain bytes over a unix socket pair, whose other end is handed to a session
/// process exactly like an accepted TCP socket. Session processes never hold key material.
///
/// The session is handed over only once the TLS handshake has completed (a client that never
/// finishes it holds no session and is dropped after ``handshakeTimeout``). Unlike plain
/// connections, TLS connections cross the supervisor (one relay per direction, on NIO's event
/// loop); detaching a TLS session is not supported.
final class TLSTerminator: Sendable {
    /// A relayed connection: the socket for the session process and the client's address.
    struct Connection: Sendable {
        let descriptor: Int32
        let peer: String
    }

    static let handshakeTimeout: TimeAmount = .seconds(10)

    let address: String
    private let channel: any Channel
    private let stream: AsyncStream<Connection>

    /// Binds the TLS port.
    init(host: String, port: Int, context: NIOSSLContext) throws {
        let (stream, continuation) = AsyncStream<Connection>.makeStream()
        self.stream = stream
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let peer = channel.remoteAddress.map(Self.describe) ?? ""
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(TLSRelay(onReady: { fd in
                        if case .terminated = continuation.yield(.init(descriptor: fd, peer: peer)) { return false }
                        return true
                    }))
                    channel.eventLoop.scheduleTask(in: Self.handshakeTimeout) {
                        // Still no session: the handshake never completed.
                        if (try? channel.pipeline.syncOperations.handler(type: TLSRelay.self))?.started == false {
                            channel.close(promise: nil)
                        }
                    }
                }
            }
        channel = try bootstrap.bind(host: host, port: port).wait()
        let local = channel.localAddress
        address = local.map(Self.describe) ?? "\(host):\(port)"
        channel.closeFuture.whenComplete { _ in continuation.finish() }
    }

    /// Runs the server side of TLS on an already connected client socket (after QAP1's
    /// `CMD_switch "TLS"` was answered in clear); `done` gets the session's end of the relay once
    /// the handshake completed, or nil when it failed (it owns the descriptor it is given).
    static func adopt(_ descriptor: Int32, context: NIOSSLContext, done: @escaping @Sendable (Int32?) -> Void) {
        let finished = Mutex(false)
        let once: @Sendable (Int32?) -> Void = { fd in
            let first = finished.withLock { f in defer { f = true }; return !f }
            if first { done(fd) } else if let fd { Glibc.close(fd) }
        }
        ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(TLSRelay(onReady: { fd in once(fd); return true }, onFailed: { once(nil) }))
                    channel.eventLoop.scheduleTask(in: handshakeTimeout) {
                        if (try? channel.pipeline.syncOperations.handler(type: TLSRelay.self))?.started == false {
                            channel.close(promise: nil)
                        }
                    }
                }
            }
            .withConnectedSocket(descriptor)
            .whenFailure { _ in once(nil) }
    }

    /// Connections whose handshake completed, until ``shutdown()``.
    var connections: AsyncStream<Connection> { stream }

    /// Stops accepting (established relays go on until their sessions end).
    func shutdown() { channel.close(promise: nil) }

    static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "?"
        let port = address.port ?? 0
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// On a TLS channel: after the handshake, opens the socket pair, relays both ways, and
/// yields the session's end of the pair.
private final class TLSRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Called with the session's end of the socket pair once the relay is up; false: nobody
    /// takes it (the connection is closed).
    let onReady: (Int32) -> Bool
    /// Called when the connection ends before the relay was up.
    let onFailed: () -> Void
    var started = false
    private var context: ChannelHandlerContext?
    /// The relay to the session's socket, once it is up.
    private var partner: UnixRelay?
    /// Client bytes that arrived before the partner was ready.
    private var pending: [ByteBuffer] = []
    private var readWanted = false

    init(onReady: @escaping (Int32) -> Bool, onFailed: @escaping () -> Void = {}) {
        self.onReady = onReady
        self.onFailed = onFailed
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !started {
            started = true
            startRelay(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func startRelay(context: ChannelHandlerContext) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        let loop = context.eventLoop
        let me = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .channelInitializer { unix in
                unix.eventLoop.makeCompletedFuture {
                    let relay = UnixRelay(tls: me.value)
                    me.value.partner = relay
                    try unix.pipeline.syncOperations.addHandler(relay)
                }
            }
            .withConnectedSocket(fds[0])
            .whenComplete { result in
                let relay = me.value
                switch result {
                case .success:
                    guard relay.onReady(fds[1]) else {
                        Glibc.close(fds[1])
                        channel.close(promise: nil)
                        return
                    }
                    for buffer in relay.pending { relay.partner?.write(buffer) }
                    relay.pending.removeAll()
                    relay.partner?.flush()
                    if relay.readWanted { relay.readWanted = false; relay.context?.read() }
                case .failure:
                    Glibc.close(fds[0])
                    Glibc.close(fds[1])
                    relay.onFailed()
                    channel.close(promise: nil)
                }
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let partner { partner.write(buffer) } else { pending.append(buffer) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        if !started { onFailed() }
        partner?.closeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !started { onFailed() }
        partner?.closeAll()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    /// Reads from the client only while the session side keeps up (and, after the handshake,
    /// only once that side exists).
    func read(context: ChannelHandlerContext) {
        if !started || (partner?.isWritable ?? false) {
            context.read()
        } else {
            readWanted = true
        }
    }

    // From the partner.
    func write(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    func flush() { context?.flush() }
    func closeAll() { context?.close(promise: nil) }
    var isWritable: Bool { context?.channel.isWritable ?? false }
    func resumeReading() {
        if readWanted { readWanted = false; context?.read() }
    }
}

/// On the supervisor's end of the socket pair: relays the session's bytes to the TLS channel.
private final class UnixRelay: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: TLSRelay
    private var context: ChannelHandlerContext?
    private var readWanted = false

    init(tls: TLSRelay) { self.tls = tls }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { tls.write(unwrapInboundIn(data)) }
    func channelReadComplete(context: ChannelHandlerContext) { tls.flush() }
    func channelInactive(context: ChannelHandlerContext) {
        tls.closeAll()
        context.fireChannelInactive()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        tls.closeAll()
        context.close(promise: nil)
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { tls.resumeReading() }
        context.fireChannelWritabilityChanged()
    }
    func read(context: ChannelHandlerContext) {
        if tls.isWritable { context.read() } else { readWanted = true }
    }

    func write(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    func flush() { context?.flush() }
    func closeAll() { context?.close(promise: nil) }
    var isWritable: Bool { context?.channel.isWritable ?? false }
    func resumeReading() {
        if readWanted { readWanted = false; context?.read() }
    }
}
