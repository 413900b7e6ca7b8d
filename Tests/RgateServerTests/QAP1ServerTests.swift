import Foundation
import Glibc
import RgateClient
import RgateModel
import RgateQAP1
import Testing

@Suite("QAP1 against a real server with the Swift client", .timeLimit(.minutes(2)))
struct QAP1ServerTests {
    var port: Int { SharedServer.server.qapPort }

    @Test func evalReturnsValues() async throws {
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in
            #expect(try await r.eval("1+1") == .double([2]))
            #expect(try await r.eval("c(a = 1L, b = NA)") == .integer([1, nil], names: ["a", "b"]))
            #expect(try await r.eval("c('x', NA, 'héllo ✓')") == .character(["x", nil, "héllo ✓"]))
            #expect(try await r.eval("NULL") == .null)
            let frame = try await r.eval("data.frame(n = 1:2, s = c('a', 'b'))")
            #expect(frame.columns?.map(\.name) == ["n", "s"])
            #expect(try await r.eval("factor(c('u', 'v', 'u'))").strings == ["u", "v", "u"])
            #expect(try await r.eval("as.numeric(1:5e6)").count == 5_000_000)
        }
    }

    @Test func assignAndCallWithSwiftValues() async throws {
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in
            try await r.assign("x", .double([1, 2, 3, nil]))
            #expect(try await r.eval("sum(x, na.rm = TRUE)") == .double([6]))
            #expect(try await r.call("paste", [.character(["a"]), .character(["b"]), .character([""])], names: ["", "", "sep"]) == .character(["ab"]))
            try await r.voidEval("f <- function(a, b = 2) a * b")
            #expect(try await r.call("f", [.double([21])]) == .double([42]))
            // A symbol argument is passed as a name, not evaluated.
            #expect(try await r.call("deparse", [RValue(.symbol("undefined_thing"))]) == .character(["undefined_thing"]))
        }
    }

    @Test func errorsCarryRsMessage() async throws {
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in
            do {
                _ = try await r.eval("g <- function() stop('boom'); g()")
                Issue.record("expected an error")
            } catch let failure as QAP1Client.Failure {
                #expect(failure.status == .rError)
                #expect(failure.message == "Error in g() : boom")
            }
            do {
                _ = try await r.eval("x y")
                Issue.record("expected a parse error")
            } catch let failure as QAP1Client.Failure {
                #expect(failure.status == .parseError)
                #expect(failure.message == "Error: unexpected symbol in \"x y\"")
            }
            #expect(try await r.eval("'still usable'") == .character(["still usable"]))
        }
    }

    @Test func deeplyNestedResultIsAnErrorNotACrash() async throws {
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { (r: QAP1Client) async throws -> Void in
            await #expect(throws: QAP1Client.Failure.self) {
                _ = try await r.eval("x <- 1L; for (i in 1:5000) x <- list(x); x")
            }
            #expect(try await r.eval("length(x)") == .integer([1]))
        }
    }

    @Test func outOfBandMessagesReachTheClient() async throws {
        let seen = Recorder()
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port, outOfBand: { code, value, expectsReply in
            await seen.add("\(code):\(value.description):\(expectsReply)")
            return expectsReply ? .character(["pong"]) : nil
        }) { (r: QAP1Client) async throws -> Void in
            #expect(try await r.eval("self.oobSend(list('note', 1L), 7L); self.oobMessage('ping', 3L)") == .character(["pong"]))
        }
        let events = await seen.events
        #expect(events.count == 2)
        #expect(events.first?.hasPrefix("7:") == true)
        #expect(events.last == "3:[1] \"ping\":true")
    }

    @Test func detachAndAttachResumeTheSession() throws {
        func message(_ command: UInt32, _ payload: [UInt8]) -> [UInt8] {
            var bytes: [UInt8] = []
            for v in [command, UInt32(payload.count), 0, 0] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
            return bytes + payload
        }
        func string(_ s: String) -> [UInt8] {
            var body = Array(s.utf8) + [0]
            while body.count % 4 != 0 { body.append(0) }
            var header: [UInt8] = []
            withUnsafeBytes(of: (UInt32(4) | UInt32(body.count) << 8).littleEndian) { header += $0 }
            return header + body
        }
        let c = try RawConnection(port: port)
        _ = c.read(32)
        c.send(message(0x002, string("kept <- 41")))
        _ = c.read(16)
        c.send(message(0x031, string("kept <- kept + 1"))) // detachedVoidEval
        let header = try #require(c.read(16))
        #expect(header[0..<4] == [1, 0, 1, 0])
        let payload = try #require(c.read(44))
        let attachPort = Int(payload[4..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        let key = Array(payload[12..<44])
        #expect(c.isClosed())
        let again = try RawConnection(port: attachPort)
        again.send(key)
        let resumed = try #require(again.read(16))
        #expect(resumed[0..<4] == [1, 0, 1, 0])
        again.send(message(0x003, string("kept")))
        let answer = try #require(again.read(16))
        #expect(answer[0..<4] == [1, 0, 1, 0])
        let body = try #require(again.read(16))
        #expect(body.suffix(8).withUnsafeBytes { $0.loadUnaligned(as: Double.self) } == 42)
    }

    @Test func swiftClientDetachesAndAttaches() async throws {
        let detached = try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in
            try await r.voidEval("state <- 'kept'")
            return try await r.detach()
        }
        #expect(detached.key.count == 32)
        let value = try await QAP1Client.withAttachedSession(detached) { r in try await r.eval("state") }
        #expect(value == .character(["kept"]))

        let again = try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in
            try await r.detachedVoidEval("later <- 6 * 7")
        }
        let later = try await QAP1Client.withAttachedSession(again) { r in try await r.eval("later") }
        #expect(later == .double([42]))
    }

    @Test func sessionsAreIsolated() async throws {
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { r in try await r.voidEval("only_here <- 1") }
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { (r: QAP1Client) async throws -> Void in
            #expect(try await r.eval("exists('only_here')") == .logical([false]))
        }
    }

    @Test func aFreshSessionSeesNothingOfTheWorkersWarmUp() async throws {
        // The zygote talks QAP1 and the text protocol to itself before forking (assigning `x`,
        // raising an error, printing): a session must start as a fresh R would.
        try await QAP1Client.withConnection(host: "127.0.0.1", port: port) { (r: QAP1Client) async throws -> Void in
            #expect(try await r.eval("ls(all.names = TRUE)") == .character([]))
            #expect(try await r.eval("geterrmessage()") == .character([""]))
            #expect(try await r.eval("exists('last.warning', envir = baseenv())") == .logical([false]))
            #expect(try await r.eval("c(a = 'x', b = NA)") == RValue(.character(["x", nil]), attributes: [RAttribute(name: "names", value: .character(["a", "b"]))]))
        }
    }

    @Test func unknownCommandAndBadParametersGetRservesCodes() throws {
        let c = try RawConnection(port: port)
        _ = c.read(32)
        func roundTrip(_ command: UInt32, _ payload: [UInt8]) -> UInt32? {
            var bytes: [UInt8] = []
            for v in [command, UInt32(payload.count), 0, 0] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
            c.send(bytes + payload)
            guard let header = c.read(16) else { return nil }
            let length = header[4..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            _ = c.read(Int(length))
            return header[0..<4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }
        #expect(roundTrip(0x999, []) == 0x4301_0002)
        #expect(roundTrip(0x003, []) == 0x4401_0002)
        #expect(roundTrip(0x042, []) == 0x4901_0002) // ctrlEval: removed in Rserve 1.8 too
        // A parameter whose length runs past the message: an error, not an out-of-bounds read.
        #expect(roundTrip(0x003, [0x04, 0xff, 0x00, 0x00, 0x41]) == 0x4401_0002)
        // A message above the maximum is skipped and refused; the connection stays usable.
        var huge: [UInt8] = []
        for v: UInt32 in [0x003, 0, 0, 1] { withUnsafeBytes(of: v.littleEndian) { huge += $0 } }
        c.send(huge)
        let header = try #require(c.read(16))
        #expect(header[0..<4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == 0x4b01_0002)
    }

    @Test func loginIsRequiredWithAPasswordFile() async throws {
        let path = NSTemporaryDirectory() + "rgate-pw-\(getpid())"
        try "alice secret\nbob $5ebe2294ecd0e0f08eab7690d2a6ee69\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let server = try ServerProcess(["--qap-password-file", path])
        defer { server.stop() }
        let value = try await QAP1Client.withConnection(host: "127.0.0.1", port: server.qapPort, user: "bob", password: "secret") { r in
            #expect(r.requiresLogin)
            return try await r.eval("6 * 7")
        }
        #expect(value == .double([42]))
        await #expect(throws: QAP1Client.Failure.self) {
            try await QAP1Client.withConnection(host: "127.0.0.1", port: server.qapPort, user: "alice", password: "wrong") { _ in }
        }
        await #expect(throws: QAP1Client.Failure.self) {
            try await QAP1Client.withConnection(host: "127.0.0.1", port: server.qapPort) { r in try await r.eval("1") }
        }
    }
}

actor Recorder {
    var events: [String] = []
    func add(_ event: String) { events.append(event) }
}
