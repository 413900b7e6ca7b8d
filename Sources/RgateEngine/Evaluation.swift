public import RgateModel

/// What evaluating a piece of R code produced, in the structure a client needs.
public struct Evaluation: Sendable, Hashable {
    /// The value of the last top-level expression (when conversion was requested and it ran).
    public var value: RValue?
    /// Whether the last value was visible (would auto-print at the console).
    public var visible: Bool = false
    /// Everything R printed, stdout and stderr, in order.
    public var output: [ConsoleChunk] = []
    /// Warnings raised, in order.
    public var warnings: [RCondition] = []
    /// Messages (`message()`), in order, each ending as R wrote it.
    public var messages: [String] = []
    /// Why the evaluation failed, or `nil` when every expression ran.
    public var error: EvaluationError?
    /// True when output beyond the configured maximum was dropped.
    public var outputTruncated: Bool = false

    /// True when every expression was parsed and evaluated without error.
    public var succeeded: Bool { error == nil }

    /// The console transcript: what an R console would have shown, stdout and stderr interleaved.
    public var transcript: String {
        var text = ""
        for chunk in output { text += chunk.text }
        return text
    }

    /// Creates an empty evaluation result.
    public init() {}
}

/// A piece of console output.
public struct ConsoleChunk: Sendable, Hashable {
    /// Which stream R wrote to.
    public enum Stream: Sendable, Hashable { case stdout, stderr }
    /// The stream.
    public var stream: Stream
    /// The text (UTF-8).
    public var text: String

    /// Creates a chunk.
    public init(stream: Stream, text: String) {
        self.stream = stream
        self.text = text
    }
}

/// An R condition (warning or error) as text.
public struct RCondition: Sendable, Hashable {
    /// `conditionMessage()`.
    public var message: String
    /// The deparsed `conditionCall()`, or `nil` when there was none.
    public var call: String?

    /// Creates a condition.
    public init(message: String, call: String?) {
        self.message = message
        self.call = call
    }
}

/// Why an evaluation failed.
public struct EvaluationError: Error, Sendable, Hashable {
    /// The kind of failure; extensible, so unknown codes stay representable.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The code ended inside an unfinished expression (R's PARSE_INCOMPLETE).
        public static let parseIncomplete = Code(rawValue: "parse-incomplete")
        /// The code is not valid R (R's PARSE_ERROR).
        public static let parseInvalid = Code(rawValue: "parse-error")
        /// R signalled an error while evaluating.
        public static let runtime = Code(rawValue: "r-error")
        /// The evaluation ran past its deadline and was interrupted.
        public static let timeout = Code(rawValue: "timeout")
        /// The client went away during the evaluation, which was stopped.
        public static let cancelled = Code(rawValue: "cancelled")
        /// The code could not be handed to R at all (too long, invalid, out of memory).
        public static let rejected = Code(rawValue: "rejected")
    }

    /// The kind of failure.
    public var code: Code
    /// The message, as R would show it after `Error: ` / `Error in call : `.
    public var message: String
    /// The call R reported, deparsed, for runtime errors.
    public var call: String?
    /// Which top-level expression (0-based) failed; `nil` for parse errors.
    public var expressionIndex: Int?
    /// The R condition's classes (`class(e)`, e.g. `simpleError`, `error`, `condition`) for
    /// runtime errors; empty otherwise.
    public var classes: [String] = []

    /// Creates an error.
    public init(code: Code, message: String, call: String? = nil, expressionIndex: Int? = nil) {
        self.code = code
        self.message = message
        self.call = call
        self.expressionIndex = expressionIndex
    }

    /// True for parse errors (incomplete or invalid code).
    public var isParseError: Bool { code == .parseIncomplete || code == .parseInvalid }
}

/// How to evaluate.
public struct EvaluationOptions: Sendable, Hashable {
    /// Print each visible top-level value as the console does (the text protocol wants this).
    public var printVisible: Bool
    /// Convert the last value to an ``RValue``.
    public var convertValue: Bool
    /// Interrupt R after this long (wall clock). `nil` means no limit.
    public var timeout: Duration?
    /// Keep at most this many bytes of console output; the rest is dropped with a note.
    public var maxOutputBytes: Int
    /// Record warnings and messages and format conditions like the console. Off, evaluation
    /// is cheaper (as Rserve's): errors are still reported (and set `geterrmessage()`), but
    /// warnings are left to R and `warnings`/`messages` stay empty.
    public var captureConditions: Bool = true

    /// Creates options; the defaults print like the console and convert the last value.
    public init(printVisible: Bool = true, convertValue: Bool = true, timeout: Duration? = nil, maxOutputBytes: Int = 16 << 20) {
        self.printVisible = printVisible
        self.convertValue = convertValue
        self.timeout = timeout
        self.maxOutputBytes = maxOutputBytes
    }
}
