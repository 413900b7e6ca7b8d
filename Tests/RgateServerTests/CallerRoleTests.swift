import Foundation
import RgateClient
import RgateModel
import Testing

/// The Swift client against a server whose anonymous role is a restricted caller.
@Suite("Caller role from the Swift client")
struct CallerRoleTests {
    static func makeServer() throws -> (ServerProcess, String) {
        let dir = NSTemporaryDirectory() + "rgate-caller-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "score <- function(x) sum(x) * 2\nadd <- function(a, b) a + b\n".write(toFile: dir + "/model.R", atomically: true, encoding: .utf8)
        try """
            anonymous_role: scorer
            roles:
              scorer:
                base: caller
                functions: [score, add, stats::median]
                source: \(dir)/model.R
            """.write(toFile: dir + "/rgate.yaml", atomically: true, encoding: .utf8)
        return (try ServerProcess(["--config", dir + "/rgate.yaml"]), dir)
    }

    @Test func allowListedCallsWorkAndEverythingElseIsRefused() async throws {
        let (server, dir) = try Self.makeServer()
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        try await QAP1Client.withConnection(host: "127.0.0.1", port: server.qapPort) { r in
            #expect(try await r.callAllowed("add", [.double([1]), .double([2])]) == .double([3]))
            #expect(try await r.callAllowed("add", [.double([10]), .integer([1])], names: ["b", "a"]) == .double([11]))
            #expect(try await r.callAllowed("score", [.double([1, 2, 3])]) == .double([12]))
            #expect(try await r.callAllowed("stats::median", [.double([5, 1, 3])]) == .double([3]))
            #expect(try await r.eval("add(1, 2)") == .double([3]))
            // Not allow-listed, not data, not this grammar: refused with the reason.
            for code in ["system('id')", "get('system')('id')", "add(Sys.getpid(), 0)", "x <- 1", "stats::sd(1)"] {
                do {
                    _ = try await r.eval(code)
                    Issue.record("accepted: \(code)")
                } catch let failure as QAP1Client.Failure {
                    #expect(failure.message.contains("may only call"), "\(code): \(failure.message)")
                }
            }
            // A call object (any role's `call`) is not for callers.
            await #expect(throws: QAP1Client.Failure.self) { try await r.call("add", [.double([1]), .double([2])]) }
            // Data only: a language object cannot be assigned.
            await #expect(throws: QAP1Client.Failure.self) {
                try await r.assign("x", RValue(.language([RValue(.symbol("system")), .character(["id"])])))
            }
            #expect(try await r.callAllowed("add", [.double([2]), .double([2])]) == .double([4]))
        }
    }
}
