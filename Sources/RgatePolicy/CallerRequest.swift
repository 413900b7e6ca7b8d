/// What a client in a restricted (`caller`) role may ask for, parsed from the code it sent.
///
/// A caller never has its code parsed or evaluated by R. rgate parses it here, with a grammar
/// far smaller than R's, and accepts exactly three forms:
///
/// - `f(a, b, name = c)`: a call of an allow-listed function (`f` or `pkg::f`), each argument a
///   literal constant or the name of a session variable (set with Rserve's `setSEXP`);
/// - `x`: the value of a session variable;
/// - `is.function(x)`: what pyRserve sends for `conn.r.x`.
///
/// Anything else (operators, nested calls, assignments, `:::`, backquotes, several statements,
/// non-ASCII names...) is refused with a ``CallerRequestError`` before R sees a byte. What R
/// then evaluates is ``canonicalSource``, rebuilt from the parsed tokens, never the client's text.
public enum CallerRequest: Sendable, Hashable {
    /// A call of the allow-listed function `function` (as written: `name` or `pkg::name`).
    case call(function: String, arguments: [CallerArgument])
    /// The value of the session variable with this name.
    case variable(String)
    /// Whether `name` is a function the role may call (pyRserve's `is.function(name)` probe).
    case isFunction(String)

    /// The R source evaluated for a `.call`: the function reference, then each argument as a
    /// literal in canonical form or a variable name.
    public var canonicalSource: String {
        switch self {
        case .call(let function, let arguments):
            return function + "(" + arguments.map(\.canonicalSource).joined(separator: ", ") + ")"
        case .variable(let name): return name
        case .isFunction(let name): return "is.function(\(name))"
        }
    }

    /// The session variables the request reads.
    public var variables: [String] {
        switch self {
        case .call(_, let arguments):
            return arguments.compactMap { if case .variable(let name) = $0.value { name } else { nil } }
        case .variable(let name): return [name]
        case .isFunction: return []
        }
    }
}

/// One argument of an allowed call.
public struct CallerArgument: Sendable, Hashable {
    /// The argument's name (`name = value`), if given.
    public var label: String?
    /// The argument's value.
    public var value: CallerValue

    public init(label: String?, value: CallerValue) {
        self.label = label
        self.value = value
    }

    var canonicalSource: String {
        let value: String
        switch self.value {
        case .variable(let name): value = name
        case .literal(let source): value = source
        }
        if let label { return "\(label) = \(value)" }
        return value
    }
}

/// An argument value: data only.
public enum CallerValue: Sendable, Hashable {
    /// A session variable, by name.
    case variable(String)
    /// A constant (number, string, `TRUE`, `NULL`, `NA`...), as canonical R source.
    case literal(String)
}

/// Why a caller's request was refused.
public struct CallerRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, for the client.
    public var message: String
    /// Byte offset in the request where the problem was found.
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { message }
}
