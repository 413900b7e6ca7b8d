internal import CRShim
public import RgateModel

#if canImport(Glibc)
import Glibc
#endif

/// Embedded R in this process: start it once, then evaluate code and move values in and out.
///
/// R is single-threaded and may start only once per process. `REngine` is therefore not
/// `Sendable`: create it with ``start(arguments:)`` on the thread that will run R (the main
/// thread of `rgate-worker`, or an ``RThread``) and use it only there. R errors never unwind
/// through Swift: every call into R runs under `R_ToplevelExec` in the C shim.
public final class REngine {
    /// Called when R code runs `q()`; the process exits right after it returns.
    ///
    /// The hooks live in the engine object, and R's C callbacks reach them through the engine,
    /// installed once at start: a session forked from a warm process sets its hooks without
    /// writing a page of global data (each page written in a forked process is a page copied),
    /// and the engine's own page is written anyway when the session takes a reference to it.
    public var onQuit: ((Int32) -> Void)?

    /// Handles `self.oobSend(x, code)` / `self.oobMessage(x, code)` from R code. Return the reply
    /// object for `.message` (nil means NULL) or an error, which R code sees as an R error.
    /// Without a handler, R code gets an error saying out-of-band messages need a QAP1 connection.
    public var onOutOfBand: ((OutOfBandKind, RObject, Int32) -> Result<RObject?, EngineError>)?

    let console = ConsoleSink()
    /// When set, ``evaluate(utf8:options:)`` keeps the last value in ``keptValue``.
    var keepLastValue = false
    var keptValue: RObject?

    private init() {}

    /// Starts R with rgate's safe settings: no signal handlers, non-interactive, no stdin,
    /// console output captured, the C stack check on for the calling thread.
    ///
    /// - Parameter arguments: R's command line; the defaults are `--vanilla --silent --no-save`.
    /// - Throws: ``EngineError`` when R is already running here or cannot start (e.g. no `R_HOME`).
    public static func start(arguments: [String] = ["rgate", "--vanilla", "--silent", "--no-save", "--no-echo"]) throws -> REngine {
        if getenv("R_HOME") == nil, let home = REngine.detectRHome() {
            setenv("R_HOME", home, 1)
        }
        var cArgs = arguments.map { strdup($0) }
        defer { cArgs.forEach { free($0) } }
        var message = [CChar](repeating: 0, count: 512)
        let rc = cArgs.withUnsafeMutableBufferPointer { argv in
            rg_start(Int32(argv.count), argv.baseAddress, &message, message.count)
        }
        guard rc == 0 else { throw EngineError(decodeCString(message)) }
        _ = rg_string_layout_checked() // once here, so forked sessions inherit the answer
        let engine = REngine()
        rg_set_console({ text, length, isStderr, context in
            guard let text, let context else { return }
            let sink = Unmanaged<ConsoleSink>.fromOpaque(context).takeUnretainedValue()
            sink.append(UnsafeRawBufferPointer(start: text, count: Int(length)), stderr: isStderr != 0)
        }, Unmanaged.passUnretained(engine.console).toOpaque())
        // R's callbacks reach the engine through this reference, which is never released: R
        // runs until the process ends, and so must the engine (and its console sink) it calls.
        let context = Unmanaged.passRetained(engine).toOpaque()
        rg_set_quit_handler({ status, context in
            guard let context else { return }
            Unmanaged<REngine>.fromOpaque(context).takeUnretainedValue().onQuit?(status)
        }, context)
        rg_set_oob_handler({ kind, value, code, reply, error, errorLength, context in
            guard let context, let value else { return -1 }
            let engine = Unmanaged<REngine>.fromOpaque(context).takeUnretainedValue()
            return engine.outOfBand(kind: kind, value: value, code: code, reply: reply, error: error, errorLength: errorLength)
        }, context)
        return engine
    }

    /// Whether string vectors are read straight from R's CHARSXP headers (R's layout matched the
    /// accessor functions at start-up) rather than through one accessor call per field.
    static var readsStringHeadersDirectly: Bool { rg_string_layout_checked() == 1 }

    /// Interrupts evaluations when the peer of `descriptor` closes its connection (nil: stop
    /// watching). Lets a server stop work nobody will read.
    public func cancelWhenPeerCloses(_ descriptor: Int32?) {
        rg_set_hangup_watch(descriptor ?? -1)
    }

    /// Interrupts evaluations when the peer of `descriptor` closes its connection or sends
    /// anything (a cancel request: the peer sends nothing else while a request runs); nil: stop
    /// watching. The evaluation's error is then ``EvaluationError/Code/cancelled``.
    public func cancelWhenPeerSends(_ descriptor: Int32?) {
        if let descriptor { rg_set_cancel_watch(descriptor) } else { rg_set_hangup_watch(-1) }
    }

    /// The console output of the evaluation in progress so far (for a `q()` handler).
    public func pendingOutput() -> [ConsoleChunk] { console.snapshot() }

    /// In a process just forked from one running R: gives it its own R temp dir and makes that
    /// the working directory, so that sessions never share files. Returns the directory.
    public func adoptForkedProcess() throws(EngineError) -> String {
        guard let directory = rg_after_fork() else { throw EngineError("could not create a temp dir for R") }
        return String(cString: directory)
    }

