import Foundation
import Glibc
import Logging
import NIOCore
import RgateBridge
import RgateIPC
import RgateModel
import RgatePolicy
import RgateQAP1
import RgateServer
import ServiceLifecycle
import Testing

/// An in-process supervisor (real zygote and session processes, QAP1 on an ephemeral port) whose
/// session API the tests drive.
final class InProcessServer: Sendable {
    let server: RgateServer
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    init(eventSinks: [any ServerEventSink] = [], _ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws {
        var configuration = ServerConfiguration()
        configuration.textPort = nil
        configuration.qapPort = 0
        configuration.warmWorkers = 2
        configuration.workerExecutable = ServerProcess.workerBinary
        configuration.workerWaitTimeout = .seconds(5)
        configure(&configuration)
        var logger = Logger(label: "rgate-test")
        logger.logLevel = .warning
        let (listening, continuation) = AsyncStream.makeStream(of: Void.self)
        server = try RgateServer(configuration: configuration, logger: logger, eventSinks: eventSinks) { _ in continuation.yield() }
        group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: logger)
        let group = self.group
        running = Task { try await group.run() }
        for await _ in listening { break }
    }

    var sessions: SessionBroker { server.sessions }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
    }
}

extension SessionChannel {
    func eval(_ code: String, format: BridgeValueFormat = .qap1, transcript: Bool = true) async throws -> BridgeReply {
        try await send(.evaluate(code: ByteBuffer(string: code), format: format, transcript: transcript))
    }
}

func qap1(_ value: RValue) throws -> BridgeValue {
    var buffer = ByteBuffer()
    try QAP1SEXP.encode(value, into: &buffer)
    return BridgeValue(format: .qap1, bytes: buffer)
}

func decoded(_ reply: BridgeReply) throws -> RValue {
    let value = try #require(reply.value, "no value in \(reply)")
    #expect(value.format == .qap1)
    return try QAP1SEXP.decode(value.bytes)
}

@Suite("The supervisor's session API drives real session processes", .serialized, .timeLimit(.minutes(3)))
struct SessionBrokerTests {
    @Test func evaluateAssignFetchInEveryFormatAndList() async throws {
        let server = try await InProcessServer()
        defer { Task { await server.stop() } }
        try await server.sessions.withSession(SessionSpec(role: "analyst", frontEnd: "test")) { session in
            let sum = try await session.eval("x <- 1:10\nsum(x)")
            #expect(sum.succeeded)
            #expect(sum.visible)
            #expect(sum.transcript == "[1] 55\n")
            #expect(try decoded(sum).payload == .integer([55]))

            // State is kept between requests; warnings and messages come back apart.
            let noisy = try await session.eval("message('hi'); warning('careful'); as.numeric(x[2])")
            #expect(try decoded(noisy).payload == .double([2]))
            #expect(noisy.messages == ["hi\n"])
            #expect(noisy.warnings.map(\.message) == ["careful"])
            #expect(noisy.console.contains { $0.isStderr && $0.text.contains("careful") })

            let assigned = try await session.send(.assign(name: "v", value: try qap1(RValue(.double([1.5, nil, 3]), attributes: [RAttribute(name: "names", value: .character(["a", "b", "c"]))]))))
            #expect(assigned.succeeded)
            let back = try await session.send(.fetch(name: "v", format: .qap1))
            #expect(try decoded(back).names == ["a", "b", "c"])
            #expect(try decoded(back).payload == .double([1.5, nil, 3]))

            let printed = try await session.send(.fetch(name: "v", format: .print))
            #expect(String(buffer: try #require(printed.value).bytes) == "  a   b   c \n1.5  NA 3.0 \n")

            // RDS bytes straight from serialize(), and back in under another name.
            let rds = try await session.send(.fetch(name: "v", format: .rds))
            let bytes = try #require(rds.value)
            #expect(bytes.format == .rds)
            #expect(Array(bytes.bytes.readableBytesView.prefix(2)) == Array("X\n".utf8))
            #expect(try await session.send(.assign(name: "w", value: bytes)).succeeded)
            #expect(try decoded(try await session.eval("identical(v, w)")).payload == .logical([true]))

            let frame = try await session.send(.fetch(name: "nope", format: .qap1))
            #expect(frame.failure?.code == .notFound)
            // Broken values are refused with a clear error; the session goes on.
            let garbage = BridgeValue(format: .qap1, bytes: ByteBuffer(bytes: [0xff, 0xff, 0xff, 0xff, 1, 2]))
            #expect(try await session.send(.assign(name: "g", value: garbage)).failure?.code == .badRequest)
            let badRDS = BridgeValue(format: .rds, bytes: ByteBuffer(string: "X\nnot really"))
            #expect(try await session.send(.assign(name: "g", value: badRDS)).failure?.code == .badRequest)
            #expect(try await session.send(.assign(name: "", value: try qap1(.null))).failure?.code == .badRequest)
            let text = BridgeValue(format: .print, bytes: ByteBuffer(string: "1"))
            #expect(try await session.send(.assign(name: "g", value: text)).failure?.code == .unsupportedFormat)

            _ = try await session.eval("df <- data.frame(a = 1:3, b = letters[1:3])")
            let listed = try await session.send(.listObjects)
            #expect(listed.objects.map(\.name) == ["df", "v", "w", "x"])
            let df = try #require(listed.objects.first)
            #expect(df.classes == ["data.frame"])
            #expect(df.type == "list")
            #expect(df.length == 2)
            #expect(df.bytes > 0)
            let dfPrinted = try await session.send(.fetch(name: "df", format: .print))
            #expect(String(buffer: try #require(dfPrinted.value).bytes).contains("3 3 c"))

            let called = try await session.send(.call(function: "sum", arguments: [
                BridgeArgument(value: try qap1(.double([1, 2, nil]))), BridgeArgument(label: "na.rm", value: try qap1(.logical([true]))),
            ], format: .qap1))
            #expect(try decoded(called).payload == .double([3]))
            let bad = try await session.send(.call(function: "sum(1); system", arguments: [], format: .qap1))
            #expect(bad.failure?.code == .badRequest)
            let json = try await session.eval("1", format: .json)
            #expect(json.failure?.code == .unsupportedFormat)
        }
        await server.stop()
    }

