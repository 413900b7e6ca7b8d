import RgateEngine
import RgateModel
import Testing

// The engine's hooks (out-of-band calls from R code, `q()`) are properties of the engine object,
// reached from R's C callbacks installed once at start. Each test sets and clears a hook inside
// one `SharedEngine.run` job, so no other test sees it.

@Suite("Engine hooks and console reuse")
struct HookTests {
    /// What a handler saw, in order.
    final class Calls: @unchecked Sendable {
        var seen: [(kind: OutOfBandKind, value: RValue?, code: Int32)] = []
    }

    @Test func outOfBandCallsWithoutAHandlerAreRErrors() async {
        let e = await SharedEngine.run { engine in
            engine.onOutOfBand = nil
            return engine.evaluate("self.oobSend(1)")
        }
        #expect(e.error?.code == .runtime)
        #expect(e.error?.message.contains("only available on a QAP1 (Rserve protocol) connection") == true)
    }

    @Test func outOfBandCallsReachTheHandlerAndReturnItsReply() async throws {
        let calls = Calls()
        let (e, afterClearing) = await SharedEngine.run { engine in
            engine.onOutOfBand = { kind, object, code in
                calls.seen.append((kind, try? engine.value(of: object), code))
                guard kind == .message else { return .success(nil) }
                do throws(EngineError) {
                    return .success(try engine.makeObject(.character(["pong"])))
                } catch {
                    return .failure(error)
                }
            }
            let e = engine.evaluate("s <- self.oobSend(list('note', 1L), 7L); c(s, self.oobMessage('ping', 3L))")
            engine.onOutOfBand = nil
            return (e, engine.evaluate("self.oobMessage('again')"))
        }
        #expect(e.succeeded, "\(String(describing: e.error))")
        #expect(e.value == .character(["TRUE", "pong"]))
        try #require(calls.seen.count == 2)
        #expect(calls.seen[0].kind == .send && calls.seen[0].code == 7)
        #expect(calls.seen[0].value == .list([.character(["note"]), .integer([1])]))
        #expect(calls.seen[1].kind == .message && calls.seen[1].code == 3)
        #expect(calls.seen[1].value == .character(["ping"]))
        #expect(afterClearing.error?.message.contains("only available on a QAP1") == true, "a cleared handler is gone")
    }

    @Test func aMessageHandlerWithoutReplyGivesNull() async {
        let e = await SharedEngine.run { engine in
            engine.onOutOfBand = { _, _, _ in .success(nil) }
            defer { engine.onOutOfBand = nil }
            return engine.evaluate("is.null(self.oobMessage('x'))")
        }
        #expect(e.value == .logical([true]))
    }

    @Test func aFailingHandlerIsAnRErrorWithItsMessage() async {
        let e = await SharedEngine.run { engine in
            engine.onOutOfBand = { _, _, _ in .failure(EngineError("the client went away")) }
            defer { engine.onOutOfBand = nil }
            return engine.evaluate("tryCatch(self.oobMessage('x'), error = function(e) conditionMessage(e))")
        }
        #expect(e.value == .character(["the client went away"]))
    }

    @Test func outputOfOneEvaluationNeverReachesTheNext() async {
        let (printed, silent, again, empty) = await SharedEngine.run { engine in
            (
                engine.evaluate("cat('one\\n'); message('two')"),
                engine.evaluate("invisible(3)"),
                engine.evaluate("cat('four\\n')"),
                engine.evaluate("")
            )
        }
        #expect(printed.transcript == "one\ntwo\n")
        #expect(silent.output.isEmpty && silent.transcript == "")
        #expect(again.transcript == "four\n")
        #expect(empty.output.isEmpty)
    }

    @Test func theOutputLimitAppliesPerEvaluation() async {
        let (cut, whole) = await SharedEngine.run { engine in
            var small = EvaluationOptions()
            small.maxOutputBytes = 4
            return (engine.evaluate("cat('abcdefgh')", options: small), engine.evaluate("cat('abcdefgh')"))
        }
        #expect(cut.outputTruncated)
        #expect(cut.transcript.hasPrefix("abcd\n[rgate: output truncated at 4 bytes]"))
        #expect(!whole.outputTruncated)
        #expect(whole.transcript == "abcdefgh")
    }
}