    /// Removes this process's R temp dir and exits immediately with `status`.
    public func exitProcess(status: Int32) -> Never {
        rg_exit(status)
    }

    /// `R RHOME` for Debian's r-base-core, when it is installed where Debian puts it.
    static func detectRHome() -> String? {
        access("/usr/lib/R/bin/R", X_OK) == 0 ? "/usr/lib/R" : nil
    }

    /// Evaluates `code` like the R console: parse everything, then evaluate each top-level
    /// expression in the global environment in order, stopping at the first error.
    ///
    /// Never throws: parse errors, R errors and timeouts are described in the result.
    public func evaluate(_ code: String, options: EvaluationOptions = EvaluationOptions()) -> Evaluation {
        var bytes = Array(code.utf8)
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { buffer in
            evaluate(utf8: UnsafeRawBufferPointer(start: buffer.baseAddress, count: buffer.count - 1), options: options)
        }
    }

    /// Evaluates UTF-8 code bytes (see ``evaluate(_:options:)``).
    /// - Parameter environment: where to evaluate (an environment from
    ///   ``makeEnvironment(bindings:)``); the global environment when nil.
    public func evaluate(utf8 code: UnsafeRawBufferPointer, options: EvaluationOptions = EvaluationOptions(), in environment: RObject? = nil) -> Evaluation {
        var result = Evaluation()
        console.begin(limit: options.maxOutputBytes)
        rg_reset_conditions()
        run(code, options: options, environment: environment, into: &result)
        result.output = console.end()
        result.outputTruncated = console.truncated
        return result
    }

    private func run(_ code: UnsafeRawBufferPointer, options: EvaluationOptions, environment: RObject?, into result: inout Evaluation) {

        var exprs: rg_sexp?
        var message = [CChar](repeating: 0, count: 1024)
        let empty: CChar = 0
        let status = withUnsafePointer(to: empty) { emptyPointer in
            let base = code.baseAddress?.assumingMemoryBound(to: CChar.self) ?? emptyPointer
            return rg_parse(base, code.count, &exprs, &message, message.count)
        }
        guard status == Int32(RG_PARSE_OK), let exprs else {
            let code: EvaluationError.Code = switch status {
            case Int32(RG_PARSE_INCOMPLETE): .parseIncomplete
            case Int32(RG_PARSE_ERROR): .parseInvalid
            default: .rejected
            }
            let text = decodeCString(message)
            console.write("Error: \(text)\n", stderr: true)
            rg_set_errmessage("Error: \(text)\n")
            result.error = EvaluationError(code: code, message: text)
            return
        }
        defer { rg_release(exprs) }

        let (armed, _) = armDeadline(options.timeout)
        defer { if armed { rg_set_deadline(0) } }

        let count = Int(rg_length(exprs))
        var last: rg_sexp?
        defer { if let last { rg_release(last) } }
        for index in 0..<count {
            var value: rg_sexp?
            var visible: Int32 = 0
            var status = if let environment {
                rg_eval_in(rg_vector_elt(exprs, Int64(index)), environment.sexp, &value, &visible)
            } else if options.captureConditions {
                rg_eval_expr(exprs, index, &value, &visible)
            } else {
                rg_eval_plain(rg_vector_elt(exprs, Int64(index)), &value, &visible)
            }
            if status == Int32(RG_EVAL_OK), let value {
                rg_set_last_value(value)
                if let previous = last { rg_release(previous) }
                last = value
                result.visible = visible != 0
                if options.printVisible && visible != 0 {
                    status = rg_print(value)
                }
            }
            if options.captureConditions { collectWarnings(into: &result) }
            if status != Int32(RG_EVAL_OK) {
                result.error = makeError(status: status, index: index, timeout: options.timeout)
                if status == Int32(RG_EVAL_TIMEOUT) {
                    console.write("Error: \(result.error!.message)\n", stderr: true)
                }
                _ = rg_flush_warnings(1)
                break
            }
            _ = rg_flush_warnings(0)
        }
        if options.captureConditions { result.messages = stringVector(rg_recorded_messages()) }
        if keepLastValue, result.error == nil, let last {
            rg_preserve(last)
            keptValue = RObject(preserved: last)
        }
        if result.error == nil, options.convertValue, let last {
            do {
                result.value = try convert(last)
            } catch {
                result.error = EvaluationError(code: .rejected, message: "the result could not be converted: \(error.message)", expressionIndex: count - 1)
            }
        }
    }

    /// Evaluates `code` and returns its last value, or throws the failure.
    public func value(of code: String, timeout: Duration? = nil) throws(EvaluationError) -> RValue {
        let outcome = evaluate(code, options: EvaluationOptions(printVisible: false, convertValue: true, timeout: timeout))
        if let error = outcome.error { throw error }
        return outcome.value ?? .null
    }

    /// Binds `value` to `name` in R's global environment.
    public func assign(_ name: String, _ value: RValue) throws(EngineError) {
        let sexp = try build(value)
        defer { rg_release(sexp) }
        guard rg_assign_global(name, sexp) == 0 else { throw EngineError("could not assign '\(name)'") }
    }