    @Test func rjsonIsLosslessThroughRAndBack() async throws {
        let server = try await InProcessServer()
        try await server.sessions.withSession(SessionSpec(role: "analyst")) { session in
            let made = try await session.eval("""
                x <- list(i = c(1L, NA), d = c(0.1 + 0.2, NA, NaN, Inf, -Inf, -0, 5e-324), s = c("a", NA, "NA"), l = c(TRUE, NA),
                  z = complex(real = 1.5, imaginary = -2), r = as.raw(c(0, 255)), f = factor(c("u", "v", "u")),
                  dt = as.Date("2024-01-02"), t = as.POSIXct("2024-05-06 07:08:09", tz = "Europe/Paris"),
                  m = matrix(1:6, 2, dimnames = list(c("a", "b"), NULL)), df = data.frame(n = 1:2, s = c("x", "y")),
                  rn = data.frame(v = c(1.5, 2), row.names = c("p", "q")), nested = list(list(NULL)), nul = NULL)
                invisible(TRUE)
                """, format: .none)
            #expect(made.succeeded, "\(made)")
            let fetched = try await session.send(.fetch(name: "x", format: .rjson))
            let json = try #require(fetched.value, "\(fetched)")
            #expect(json.format == .rjson)
            // Back through rgate's own decoder, and through jsonlite's.
            #expect(try await session.send(.assign(name: "y", value: json)).succeeded)
            #expect(try decoded(try await session.eval("identical(x, y)")).payload == .logical([true]))
            #expect(try await session.send(.assign(name: "j", value: try qap1(.character([String(buffer: json.bytes)])))).succeeded)
            let viaJsonlite = try await session.eval("identical(x, jsonlite::unserializeJSON(j))")
            #expect(try decoded(viaJsonlite).payload == .logical([true]), "\(viaJsonlite)")
            let broken = BridgeValue(format: .rjson, bytes: ByteBuffer(string: "{\"type\": \"list\", \"value\": ["))
            #expect(try await session.send(.assign(name: "b", value: broken)).failure?.code == .badRequest)
        }
        await server.stop()
    }

    @Test func errorsAreStructured() async throws {
        let server = try await InProcessServer()
        try await server.sessions.withSession(SessionSpec(role: "analyst")) { session in
            #expect(try await session.eval("1 +").failure?.code == .parseIncomplete)
            #expect(try await session.eval("1 +)").failure?.code == .parseError)
            let failed = try await session.eval("f <- function() stop('boom'); f()")
            let failure = try #require(failed.failure)
            #expect(failure.code == .rError)
            #expect(failure.message == "boom")
            #expect(failure.call == "f()")
            #expect(failure.classes == ["simpleError", "error", "condition"])
            #expect(failed.transcript == "Error in f() : boom\n")
            let custom = try await session.eval("stop(structure(class = c('myError', 'error', 'condition'), list(message = 'mine', call = NULL)))")
            #expect(custom.failure?.classes == ["myError", "error", "condition"])
            #expect(try await session.eval("2").succeeded)
        }
        await server.stop()
    }

