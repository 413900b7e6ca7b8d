import RgateEngine
import RgateIPC
internal import CRgateSystem

/// What every session adapter (text, QAP1, bridge) shares, in one place: the role and its gate,
/// the time limits (the role's evaluation timeout, the hard deadline the zygote enforces), and
/// the per-request records. The adapters only speak their wire protocol.
///
/// A plain struct, so a session instantiates no new type metadata (see ``SessionProcess/warmUpTypes()``).
struct SessionRuntime {
    let engine: REngine
    let assignment: SessionAssignment
    let control: ControlSocket
    /// The role (anonymous or from a login) and the gate every request passes; nil only in the
    /// zygote's warm-up conversations (which run the zygote's own code).
    var access: SessionAccess?

    /// Requests counted since the last tally was sent to the supervisor.
    private var tally = RequestTally()
    private var lastTally: ContinuousClock.Instant

    init(engine: REngine, assignment: SessionAssignment, control: ControlSocket, access: SessionAccess?) {
        lastTally = .now
        self.engine = engine
        self.assignment = assignment
        self.control = control
        self.access = access
    }

    /// The wall-clock limit of one request: the role's, else the server's (nil: none). Bridged
    /// sessions take the assignment's: the supervisor computed it (the request's own limit,
    /// within the role's or the server's).
    var timeout: Duration? {
        let ms = assignment.wireProtocol == .bridge ? assignment.evalTimeoutMilliseconds
            : access?.role?.evalTimeoutMilliseconds ?? assignment.evalTimeoutMilliseconds
        return ms == 0 ? nil : .milliseconds(ms)
    }

    /// Evaluation options under this session's limits.
    func options(printVisible: Bool, captureConditions: Bool = true) -> EvaluationOptions {
        var options = EvaluationOptions(printVisible: printVisible, convertValue: false, timeout: timeout, maxOutputBytes: Int(clamping: assignment.maxOutputBytes))
        options.captureConditions = captureConditions
        return options
    }

    /// Runs `body` under the hard limit: if R does not stop at the deadline (C code, BLAS), the
    /// zygote kills this process `killGrace` later.
    func withHardLimit<T>(_ body: () -> T) -> T {
        guard let timeout else { return body() }
        rgs_watchdog_arm(timeout.wholeMilliseconds + UInt64(assignment.killGraceMilliseconds))
        defer { rgs_watchdog_arm(0) }
        return body()
    }

    /// Evaluates code as the role allows (all of it, or an allow-listed call), under the limits.
    func evaluate(code: UnsafeRawBufferPointer, options: EvaluationOptions) -> (Evaluation, RObject?) {
        guard let access else { return withHardLimit { engine.evaluateKeepingValue(utf8: code, options: options) } }
        return withHardLimit { access.evaluate(engine, code: code, options: options) }
    }

    /// The outcome of an evaluation as request records name it (`ok`, `refused`, `r-error`...).
    static func outcome(of evaluation: Evaluation) -> String {
        evaluation.error.map { $0.code == .rejected ? "refused" : $0.code.rawValue } ?? "ok"
    }

    /// The limit an evaluation hit, as request records name it ("" for none).
    static func limit(of evaluation: Evaluation) -> String {
        evaluation.error?.code == .timeout ? "eval_timeout" : ""
    }

    /// Counts one request (for the server's event stream: request counts, outcomes and latency,
    /// with or without an audit log). The tally goes to the supervisor at most about once a
    /// second, so the hot path pays a clock read and a few additions, not a message.
    mutating func count(_ outcome: RequestTally.Outcome, since start: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        tally.add(outcome, microseconds: (now - start).wholeMicroseconds)
        if now - lastTally >= .seconds(1) { sendTally(at: now) }
    }

    /// Counts an evaluation (see ``count(_:since:)``).
    mutating func count(_ evaluation: Evaluation, since start: ContinuousClock.Instant) {
        count(Self.tallyOutcome(of: evaluation), since: start)
    }

    /// Sends what was counted and not yet sent (sessions call it when they end).
    mutating func sendTally(at now: ContinuousClock.Instant = .now) {
        lastTally = now
        guard !tally.isEmpty else { return }
        try? control.send(.requestTally(tally))
        tally = RequestTally()
    }

    /// How the tally counts an evaluation's outcome.
    static func tallyOutcome(of evaluation: Evaluation) -> RequestTally.Outcome {
        switch evaluation.error?.code {
        case nil: .ok
        case .timeout?: .timeout
        case .rejected?: .refused
        case .cancelled?: .cancelled
        default: .error
        }
    }

    /// Reports one request to the supervisor (for the audit log), when the assignment asks for it.
    func report(command: String, code: UnsafeRawBufferPointer? = nil, outcome: String, since start: ContinuousClock.Instant? = nil, limit: String = "") {
        guard assignment.auditRequests else { return }
        let hash = code.map { SessionAccess.sha256($0) } ?? []
        let micros = start.map { (ContinuousClock.now - $0).wholeMicroseconds } ?? 0
        try? control.send(.requestDone(RequestRecord(
            command: command, codeBytes: UInt64(code?.count ?? 0), codeSHA256: hash, outcome: outcome,
            durationMicroseconds: micros, limit: limit)))
    }

    /// Reports an evaluation (see ``report(command:code:outcome:since:limit:)``).
    func report(command: String, code: UnsafeRawBufferPointer? = nil, evaluation: Evaluation, since start: ContinuousClock.Instant) {
        guard assignment.auditRequests else { return }
        report(command: command, code: code, outcome: Self.outcome(of: evaluation), since: start, limit: Self.limit(of: evaluation))
    }

    /// Whether `name` is a name R would parse as a symbol (any Unicode letter or `.` first, then
    /// letters, digits, `.` and `_`), as QAP1's `assignSEXP` and bridged calls take names. Not the caller
    /// grammar's stricter ``CallerRequest/isPlainName(_:)`` (ASCII, no leading dot, no reserved words).
    static func isSyntacticName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "." else { return false }
        return name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "_" }
    }
}
