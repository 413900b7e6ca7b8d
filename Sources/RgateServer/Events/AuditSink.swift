/// Writes the audit log from the event stream: session start and end, logins, and every
/// request in detail.
struct AuditSink: ServerEventSink {
    let log: AuditLog

    func record(_ event: ServerEvent) {
        switch event {
        case .sessionStarted(let s):
            log.write(event: "session start", session: s.id, peer: s.peer, user: s.user, role: s.role, protocol: s.frontEnd)
        case .sessionEnded(let s, let outcome, _):
            let text = switch outcome {
            case .ended(let reason): "\(reason)"
            case .lost(let cause, _): "lost: worker process \(cause)"
            }
            log.write(event: "session end", session: s.id, peer: s.peer, user: s.user, role: s.role, protocol: s.frontEnd, outcome: text)
        case .request(let s, let r):
            let hash = hexString(r.codeSHA256)
            log.write(
                event: "request", session: s.id, peer: s.peer, user: s.user, role: s.role, protocol: s.frontEnd,
                fields: [
                    ("command", .string(r.command)), ("code_bytes", .int(Int(r.codeBytes))),
                    ("code_sha256", hash.isEmpty ? nil : .string(hash)),
                    ("duration_ms", .double(Double(r.durationMicroseconds) / 1000)),
                    ("limit", r.limit.isEmpty ? nil : .string(r.limit)),
                ],
                outcome: r.outcome)
        case .login(let session, let peer, let user, let role, let outcome):
            log.write(event: "login", session: session, peer: peer, user: user, role: role, outcome: outcome.rawValue)
        case .requestsServed, .admissionWaited, .admissionRefused, .limitHit, .zygoteStarted:
            break
        }
    }
}