    @Test func cancelStopsARunningRequestAndTheSessionGoesOn() async throws {
        let server = try await InProcessServer()
        try await server.sessions.withSession(SessionSpec(role: "analyst")) { session in
            let start = ContinuousClock.now
            async let reply = session.eval("repeat {}")
            try await Task.sleep(for: .milliseconds(400))
            session.cancel()
            let cancelled = try await reply
            #expect(cancelled.failure?.code == .cancelled)
            #expect(ContinuousClock.now - start < .seconds(3))
            // The cancel that stopped it does not stop the next request.
            let next = try await session.eval("Sys.sleep(0.3); 7")
            #expect(try decoded(next).payload == .double([7]))
            // A cancel while idle does nothing.
            session.cancel()
            try await Task.sleep(for: .milliseconds(100))
            #expect(try decoded(try await session.eval("8")).payload == .double([8]))

            // Cancelling the awaiting task cancels its request.
            let task = Task { try await session.eval("repeat {}") }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            #expect(try await task.value.failure?.code == .cancelled)
            #expect(try await session.eval("9").succeeded)

            // A task cancelled while its request waits behind another's cancels only its own.
            let first = Task { try await session.eval("Sys.sleep(0.8); 10") }
            try await Task.sleep(for: .milliseconds(200))
            let second = Task { try await session.eval("11") }
            try await Task.sleep(for: .milliseconds(100))
            second.cancel()
            do { _ = try await second.value; Issue.record("a withdrawn request answered") } catch let error as SessionError {
                #expect(error.code == .cancelled)
            }
            #expect(try decoded(try await first.value).payload == .double([10]))
            #expect(try decoded(try await session.eval("12")).payload == .double([12]))
        }
        await server.stop()
    }

    @Test func aCrashMidEvaluationFailsTheAwaitingCallWithTheCause() async throws {
        let server = try await InProcessServer()
        let session = try await server.sessions.open(SessionSpec(role: "analyst"))
        let pid = session.pid
        #expect(try decoded(try await session.eval("Sys.getpid()")).payload == .integer([pid]))
        async let reply = session.eval("Sys.sleep(30)")
        try await Task.sleep(for: .milliseconds(300))
        kill(pid, SIGSEGV)
        do {
            _ = try await reply
            Issue.record("a crashed session answered")
        } catch let error as SessionError {
            #expect(error.code == .lost)
            #expect(error.signal == SIGSEGV)
            #expect(error.message.contains("crashed (signal 11)"))
        }
        // Later requests fail the same way, at once.
        do { _ = try await session.eval("1"); Issue.record("a lost session answered") } catch let error as SessionError {
            #expect(error.code == .lost)
        }
        // The server serves on.
        let other = try await server.sessions.open(SessionSpec(role: "analyst"))
        #expect(try await other.eval("1").succeeded)
        other.close()
        await server.stop()
    }

    @Test func killEndsTheSession() async throws {
        let server = try await InProcessServer()
        let session = try await server.sessions.open(SessionSpec(role: "analyst"))
        async let reply = session.eval("Sys.sleep(30)")
        try await Task.sleep(for: .milliseconds(200))
        session.kill()
        do { _ = try await reply; Issue.record("a killed session answered") } catch let error as SessionError {
            #expect(error.code == .lost)
            #expect(error.signal == SIGKILL)
        }
        await server.stop()
    }

    @Test func timeLimitsSoftAndHard() async throws {
        let server = try await InProcessServer { $0.killGrace = .milliseconds(500) }
        try await server.sessions.withSession(SessionSpec(role: "analyst", evalTimeout: .seconds(1))) { session in
            let start = ContinuousClock.now
            let reply = try await session.eval("repeat {}")
            #expect(reply.failure?.code == .timeout)
            #expect(ContinuousClock.now - start < .seconds(4))
            #expect(try await session.eval("1").succeeded)
            // Code R cannot interrupt: the zygote kills the process after the grace.
            do {
                _ = try await session.eval("suspendInterrupts(Sys.sleep(30))")
                Issue.record("uninterruptible code answered")
            } catch let error as SessionError {
                #expect(error.code == .lost)
                #expect(error.timeLimit)
                #expect(error.message.contains("time limit"))
            }
            #expect(ContinuousClock.now - start < .seconds(10))
        }
        await server.stop()
    }

