import RgateIPC
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

extension QAP1Session {
    /// `CMD_switch "TLS"` (Rserve's in-band upgrade): answer OK in clear, hand the socket to the
    /// supervisor, which runs the TLS server side, and continue on the relay it gives back. The
    /// gate has checked that TLS is offered and not yet switched to.
    func switchToTLS(_ parameters: [QAP1Parameter]) -> Bool {
        guard let name = parameters.first?.stringValue else { return respond(error: .invalidParameter) }
        guard name == "TLS" else { return respond(error: .unsupportedCommand) }
        // Bytes after the switch request are the TLS handshake, which is not ours to read.
        guard buffer.readableBytes == 0, respond(.responseOK) else { return closeSilently() }
        guard (try? control.send(.switchToTLS, passing: client.descriptor)) != nil else { return false }
        var relay: Int32?
        while let received = try? control.receive() {
            if case .switchedToTLS = received.message { relay = received.descriptor; break }
            if let fd = received.descriptor { close(fd) }
        }
        guard let relay else {
            WorkerLog.info("session \(assignment.sessionID): the TLS handshake after switch failed")
            return closeSilently()
        }
        // The supervisor holds the TCP socket now (closing, not shutting down: the socket is
        // shared); this process talks to the relay.
        close(client.descriptor)
        state.switchedToTLS()
        client = ClientConnection(descriptor: relay)
        client.setIdleTimeout(milliseconds: assignment.idleTimeoutMilliseconds)
        engine.cancelWhenPeerCloses(relay)
        return true
    }
}
