import NIOCore
import RgateEngine
import RgateIPC
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

extension QAP1Session {
    /// Holds a short QAP1 conversation with this process's own R over a socket pair (evals of a
    /// number, a named string vector with an NA and a list, a voidEval, an error), so that what every QAP1 session runs first (Swift
    /// type metadata and lazy globals, the encoder, R's compiled code for these paths) is paid once
    /// in the zygote instead of in every forked session: fewer pages copied per session (each
    /// first use writes runtime caches) and less CPU. Uses the built-in `analyst` role.
    static func warmUp(engine: REngine, settings: WorkerSettings) {
        guard settings.policy.roles["analyst"] != nil else { return }
        var requests = ByteBuffer()
        let exchange: [(QAP1Command, String)] = [
            (.eval, "1+1"), (.voidEval, "invisible(2)"), (.eval, "c(a = 'x', b = NA)"), (.eval, "list(n = 1L, d = 2.5)"),
            (.eval, "stop('e')"),
        ]
        for (command, code) in exchange {
            var payload = ByteBuffer()
            QAP1Parameter.string(code).encode(into: &payload)
            QAP1Header(command: command, length: UInt64(payload.readableBytes)).encode(into: &requests)
            requests.writeBuffer(&payload)
        }
        guard let (client, peer) = ClientConnection.warmUpPair(requests: requests) else { return }
        defer { close(client.descriptor); close(peer) }
        var assignment = ClientConnection.warmUpAssignment(.qap1)
        assignment.anonymousRole = "analyst"
        let session = QAP1Session(
            engine: engine, client: client, assignment: assignment,
            control: ControlSocket(descriptor: -1), settings: settings, sandbox: .zygoteWarmUp(settings: settings))
        _ = session.serve()
    }
}