    @Test func anIdleSessionExpires() async throws {
        let server = try await InProcessServer()
        let session = try await server.sessions.open(SessionSpec(role: "analyst", idleTimeout: .seconds(1)))
        #expect(try await session.eval("1").succeeded)
        try await Task.sleep(for: .milliseconds(1800))
        do { _ = try await session.eval("2"); Issue.record("an expired session answered") } catch let error as SessionError {
            #expect(error.code == .ended)
            #expect(error.message.contains("expired"))
        }
        await server.stop()
    }

    @Test func aResultOverTheServersLimitEndsThatSessionOnly() async throws {
        let server = try await InProcessServer { $0.maxResultBytes = 1 << 20 }
        let session = try await server.sessions.open(SessionSpec(role: "analyst"))
        #expect(try await session.eval("x <- numeric(1e6); length(x)").succeeded)
        do { _ = try await session.send(.fetch(name: "x", format: .qap1)); Issue.record("an 8 MB reply passed a 1 MB limit") } catch {
            #expect(error.code == .tooLarge)
            #expect(error.message.contains("max_result_size"))
        }
        let other = try await server.sessions.open(SessionSpec(role: "analyst"))
        #expect(try await other.eval("1").succeeded)
        other.close()
        await server.stop()
    }

    @Test func quitEndsTheSessionWithAReply() async throws {
        let server = try await InProcessServer()
        let session = try await server.sessions.open(SessionSpec(role: "analyst"))
        let reply = try await session.eval("cat('bye\\n'); q()")
        #expect(reply.failure?.code == .quit)
        #expect(reply.transcript == "bye\n")
        do { _ = try await session.eval("1"); Issue.record("answered after q()") } catch let error as SessionError {
            #expect(error.code == .ended)
        }
        await server.stop()
    }

    @Test func sandboxAndRoleLimitsApplyAsForQAP1() async throws {
        let server = try await InProcessServer { c in
            c.policy.roles["scorer"] = Role(name: "scorer", base: .caller, functions: ["sum", "stats::median"])
            c.policy.roles["small"] = Role(name: "small", base: .analyst, memoryLimitBytes: 600 << 20)
            c.policy.roles["quick"] = Role(name: "quick", base: .analyst, evalTimeoutMilliseconds: 1000)
        }
        // The role's time limit applies, and a request's own shorter limit within it.
        try await server.sessions.withSession(SessionSpec(role: "quick")) { session in
            let start = ContinuousClock.now
            let reply = try await session.eval("repeat {}")
            #expect(reply.failure?.code == .timeout)
            #expect(ContinuousClock.now - start < .seconds(3))
        }
        try await server.sessions.withSession(SessionSpec(role: "quick", evalTimeout: .seconds(60))) { session in
            let start = ContinuousClock.now
            let reply = try await session.eval("repeat {}")
            #expect(reply.failure?.code == .timeout) // not raised past the role's
            #expect(ContinuousClock.now - start < .seconds(3))
        }
        try await server.sessions.withSession(SessionSpec(role: "analyst", evalTimeout: .milliseconds(300))) { session in
            let start = ContinuousClock.now
            let reply = try await session.eval("Sys.sleep(5)")
            #expect(reply.failure?.code == .timeout)
            #expect(ContinuousClock.now - start < .seconds(2))
        }
        try await server.sessions.withSession(SessionSpec(role: "scorer", user: "alice")) { session in
            let refused = try await session.eval("system('id')")
            #expect(refused.failure?.code == .forbidden)
            #expect(refused.failure?.message.contains("may only call") == true)
            let allowed = try await session.eval("sum(1, 2)")
            #expect(try decoded(allowed).payload == .double([3]))
            let called = try await session.send(.call(function: "stats::median", arguments: [BridgeArgument(value: try qap1(.double([1, 5, 9])))], format: .qap1))
            #expect(try decoded(called).payload == .double([5]))
            let other = try await session.send(.call(function: "Sys.getenv", arguments: [], format: .qap1))
            #expect(other.failure?.code == .forbidden)
            let code = RValue(.language([RValue(.symbol("system")), .character(["id"])]))
            let notData = try await session.send(.call(function: "sum", arguments: [BridgeArgument(value: try qap1(code))], format: .qap1))
            #expect(notData.failure?.code == .forbidden)
        }
        try await server.sessions.withSession(SessionSpec(role: "small")) { session in
            let big = try await session.eval("x <- numeric(2e8); length(x)")
            #expect(big.failure?.code == .memory, "\(big)")
            if getuid() == 0 {
                // Its own uid (100000 + pid) and no network, as every confined session.
                let uid = try await session.eval("as.integer(strsplit(grep('^Uid:', readLines('/proc/self/status'), value = TRUE), '\\\\s+')[[1]][2]) - Sys.getpid()")
                #expect(try decoded(uid).payload == .integer([100_000]))
                let net = try await session.eval("tryCatch({ s <- socketConnection('127.0.0.1', 9, timeout = 1); 'connected' }, error = function(e) 'refused', warning = function(w) 'refused')")
                #expect(try decoded(net).payload == .character(["refused"]))
            }
        }
        await #expect(throws: SessionError.self) { _ = try await server.sessions.open(SessionSpec(role: "nobody")) }
        await server.stop()
    }

