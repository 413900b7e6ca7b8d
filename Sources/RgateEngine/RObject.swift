internal import CRShim
public import RgateModel

/// A live R object held by the engine (protected from R's garbage collector until released).
///
/// Lets a caller keep a result inside R, pass it back to R, or convert it only when needed,
/// without copying it through ``RValue``. Like ``REngine``, it belongs to the R thread: create,
/// use and drop it there only.
public final class RObject {
    let sexp: rg_sexp

    /// String tables built for character vectors inside this object, reused by repeated walks
    /// (an encoder's size pass and write pass); freed with the object.
    var stringTables: [UnsafeMutableRawPointer: StringTable] = [:]

    final class StringTable {
        var pointers: [UnsafePointer<CChar>?]
        var lengths: [Int32]
        var arena: UnsafeMutableRawPointer?
        var sizes: RObjectView.StringSizes
        init(pointers: [UnsafePointer<CChar>?], lengths: [Int32], arena: UnsafeMutableRawPointer?, sizes: RObjectView.StringSizes) {
            self.pointers = pointers
            self.lengths = lengths
            self.arena = arena
            self.sizes = sizes
        }
        deinit { rg_string_table_free(arena) }
    }

    /// Takes ownership of one preservation of `sexp`.
    init(preserved sexp: rg_sexp) { self.sexp = sexp }

    deinit { rg_release(sexp) }

    /// R's type name (`typeof`).
    public var typeName: String {
        let t = rg_typeof(sexp)
        switch t {
        case Int32(RG_NILSXP): return "NULL"
        case Int32(RG_LGLSXP): return "logical"
        case Int32(RG_INTSXP): return "integer"
        case Int32(RG_REALSXP): return "double"
        case Int32(RG_CPLXSXP): return "complex"
        case Int32(RG_STRSXP): return "character"
        case Int32(RG_RAWSXP): return "raw"
        case Int32(RG_VECSXP): return "list"
        case Int32(RG_EXPRSXP): return "expression"
        default: return REngine.typeName(t)
        }
    }

    /// The bytes of a raw vector, or nil for other types.
    public func withRawBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T? {
        guard rg_typeof(sexp) == Int32(RG_RAWSXP) else { return nil }
        let n = Int(rg_length(sexp))
        guard n > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        guard let p = rg_raw(sexp) else { return nil }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }
}

extension REngine {
    /// Evaluates code like ``evaluate(utf8:options:)`` and also returns the last value as a live
    /// object (nil when nothing ran or evaluation failed).
    public func evaluateKeepingValue(utf8 code: UnsafeRawBufferPointer, options: EvaluationOptions, in environment: RObject? = nil) -> (Evaluation, RObject?) {
        keptValue = nil
        keepLastValue = true
        defer { keepLastValue = false }
        let evaluation = evaluate(utf8: code, options: options, in: environment)
        defer { keptValue = nil }
        return (evaluation, evaluation.error == nil ? keptValue : nil)
    }

    /// Evaluates an R object (a call, a symbol, or any value, which evaluates to itself) in the
    /// global environment, with the same condition handling as code.
    public func evaluate(object: RObject, options: EvaluationOptions) -> (Evaluation, RObject?) {
        var result = Evaluation()
        console.begin(limit: options.maxOutputBytes)
        rg_reset_conditions()
        let (deadlineArmed, _) = armDeadline(options.timeout)
        var value: rg_sexp?
        var visible: Int32 = 0
        let status = options.captureConditions ? rg_eval(object.sexp, &value, &visible) : rg_eval_plain(object.sexp, &value, &visible)
        if deadlineArmed { rg_set_deadline(0) }
        result.visible = visible != 0
        if options.captureConditions { collectWarnings(into: &result) }
        var kept: RObject?
        if status == Int32(RG_EVAL_OK), let value {
            kept = RObject(preserved: value)
            if options.printVisible && visible != 0 { _ = rg_print(value) }
            _ = rg_flush_warnings(0)
        } else {
            result.error = makeError(status: status, index: 0, timeout: options.timeout)
            _ = rg_flush_warnings(1)
        }
        if options.captureConditions { result.messages = stringVector(rg_recorded_messages()) }
        if result.error == nil, options.convertValue, let kept {
            result.value = try? convert(kept.sexp)
        }
        result.output = console.end()
        result.outputTruncated = console.truncated
        return (result, kept)
    }

    /// Calls `base::name(arguments...)`; on failure the error is what R reported.
    public func callBase(_ name: String, _ arguments: [RObject]) -> Result<RObject, EvaluationError> {
        console.begin(limit: 1 << 20)
        defer { _ = console.end() }
        rg_reset_conditions()
        var result: rg_sexp?
        let args: [rg_sexp?] = arguments.map { $0.sexp }
        let status = args.withUnsafeBufferPointer { rg_call_base(name, $0.baseAddress, Int32(args.count), &result) }
        withExtendedLifetime(arguments) {}
        if status == Int32(RG_EVAL_OK), let result { return .success(RObject(preserved: result)) }
        return .failure(makeError(status: status, index: 0, timeout: nil))
    }

