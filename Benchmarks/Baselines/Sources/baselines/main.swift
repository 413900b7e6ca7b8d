// In-process baselines: what the engine costs per call with no network and no protocol, the
// floor under every server figure. R runs on this (the main) thread; no Swift concurrency.
//
// Usage: baselines [--iterations N] [--warmup N] [--convert-iterations N]
// Prints one JSON line per baseline on stdout:
//   {"baseline":NAME,"what":...,"iterations":N,"median_us":..,"p99_us":..,"mean_us":..,"min_us":..}
// Baselines (each timed call by call with CLOCK_MONOTONIC, after unrecorded warm-up calls):
//   engine_start      REngine.start() (once; no percentiles)
//   eval_console      evaluate(utf8: "1+1", printVisible: true, convertValue: false): what a
//                     text-protocol request costs in R (parse, eval, print "[1] 2" to the sink)
//   eval_qap          the same with printVisible: false, captureConditions: false (QAP1 voidEval)
//   eval_print_nocapture, eval_capture_noprint: eval_console with only one of its two
//                     differences from eval_qap (printing; condition capture), to split its cost
//   eval_keep         evaluateKeepingValue(utf8: "1+1", QAP1 options): QAP1 eval, which keeps
//                     the result as a live RObject for the encoder
//   eval_keep_deadline  eval_keep with a 300 s timeout (rgate serve's default --eval-timeout)
//   convert_1e6       engine.value(of:) of an existing 1e6-double vector: the copy into RValue
//                     (the Swift value model; the QAP1 encoder reads R's memory instead)
import RgateEngine
#if canImport(Glibc)
import Glibc
#endif

func argument(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 { return n }
    return value
}

func fail(_ message: String) -> Never {
    let text = Array("baselines: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

let iterations = argument("--iterations", default: 20_000)
let warmup = argument("--warmup", default: 1_000)
let convertIterations = argument("--convert-iterations", default: 200)

@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func json(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

/// Nanoseconds as microseconds with 3 decimals.
func us(_ ns: Double) -> String {
    let n = Int(ns.rounded())
    let frac = String(n % 1000)
    return "\(n / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
}

/// Times `body` call by call and prints one JSON line.
func measure(_ name: String, what: String, iterations n: Int, warmup w: Int, _ body: () -> Void) {
    for _ in 0..<w { body() }
    var samples = [UInt64](repeating: 0, count: n)
    let wallStart = nowNs()
    for i in 0..<n {
        let t0 = nowNs()
        body()
        samples[i] = nowNs() - t0
    }
    let wall = nowNs() - wallStart
    samples.sort()
    let median = n % 2 == 1 ? Double(samples[n / 2]) : Double(samples[n / 2 - 1] + samples[n / 2]) / 2
    let p99 = Double(samples[max(0, Int((Double(n) * 0.99).rounded(.up)) - 1)])
    let mean = Double(samples.reduce(0, +)) / Double(n)
    print("{\"baseline\":\(json(name)),\"what\":\(json(what)),\"iterations\":\(n),\"warmup\":\(w),"
        + "\"median_us\":\(us(median)),\"p99_us\":\(us(p99)),\"mean_us\":\(us(mean)),"
        + "\"min_us\":\(us(Double(samples[0]))),\"max_us\":\(us(Double(samples[n - 1]))),"
        + "\"calls_per_s\":\(Int(Double(n) / (Double(wall) / 1e9)))}")
    fflush(nil)
}

// ---- engine start ----
let t0 = nowNs()
let engine: REngine
do { engine = try REngine.start() } catch { fail("R did not start: \(error)") }
let startNs = nowNs() - t0
print("{\"baseline\":\"engine_start\",\"what\":\"REngine.start() (R_HOME=\(getenv("R_HOME").map { String(cString: $0) } ?? "?"))\","
    + "\"iterations\":1,\"median_us\":\(us(Double(startNs))),\"p99_us\":\(us(Double(startNs)))}")
fflush(nil)

// ---- options, as the sessions build them (Sources/RgateWorker/TextSession.swift, QAP1Session.swift) ----
let consoleOptions = EvaluationOptions(printVisible: true, convertValue: false)
var qapOptions = EvaluationOptions(printVisible: false, convertValue: false)
qapOptions.captureConditions = false
let code: [UInt8] = Array("1+1".utf8)

// Sanity checks before timing: the calls do what they claim.
code.withUnsafeBytes { bytes in
    let e = engine.evaluate(utf8: bytes, options: consoleOptions)
    guard e.succeeded, e.transcript == "[1] 2\n" else { fail("console eval of 1+1 gave \(e.transcript.debugDescription), error \(String(describing: e.error))") }
    let q = engine.evaluate(utf8: bytes, options: qapOptions)
    guard q.succeeded, q.transcript.isEmpty else { fail("QAP eval of 1+1 failed or printed: \(String(describing: q.error))") }
    let (k, object) = engine.evaluateKeepingValue(utf8: bytes, options: qapOptions)
    guard k.succeeded, let object, case .double([2])? = (try? engine.value(of: object))?.payload else { fail("evaluateKeepingValue of 1+1 did not keep 2") }
}

// ---- eval ----
code.withUnsafeBytes { bytes in
    measure("eval_console", what: "evaluate(utf8: \"1+1\", printVisible: true, convertValue: false)",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluate(utf8: bytes, options: consoleOptions)
    }
    measure("eval_qap", what: "evaluate(utf8: \"1+1\", printVisible: false, convertValue: false, captureConditions: false)",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluate(utf8: bytes, options: qapOptions)
    }
    // Where eval_console's cost goes: the two options it differs from eval_qap in, one at a time.
    var printOnly = consoleOptions
    printOnly.captureConditions = false
    measure("eval_print_nocapture", what: "evaluate(utf8: \"1+1\", printVisible: true, captureConditions: false) (split of eval_console)",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluate(utf8: bytes, options: printOnly)
    }
    let captureOnly = EvaluationOptions(printVisible: false, convertValue: false)
    measure("eval_capture_noprint", what: "evaluate(utf8: \"1+1\", printVisible: false, captureConditions: true) (split of eval_console)",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluate(utf8: bytes, options: captureOnly)
    }
    measure("eval_keep", what: "evaluateKeepingValue(utf8: \"1+1\", QAP1 options)",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluateKeepingValue(utf8: bytes, options: qapOptions)
    }
    // rgate serve's default --eval-timeout 300 arms and disarms R's deadline around each request.
    var timed = qapOptions
    timed.timeout = .seconds(300)
    measure("eval_keep_deadline", what: "eval_keep with timeout: 300 s, as sessions with rgate's default --eval-timeout",
            iterations: iterations, warmup: warmup) {
        _ = engine.evaluateKeepingValue(utf8: bytes, options: timed)
    }
}

// ---- conversion of a 1e6-double vector ----
let setup = Array("x <- as.numeric(1:1e6) + 0; x".utf8) // + 0: an ordinary (non-ALTREP) vector
let (made, vector) = setup.withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: qapOptions) }
guard made.succeeded, let vector else { fail("could not make the 1e6-double vector: \(String(describing: made.error))") }
guard let converted = try? engine.value(of: vector), converted.count == 1_000_000 else { fail("value(of:) of the 1e6-double vector failed") }
measure("convert_1e6", what: "engine.value(of:) of an existing 1e6-double vector (8 MB) into RValue",
        iterations: convertIterations, warmup: max(1, min(warmup, convertIterations / 10))) {
    _ = try? engine.value(of: vector)
}