    @Test func batchWorkCannotTakeTheInteractiveShare() async throws {
        let server = try await InProcessServer { c in
            c.maxSessions = 2
            c.workerWaitTimeout = .milliseconds(500)
        }
        let job = try await server.sessions.open(SessionSpec(role: "analyst", workload: .batch))
        do {
            _ = try await server.sessions.open(SessionSpec(role: "analyst", workload: .batch))
            Issue.record("a second batch session got the interactive slot")
        } catch {
            #expect(error.code == .busy)
        }
        let interactive = try await server.sessions.open(SessionSpec(role: "analyst"))
        #expect(try await interactive.eval("1").succeeded)
        // Ending the batch session frees its slot for the next batch session.
        job.close()
        var next: BridgeChannel?
        for _ in 0..<20 where next == nil {
            next = try? await server.sessions.open(SessionSpec(role: "analyst", workload: .batch))
        }
        #expect(try await #require(next).eval("2").succeeded)
        interactive.close()
        next?.close()
        await server.stop()
    }
}

@Suite("A spare confined for one role serving another", .timeLimit(.minutes(2)))
struct SessionBrokerConfinementTests {
    @Test func aRoleWhoseNetworkDiffersFromTheSparesIsRefusedAtOpen() async throws {
        guard getuid() == 0 else { return } // network isolation needs root
        let server = try await InProcessServer()
        // Without users, spares are confined ahead of time for the anonymous role (no network);
        // admin has network access, which a confined process can never get back.
        do {
            let s = try await server.sessions.open(SessionSpec(role: "admin"))
            s.close()
            Issue.record("a confined spare took a role with network access")
        } catch {
            #expect(error.code == .unknownRole)
            #expect(error.message.contains("cannot be confined"))
        }
        let ok = try await server.sessions.open(SessionSpec(role: "analyst"))
        #expect(try await ok.eval("1").succeeded)
        ok.close()
        await server.stop()
    }
}

/// Passes every server event to a test.
final class EventStream: ServerEventSink {
    let events: AsyncStream<ServerEvent>
    private let continuation: AsyncStream<ServerEvent>.Continuation
    init() { (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self) }
    func record(_ event: ServerEvent) { continuation.yield(event) }
}

@Suite("The server's event stream", .timeLimit(.minutes(2)))
struct ServerEventTests {
    @Test func sessionsRequestsAndLossesReachEverySinkWithoutAnAuditLog() async throws {
        let stream = EventStream()
        let server = try await InProcessServer(eventSinks: [stream])
        let session = try await server.sessions.open(SessionSpec(role: "analyst", user: "alice", peer: "job 1"))
        #expect(try await session.eval("1").succeeded)
        #expect(try await session.eval("stop('x')").failure?.code == .rError)
        #expect(try await session.eval("1 +").failure?.code == .parseIncomplete)
        session.close()
        let crash = try await server.sessions.open(SessionSpec(role: "analyst"))
        kill(crash.pid, SIGSEGV)
        var started = 0, tally = RequestTally(), ended: [SessionOutcome] = []
        for await event in stream.events {
            switch event {
            case .sessionStarted(let info):
                started += 1
                #expect(info.frontEnd == "bridge")
                if started == 1 {
                    #expect(info.user == "alice")
                    #expect(info.peer == "job 1")
                }
            case .requestsServed(_, let t): tally.merge(t)
            case .sessionEnded(_, let outcome, _): ended.append(outcome)
            default: break
            }
            if ended.count == 2 { break }
        }
        #expect(started == 2)
        #expect(tally.requests == 3)
        #expect(tally.errors == 2)
        #expect(ended.first == .ended(.clientClosed))
        #expect(ended.last == .lost(cause: "crashed (signal 11)", signal: SIGSEGV))
        let statistics = server.server.statistics
        #expect(statistics.sessionsStarted["bridge"] == 2)
        #expect(statistics.sessionsLost["crashed"] == 1)
        #expect(statistics.requests["bridge"]?.requests == 3)
        #expect(statistics.zygoteStarts == 1)
        #expect(statistics.admissionWaits["interactive"] == 2)
        await server.stop()
    }
}
