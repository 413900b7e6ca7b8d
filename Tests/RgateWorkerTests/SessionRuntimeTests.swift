import Glibc
import NIOCore
import RgateBridge
import RgateEngine
import RgateIPC
import RgateModel
import RgatePolicy
import RgateQAP1
@testable import RgateWorker
import Testing

/// The session runtime and the bridge adapter, in this process: a real R, no session process,
/// the supervisor's side played by the test over socket pairs.
@Suite("Session runtime and the bridge adapter (in-process R)", .serialized, .timeLimit(.minutes(2)))
struct SessionRuntimeTests {
    static func settings() -> WorkerSettings {
        let s = WorkerSettings()
        s.policy.roles["quick"] = Role(name: "quick", base: .analyst, evalTimeoutMilliseconds: 1500)
        return s
    }

    static func assignment(_ wire: WireProtocol, timeout: UInt32 = 0, audit: Bool = false) -> SessionAssignment {
        var a = SessionAssignment(
            sessionID: 1, wireProtocol: wire, evalTimeoutMilliseconds: timeout, killGraceMilliseconds: 500,
            idleTimeoutMilliseconds: 50, maxRequestBytes: 1 << 20, maxOutputBytes: 1 << 20, sharedSession: false)
        a.auditRequests = audit
        return a
    }

    @Test func timeLimitsComeFromTheRoleThenTheServerButBridgesTakeTheSupervisors() async {
        await SharedEngine.run { engine in
            let settings = Self.settings()
            let quick = SessionAccess(settings: settings, anonymousRole: "quick")
            let analyst = SessionAccess(settings: settings, anonymousRole: "analyst")
            let none = ControlSocket(descriptor: -1)
            #expect(SessionRuntime(engine: engine, assignment: Self.assignment(.qap1, timeout: 9000), control: none, access: quick).timeout == .milliseconds(1500))
            #expect(SessionRuntime(engine: engine, assignment: Self.assignment(.qap1, timeout: 9000), control: none, access: analyst).timeout == .milliseconds(9000))
            #expect(SessionRuntime(engine: engine, assignment: Self.assignment(.text), control: none, access: analyst).timeout == nil)
            #expect(SessionRuntime(engine: engine, assignment: Self.assignment(.bridge, timeout: 700), control: none, access: quick).timeout == .milliseconds(700))
        }
    }

    @Test func requestsAreTalliedAndRecordsSentOnlyWhenAudited() async throws {
        let (mine, theirs) = try ControlSocket.pair()
        defer { mine.close(); theirs.close() }
        await SharedEngine.run { engine in
            var quiet = SessionRuntime(engine: engine, assignment: Self.assignment(.qap1), control: theirs, access: nil)
            for code in ["1", "stop('x')", "1 +"] {
                let start = ContinuousClock.now
                let (evaluation, _) = Array(code.utf8).withUnsafeBytes { quiet.evaluate(code: $0, options: quiet.options(printVisible: false)) }
                Array(code.utf8).withUnsafeBytes { quiet.report(command: "eval", code: $0, evaluation: evaluation, since: start) }
                quiet.count(evaluation, since: start)
            }
            quiet.sendTally()
            quiet.sendTally() // nothing new: nothing sent
            let audited = SessionRuntime(engine: engine, assignment: Self.assignment(.qap1, audit: true), control: theirs, access: nil)
            Array("42".utf8).withUnsafeBytes { audited.report(command: "eval", code: $0, outcome: "ok", since: .now) }
        }
        guard case .requestTally(let tally)? = try mine.receive()?.message else { Issue.record("no tally"); return }
        #expect(tally.requests == 3)
        #expect(tally.errors == 2)
        guard case .requestDone(let record)? = try mine.receive()?.message else { Issue.record("the tally was sent twice, or no record"); return }
        #expect(record.command == "eval")
        #expect(record.codeBytes == 2)
        #expect(record.codeSHA256.count == 32)
    }

    @Test(arguments: [
        (EvaluationError.Code?.none, RequestTally.Outcome.ok), (.timeout, .timeout), (.rejected, .refused),
        (.cancelled, .cancelled), (.runtime, .error), (.parseInvalid, .error),
    ])
    func outcomesAsTheTallyCountsThem(_ code: EvaluationError.Code?, _ outcome: RequestTally.Outcome) {
        var evaluation = Evaluation()
        evaluation.error = code.map { EvaluationError(code: $0, message: "") }
        #expect(SessionRuntime.tallyOutcome(of: evaluation) == outcome)
    }

