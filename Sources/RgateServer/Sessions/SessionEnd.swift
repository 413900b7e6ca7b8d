import RgateBridge
import RgateIPC
#if canImport(Glibc)
import Glibc
#endif

/// How a session ended, as the supervisor learnt it: on purpose (the session said why before
/// exiting) or lost (its process died; the cause comes from the zygote's wait status).
enum SessionEnd: Sendable, Hashable {
    /// The session process ended the session itself.
    case ended(SessionEndReason)
    /// The session process died without saying so.
    case lost(waitStatus: Int32?)

    /// The error a task waiting on the session gets.
    var error: SessionError {
        switch self {
        case .ended(let reason):
            let message = switch reason {
            case .idleTimeout: "the session expired: it was idle past its idle timeout; start a new session"
            case .quit: "the session ended: the code called q(); start a new session"
            case .clientClosed: "the session was closed"
            default: "the session ended (\(reason))"
            }
            return SessionError(.ended, message)
        case .lost(let status):
            let cause = SessionLostReply.cause(waitStatus: status)
            let signal = SessionLostReply.signal(waitStatus: status)
            return SessionError(.lost, "the R session was lost: its process \(cause)", signal: signal == SIGALRM ? nil : signal, timeLimit: signal == SIGALRM)
        }
    }
}
