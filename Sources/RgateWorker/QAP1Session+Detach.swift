import NIOCore
import RgateEngine
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

/// Rserve's detach and attach (the sockets: ``DetachListener``).
extension QAP1Session {
    /// Rserve's detach: answer with a port and a 32-byte key, close the connection, keep the R
    /// session, and resume it on the first connection to that port (from the same address) that
    /// sends the key. With code (`detachedVoidEval`), evaluate it while detached and answer its
    /// outcome to the attaching client. Unlike Rserve, the port listens on the address the client
    /// used (not on every interface) and waits at most the idle timeout.
    func detach(evaluating code: [UInt8]?) -> Bool {
        var pending: (Evaluation, RObject?)?
        if let code, let error = code.withUnsafeBytes({ engine.checkSyntax(utf8: $0) }) {
            // Parse errors are answered before detaching, as Rserve does.
            return respond(error: error.code == .parseIncomplete ? .parseIncomplete : .parseError)
        }
        guard let (listener, port, peer) = DetachListener.listenBesides(client.descriptor, socket: sandbox.takeDetachSocket()) else { return respond(error: .detachFailed) }
        var key = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = rng.next() }
        var payload = ByteBuffer.fresh()
        QAP1Parameter.int(Int32(port)).encode(into: &payload)
        QAP1Parameter.bytes(ByteBuffer(bytes: key)).encode(into: &payload)
        guard respond(.responseOK, payload: payload) else { close(listener); return false }
        shutdown(client.descriptor, Int32(SHUT_RDWR))
        close(client.descriptor)
        engine.cancelWhenPeerCloses(nil) // detached: the evaluation must go on without a client
        if let code {
            pending = withHardLimit { code.withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: options) } }
        }
        defer { close(listener) }
        let deadline = assignment.idleTimeoutMilliseconds == 0 ? UInt32.max : assignment.idleTimeoutMilliseconds
        guard let attached = DetachListener.awaitAttach(listener: listener, key: key, peer: peer, timeoutMilliseconds: deadline) else {
            ended = .idleTimeout
            return false
        }
        client = ClientConnection(descriptor: attached)
        client.setIdleTimeout(milliseconds: assignment.idleTimeoutMilliseconds)
        engine.cancelWhenPeerCloses(attached)
        buffer.clear()
        decoder = QAP1MessageDecoder(maximumPayloadBytes: assignment.maxRequestBytes)
        if let (evaluation, _) = pending, let error = evaluation.error {
            return respond(error: error.isParseError ? (error.code == .parseIncomplete ? .parseIncomplete : .parseError) : .rError)
        }
        return respondOK()
    }
}
