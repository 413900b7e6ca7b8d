/// Why an R value could not be written as rjson, or why a body is not valid rjson.
///
/// `code` is for programs (an HTTP front end maps it to a problem type), `message` for humans,
/// `path` says which node (`$a[[2]]@names`, see ``RJSONPath``) and `offset` which byte of the
/// input (decoding only).
public struct RJSONError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is; an open set, so new codes can be added without breaking callers.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The bytes are not JSON: an unexpected character, a missing `,` or `:`, a bad literal.
        public static let syntax = Code(rawValue: "syntax")
        /// The input ended inside a value.
        public static let truncated = Code(rawValue: "truncated")
        /// Something other than whitespace follows the top-level value.
        public static let trailingData = Code(rawValue: "trailing-data")
        /// A string has a bad `\` escape, a lone surrogate, a raw control character or a NUL.
        public static let invalidString = Code(rawValue: "invalid-string")
        /// A string is not valid UTF-8 (overlong forms, surrogates, beyond U+10FFFF, stray bytes).
        public static let invalidUTF8 = Code(rawValue: "invalid-utf8")
        /// Nesting deeper than the limit (hostile input, or an R object nested too deeply).
        public static let tooDeep = Code(rawValue: "too-deep")
        /// A number that is too long, overflows or underflows a double, or is outside R's integers.
        public static let numberOutOfRange = Code(rawValue: "number-out-of-range")
        /// A node is not `{"type":…,"attributes":{…},"value":…}`: a missing, repeated or unknown key.
        public static let invalidNode = Code(rawValue: "invalid-node")
        /// A value does not fit its node's type (`true` in a double vector, a number in a list).
        public static let typeMismatch = Code(rawValue: "type-mismatch")
        /// An attribute list with an empty or repeated name, or an attribute R does not allow here.
        public static let invalidAttribute = Code(rawValue: "invalid-attribute")
        /// A type rjson does not carry: closures, environments, S4 objects, external pointers, ...
        public static let unsupportedType = Code(rawValue: "unsupported-type")
        /// A call (R language object) that rgate cannot write as, or read from, R source text.
        public static let unsupportedLanguage = Code(rawValue: "unsupported-language")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong, for humans.
    public var message: String
    /// The offending node, in R's subsetting notation (`""` is the top-level value).
    public var path: String
    /// The byte offset in the input where decoding failed, when decoding.
    public var offset: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, path: String = "", offset: Int? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
    }

    public var description: String {
        var text = "rjson \(code): \(message)"
        if !path.isEmpty { text += " (at \(path))" }
        if let offset { text += " (byte \(offset))" }
        return text
    }
}