    /// Makes an R object from a Swift value.
    public func makeObject(_ value: RValue) throws(EngineError) -> RObject {
        RObject(preserved: try build(value))
    }

    /// Converts a live object to a Swift value.
    public func value(of object: RObject) throws(EngineError) -> RValue {
        try convert(object.sexp)
    }

    /// A new environment whose parent is the global environment, with `bindings` defined in it.
    public func makeEnvironment(bindings: [(name: String, value: RObject)]) throws(EngineError) -> RObject {
        guard let env = rg_new_env() else { throw EngineError("could not create an environment") }
        let object = RObject(preserved: env)
        for (name, value) in bindings {
            guard rg_define(env, name, value.sexp) == 0 else { throw EngineError("could not bind '\(name)'") }
        }
        return object
    }

    /// The value bound to `name` in the global environment itself (not the search path), or nil
    /// when unbound; never runs R code (active bindings and promises count as unbound).
    public func globalVariable(_ name: String) -> RObject? {
        rg_lookup_global(name).map { RObject(preserved: $0) }
    }

    /// Whether the object is plain data (NULL, atomic vectors, lists of them, with attributes
    /// that are plain data too): nothing that can hold or run code.
    public func isPlainData(_ object: RObject) -> Bool {
        rg_is_plain_data(object.sexp) != 0
    }

    /// Whether an attribute other than `class` may be on a restricted caller's data.
    public static func isInertAttribute(_ name: String) -> Bool { rg_is_inert_attribute(name) != 0 }

    /// Whether a class may be on a restricted caller's data (its S3 methods treat values as data).
    public static func isInertClass(_ name: String) -> Bool { rg_is_inert_class(name) != 0 }

    /// Whether the object is a function (closure, builtin or special).
    public func isFunction(_ object: RObject) -> Bool {
        let t = rg_typeof(object.sexp)
        return t == 3 || t == 7 || t == 8 // CLOSXP, SPECIALSXP, BUILTINSXP
    }

    /// Binds an object to `name` in the global environment.
    public func assign(_ name: String, object: RObject) throws(EngineError) {
        guard rg_assign_global(name, object.sexp) == 0 else { throw EngineError("could not assign '\(name)'") }
    }

    /// Parses code without evaluating it; returns the parse error, or nil when it parses.
    public func checkSyntax(utf8 code: UnsafeRawBufferPointer) -> EvaluationError? {
        var exprs: rg_sexp?
        var message = [CChar](repeating: 0, count: 1024)
        let empty: CChar = 0
        let status = withUnsafePointer(to: empty) { emptyPointer in
            rg_parse(code.baseAddress?.assumingMemoryBound(to: CChar.self) ?? emptyPointer, code.count, &exprs, &message, message.count)
        }
        if status == Int32(RG_PARSE_OK) {
            if let exprs { rg_release(exprs) }
            return nil
        }
        let text = decodeCString(message)
        rg_set_errmessage("Error: \(text)\n")
        return EvaluationError(code: status == Int32(RG_PARSE_INCOMPLETE) ? .parseIncomplete : status == Int32(RG_PARSE_ERROR) ? .parseInvalid : .rejected, message: text)
    }

    /// Forgets what earlier evaluations left in R's session-wide state (`geterrmessage()`,
    /// `last.warning`, `.Last.value`).
    public func resetSessionState() {
        rg_reset_session_state()
    }

    /// Sets what `geterrmessage()` returns.
    public func setErrorMessage(_ text: String) {
        rg_set_errmessage(text)
    }
}

/// Which out-of-band call R code made.
public enum OutOfBandKind: Sendable, Hashable {
    /// `self.oobSend(x, code)`: one-way.
    case send
    /// `self.oobMessage(x, code)`: waits for the client's reply.
    case message
}

extension REngine {
    /// R code's out-of-band call, from the C shim: runs ``onOutOfBand`` and stores its answer in
    /// `reply` (preserved) or its message in `error`. Returns 0, or -1 for an R error.
    func outOfBand(
        kind: Int32, value: rg_sexp, code: Int32, reply: UnsafeMutablePointer<rg_sexp?>?,
        error: UnsafeMutablePointer<CChar>?, errorLength: Int
    ) -> Int32 {
        func fail(_ message: String) -> Int32 {
            if let error, errorLength > 0 {
                let bytes = Array(message.utf8.prefix(errorLength - 1)) + [0]
                bytes.withUnsafeBufferPointer { src in
                    UnsafeMutableRawPointer(error).copyMemory(from: src.baseAddress!, byteCount: bytes.count)
                }
            }
            return -1
        }
        guard let handler = onOutOfBand else {
            return fail("out-of-band messages are only available on a QAP1 (Rserve protocol) connection")
        }
        rg_preserve(value)
        let object = RObject(preserved: value)
        switch handler(kind == 0 ? .send : .message, object, code) {
        case .success(let answer):
            guard kind == 1 else { return 0 }
            if let answer {
                rg_preserve(answer.sexp)
                reply?.pointee = answer.sexp
            } else {
                let nilValue = rg_nil()!
                rg_preserve(nilValue)
                reply?.pointee = nilValue
            }
            return 0
        case .failure(let failure):
            return fail(failure.message)
        }
    }
}
