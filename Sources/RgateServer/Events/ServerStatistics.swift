public import RgateIPC
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Counters of everything the server did since it started, kept from the event stream with or
/// without an audit log (``RgateServer/statistics``). Labels are bounded: front ends, roles of
/// the configuration, outcomes; never a user, peer or session id.
public struct ServerStatistics: Sendable, Hashable {
    /// Sessions started, by front end.
    public var sessionsStarted: [String: Int] = [:]
    /// Sessions over, by front end.
    public var sessionsEnded: [String: Int] = [:]
    /// Sessions whose process died, by cause (`crashed`, `killed`, `time limit`, `other`).
    public var sessionsLost: [String: Int] = [:]
    /// Requests, by front end, all outcomes merged (with latency buckets).
    public var requests: [String: RequestTally] = [:]
    /// Logins by outcome.
    public var logins: [String: Int] = [:]
    /// Admission waits that got a slot, and refusals, by workload.
    public var admissionWaits: [String: Int] = [:]
    public var admissionRefusals: [String: Int] = [:]
    /// Limits hit, by limit.
    public var limitHits: [String: Int] = [:]
    /// Zygote starts (the first and every restart).
    public var zygoteStarts = 0
    public var zygoteRestarts = 0

    public init() {}

    /// Sessions running (started and not yet over).
    public var sessionsActive: Int { sessionsStarted.values.reduce(0, +) - sessionsEnded.values.reduce(0, +) }
}

/// The sink that keeps ``ServerStatistics``.
final class StatisticsSink: ServerEventSink {
    private let state = Mutex(ServerStatistics())

    var snapshot: ServerStatistics { state.withLock { $0 } }

    func record(_ event: ServerEvent) {
        state.withLock { s in
            switch event {
            case .sessionStarted(let info):
                s.sessionsStarted[info.frontEnd, default: 0] += 1
            case .sessionEnded(let info, let outcome, _):
                s.sessionsEnded[info.frontEnd, default: 0] += 1
                if case .lost(let cause, let signal) = outcome {
                    let kind = switch signal {
                    case SIGKILL?: "killed"
                    case SIGALRM?: "time limit"
                    case nil: cause.contains("exited") ? "exited" : "other"
                    default: "crashed"
                    }
                    s.sessionsLost[kind, default: 0] += 1
                }
            case .requestsServed(let info, let tally):
                s.requests[info.frontEnd, default: RequestTally()].merge(tally)
                if tally.timeouts > 0 { s.limitHits["eval_timeout", default: 0] += Int(tally.timeouts) }
            case .request:
                break
            case .login(_, _, _, _, let outcome):
                s.logins[outcome.rawValue, default: 0] += 1
            case .admissionWaited(_, let workload, _):
                s.admissionWaits["\(workload)", default: 0] += 1
            case .admissionRefused(_, let workload):
                s.admissionRefusals["\(workload)", default: 0] += 1
            case .limitHit(_, let limit):
                s.limitHits[limit, default: 0] += 1
            case .zygoteStarted(_, let restart):
                s.zygoteStarts += 1
                if restart { s.zygoteRestarts += 1 }
            }
        }
    }
}