    /// Frames queued before the session runs; it answers them all, then its read times out.
    static func converse(_ requests: [BridgeRequest], access: String = "analyst") async throws -> [BridgeFrame] {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw SessionError(.busy, "socketpair") }
        defer { close(pair[0]); close(pair[1]) }
        var out = ByteBuffer()
        for (i, r) in requests.enumerated() { BridgeFrame.request(r, id: UInt32(i + 1)).encode(into: &out) }
        _ = out.withUnsafeReadableBytes { send(pair[1], $0.baseAddress, $0.count, 0) }
        let session = pair[0]
        let reason = await SharedEngine.run { engine in
            let settings = Self.settings()
            var s = BridgeSession(
                engine: engine, client: ClientConnection(descriptor: session), assignment: Self.assignment(.bridge), control: ControlSocket(descriptor: -1),
                access: SessionAccess(settings: settings, anonymousRole: access))
            s.client.setIdleTimeout(milliseconds: 100)
            return s.serve()
        }
        #expect(reason == .idleTimeout)
        var input = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let flags = fcntl(pair[1], F_GETFL)
        _ = fcntl(pair[1], F_SETFL, flags | O_NONBLOCK)
        while true {
            let n = recv(pair[1], &chunk, chunk.count, 0)
            if n <= 0 { break }
            input.writeBytes(chunk[0..<n])
        }
        var decoder = BridgeFrameDecoder(side: .supervisor, maximumPayloadBytes: 1 << 24)
        var frames: [BridgeFrame] = []
        while let f = try decoder.decodeFrame(buffer: &input) { frames.append(f) }
        return frames
    }

    static func reply(_ frame: BridgeFrame) -> BridgeReply? {
        if case .reply(let r) = frame.body { return r }
        return nil
    }

    @Test func theBridgeAdapterSaysHelloThenAnswersEachRequestInOrder() async throws {
        var value = ByteBuffer()
        try QAP1SEXP.encode(RValue(.integer([1, 2, 3])), into: &value)
        let frames = try await Self.converse([
            .evaluate(code: ByteBuffer(string: "rgt_y <- 2; rgt_y * 21"), format: .qap1, transcript: true),
            .cancel, // while idle: ignored, no reply
            .assign(name: "rgt_v", value: BridgeValue(format: .qap1, bytes: value)),
            .fetch(name: "rgt_v", format: .print),
            .listObjects,
            .evaluate(code: ByteBuffer(string: "warning('w'); stop('boom')"), format: .none, transcript: true),
            .evaluate(code: ByteBuffer(string: "rm(rgt_v, rgt_y)"), format: .none, transcript: false),
        ])
        #expect(frames.map(\.requestID) == [0, 1, 3, 4, 5, 6, 7])
        let replies = frames.compactMap(Self.reply)
        #expect(replies[0].succeeded) // the hello
        #expect(replies[1].transcript == "[1] 42\n")
        #expect(try QAP1SEXP.decode(#require(replies[1].value).bytes).payload == .double([42]))
        #expect(replies[2].succeeded)
        #expect(String(buffer: try #require(replies[3].value).bytes) == "[1] 1 2 3\n")
        let names = replies[4].objects.map(\.name) // other tests share this R: only ours are checked
        #expect(names.contains("rgt_v") && names.contains("rgt_y"))
        #expect(replies[4].objects.first { $0.name == "rgt_v" }?.type == "integer")
        #expect(replies[5].failure?.code == .rError)
        #expect(replies[5].failure?.message == "boom")
        #expect(replies[5].warnings.map(\.message) == ["w"])
        #expect(replies.dropFirst().allSatisfy { $0.durationMicroseconds > 0 })
        #expect(replies[6].succeeded)
    }

    @Test func aCallerRoleIsGatedOnTheBridgeAsOnQAP1() async throws {
        let settings = WorkerSettings()
        #expect(settings.policy.roles["caller"] != nil)
        let frames = try await Self.converse([
            .evaluate(code: ByteBuffer(string: "Sys.getpid()"), format: .qap1, transcript: false),
            .call(function: "system", arguments: [], format: .qap1),
        ], access: "caller")
        let replies = frames.compactMap(Self.reply)
        #expect(replies.count == 3)
        #expect(replies[1].failure?.code == .forbidden)
        #expect(replies[2].failure?.code == .forbidden)
    }
}
