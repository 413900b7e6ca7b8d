import RgateEngine
import RgateModel
import Testing

@Suite("Evaluation like the R console")
struct EvaluationTests {
    @Test func visibleValueIsPrinted() async {
        let e = await SharedEngine.run { $0.evaluate("1+1") }
        #expect(e.succeeded)
        #expect(e.visible)
        #expect(e.transcript == "[1] 2\n")
        #expect(e.value == .double([2]))
    }

    @Test func invisibleValueIsNotPrinted() async {
        let e = await SharedEngine.run { $0.evaluate("x <- 5; invisible(7)") }
        #expect(e.succeeded)
        #expect(!e.visible)
        #expect(e.transcript == "")
        #expect(e.value == .double([7]))
    }

    @Test func everyVisibleTopLevelValueIsPrintedInOrder() async {
        let e = await SharedEngine.run { $0.evaluate("1\ncat('hi\\n')\n'a'") }
        #expect(e.transcript == "[1] 1\nhi\n[1] \"a\"\n")
        #expect(e.value == .character(["a"]))
    }

    @Test func stdoutAndStderrStayInOrder() async {
        let e = await SharedEngine.run { $0.evaluate("cat('out1\\n'); message('msg'); cat('out2\\n')") }
        #expect(e.output == [
            ConsoleChunk(stream: .stdout, text: "out1\n"),
            ConsoleChunk(stream: .stderr, text: "msg\n"),
            ConsoleChunk(stream: .stdout, text: "out2\n"),
        ])
        #expect(e.messages == ["msg\n"])
    }

    @Test func warningIsDeferredAndFormattedLikeTheConsole() async {
        let e = await SharedEngine.run { $0.evaluate("f <- function() { warning('careful'); 3 }; f()") }
        #expect(e.succeeded)
        #expect(e.transcript == "[1] 3\nWarning message:\nIn f() : careful\n")
        #expect(e.warnings == [RCondition(message: "careful", call: "f()")])
    }

    @Test func severalWarningsAreNumbered() async {
        let e = await SharedEngine.run { $0.evaluate("for (i in 1:2) warning(paste('w', i))") }
        #expect(e.transcript == "Warning messages:\n1: w 1 \n2: w 2 \n")
        #expect(e.warnings.count == 2)
    }

    @Test func runtimeErrorIsPrintedAsRDoesAndStopsEvaluation() async {
        let e = await SharedEngine.run { $0.evaluate("f <- function() stop('boom'); cat('a\\n'); f(); cat('never\\n')") }
        #expect(e.transcript == "a\nError in f() : boom\n")
        #expect(e.error?.code == .runtime)
        #expect(e.error?.message == "boom")
        #expect(e.error?.call == "f()")
        #expect(e.error?.expressionIndex == 2)
    }

    @Test func topLevelStopHasNoCall() async {
        let e = await SharedEngine.run { $0.evaluate("stop('plain')") }
        #expect(e.transcript == "Error: plain\n")
        #expect(e.error?.call == nil)
    }

    @Test func warningsBeforeAnErrorAreShownInAddition() async {
        let e = await SharedEngine.run { $0.evaluate("{ warning('w1'); stop('e1') }") }
        #expect(e.transcript == "Error: e1\nIn addition: Warning message:\nw1 \n")
    }

    @Test func invalidCodeIsAParseError() async {
        let e = await SharedEngine.run { $0.evaluate("x y") }
        #expect(e.error?.code == .parseInvalid)
        #expect(e.transcript == "Error: unexpected symbol in \"x y\"\n")
    }

    @Test func unfinishedCodeIsAnIncompleteParse() async {
        let e = await SharedEngine.run { $0.evaluate("1 +") }
        #expect(e.error?.code == .parseIncomplete)
        #expect(e.error?.isParseError == true)
    }

    @Test func parseErrorRunsNothing() async {
        let e = await SharedEngine.run { $0.evaluate("cat('side effect\\n')\n)") }
        #expect(e.error?.code == .parseInvalid)
        #expect(e.output.allSatisfy { $0.stream == .stderr })
    }

    @Test func busyLoopIsInterruptedAtTheDeadline() async {
        let (e, elapsed) = await SharedEngine.run { engine in
            let clock = ContinuousClock()
            let start = clock.now
            return (engine.evaluate("repeat {}", options: EvaluationOptions(timeout: .milliseconds(300))), clock.now - start)
        }
        #expect(e.error?.code == .timeout)
        #expect(elapsed < .seconds(3))
        // The engine stays usable.
        let next = await SharedEngine.run { $0.evaluate("21 * 2") }
        #expect(next.value == .double([42]))
    }

    @Test func sleepIsInterruptedAtTheDeadline() async {
        let (e, elapsed) = await SharedEngine.run { engine in
            let clock = ContinuousClock()
            let start = clock.now
            return (engine.evaluate("Sys.sleep(30)", options: EvaluationOptions(timeout: .milliseconds(300))), clock.now - start)
        }
        #expect(e.error?.code == .timeout)
        #expect(elapsed < .seconds(3))
    }

    @Test func catchingTheInterruptDoesNotEscapeTheDeadline() async {
        let code = "repeat { tryCatch(repeat {}, interrupt = function(e) NULL) }"
        let e = await SharedEngine.run { $0.evaluate(code, options: EvaluationOptions(timeout: .milliseconds(300))) }
        #expect(e.error?.code == .timeout)
    }

    @Test func deepRecursionIsAnOrdinaryError() async {
        let e = await SharedEngine.run { $0.evaluate("f <- function(n) f(n + 1); f(1)") }
        #expect(e.error?.code == .runtime)
        let next = await SharedEngine.run { $0.evaluate("1") }
        #expect(next.succeeded)
    }

    @Test func outputIsBounded() async {
        let e = await SharedEngine.run {
            $0.evaluate("for (i in 1:10000) cat('0123456789')", options: EvaluationOptions(maxOutputBytes: 1000))
        }
        #expect(e.outputTruncated)
        #expect(e.transcript.utf8.count < 1200)
        #expect(e.transcript.contains("output truncated"))
    }

    @Test func s4ObjectsAreShown() async {
        let e = await SharedEngine.run { $0.evaluate("setClass('P', representation(x='numeric')); new('P', x=1)") }
        #expect(e.transcript.contains("An object of class \"P\""))
    }

    @Test func utf8SurvivesTheRoundTrip() async {
        let e = await SharedEngine.run { $0.evaluate("x <- 'héllo ✓'; cat(x, '\\n'); nchar(x)") }
        #expect(e.transcript == "héllo ✓ \n[1] 7\n")
    }
}