    func armDeadline(_ timeout: Duration?) -> (Bool, UInt64) {
        guard let timeout else { return (false, 0) }
        let ns = UInt64(max(0, timeout.components.seconds)) * 1_000_000_000 + UInt64(max(0, timeout.components.attoseconds / 1_000_000_000))
        let deadline = rg_monotonic_ns() + max(ns, 1)
        rg_set_deadline(deadline)
        return (true, deadline)
    }

    func collectWarnings(into result: inout Evaluation) {
        let list = rg_recorded_warnings()
        guard let list, rg_is_nil(list) == 0, rg_typeof(list) == Int32(RG_VECSXP) else { return }
        for i in 0..<rg_length(list) {
            let w = rg_vector_elt(list, i)
            guard let w, rg_typeof(w) == Int32(RG_VECSXP), rg_length(w) >= 2 else { continue }
            let message = stringVector(rg_vector_elt(w, 0)).first ?? ""
            let callSexp = rg_vector_elt(w, 1)
            let call = callSexp.flatMap { rg_is_nil($0) != 0 ? nil : deparse($0) }
            result.warnings.append(RCondition(message: message, call: call))
        }
    }

    func makeError(status: Int32, index: Int, timeout: Duration?) -> EvaluationError {
        if status == Int32(RG_EVAL_CANCELLED) {
            return EvaluationError(code: .cancelled, message: "evaluation stopped: the client disconnected", expressionIndex: index)
        }
        if status == Int32(RG_EVAL_TIMEOUT) {
            let limit = timeout.map { "\($0.formattedSeconds) s" } ?? "its time limit"
            return EvaluationError(code: .timeout, message: "evaluation stopped: it ran longer than the limit of \(limit)", expressionIndex: index)
        }
        var message = "unknown error"
        var call: String?
        var classes: [String] = []
        if let e = rg_recorded_error(), rg_is_nil(e) == 0, rg_typeof(e) == Int32(RG_VECSXP), rg_length(e) >= 2 {
            message = stringVector(rg_vector_elt(e, 0)).first ?? message
            if let c = rg_vector_elt(e, 1), rg_is_nil(c) == 0 { call = deparse(c) }
            if rg_length(e) >= 3 { classes = stringVector(rg_vector_elt(e, 2)) }
        }
        var error = EvaluationError(code: .runtime, message: message, call: call, expressionIndex: index)
        error.classes = classes
        return error
    }

    func stringVector(_ x: rg_sexp?) -> [String] {
        guard let x, rg_typeof(x) == Int32(RG_STRSXP) else { return [] }
        return (0..<rg_length(x)).map { string(x, $0) ?? "NA" }
    }

    func string(_ x: rg_sexp, _ i: Int64) -> String? {
        var length: Int32 = 0
        guard let p = rg_string_elt(x, i, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(length)), as: UTF8.self)
    }

    func deparse(_ x: rg_sexp) -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        _ = rg_deparse(x, &buffer, buffer.count)
        return decodeCString(buffer)
    }
}

/// A failure of the engine itself (not of R code).
public struct EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Collects console output during one evaluation, bounded in size.
///
/// An evaluation that prints nothing writes nothing here: in a session forked from the zygote,
/// the sink's pages (and its array's storage, made during the zygote's warm-up) stay shared.
final class ConsoleSink {
    private var chunks: [ConsoleChunk] = []
    private var bytes = 0
    private var limit = Int.max
    private(set) var truncated = false

    func begin(limit: Int) {
        if !chunks.isEmpty { chunks.removeAll(keepingCapacity: true) }
        if bytes != 0 { bytes = 0 }
        if self.limit != limit { self.limit = limit }
        if truncated { truncated = false }
    }

    func snapshot() -> [ConsoleChunk] { chunks }

    func end() -> [ConsoleChunk] {
        guard !chunks.isEmpty else { return [] } // not a reference to the kept storage
        defer { chunks.removeAll(keepingCapacity: true) }
        return chunks
    }

    func append(_ raw: UnsafeRawBufferPointer, stderr: Bool) {
        guard !truncated else { return }
        var raw = raw
        if bytes + raw.count > limit {
            raw = UnsafeRawBufferPointer(rebasing: raw[0..<max(0, limit - bytes)])
            truncated = true
        }
        bytes += raw.count
        write(String(decoding: raw, as: UTF8.self), stderr: stderr)
        if truncated {
            write("\n[rgate: output truncated at \(limit) bytes]\n", stderr: true)
        }
    }

    func write(_ text: String, stderr: Bool) {
        let stream: ConsoleChunk.Stream = stderr ? .stderr : .stdout
        if let lastIndex = chunks.indices.last, chunks[lastIndex].stream == stream {
            chunks[lastIndex].text += text
        } else {
            chunks.append(ConsoleChunk(stream: stream, text: text))
        }
    }
}

extension Duration {
    var formattedSeconds: String {
        let seconds = Double(components.seconds) + Double(components.attoseconds) / 1e18
        return seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
