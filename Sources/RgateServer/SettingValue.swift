/// How the text of a setting becomes a value, and a value its text: one parser for the
/// configuration file, the environment, the command line and role fields alike.
///
/// Parsing never throws: a text that is not a value gives `nil`, and the caller reports
/// `key: expected <expected>, not "<text>"` with the origin it knows.
public struct SettingValue<Value>: Sendable {
    /// The placeholder in help and documentation, e.g. `port` (shown as `<port>`).
    public let placeholder: String
    /// What the text must be, for errors and documentation: "a port number, 0 (any free port) or off".
    public let expected: String
    /// The text a command-line flag given alone stands for (`--shared-session` means `true`),
    /// or nil when the flag needs a value.
    public let bareFlag: String?
    /// Texts that are values, the first ones least likely to be a default; for tests and docs.
    public let examples: [String]
    private let parseText: @Sendable (String) -> Value?
    private let formatValue: @Sendable (Value) -> String

    /// A parser.
    /// - Parameters:
    ///   - placeholder: the name of the value in help, e.g. `seconds`.
    ///   - expected: what the text must be, completing "expected ...".
    ///   - bareFlag: the text a flag without a value stands for, or nil.
    ///   - examples: valid texts, for tests and docs.
    ///   - parse: the value of a text, or nil if it is not one.
    ///   - format: the text of a value, which `parse` reads back as the same value.
    public init(
        placeholder: String, expected: String, bareFlag: String? = nil, examples: [String],
        parse: @escaping @Sendable (String) -> Value?, format: @escaping @Sendable (Value) -> String
    ) {
        self.placeholder = placeholder
        self.expected = expected
        self.bareFlag = bareFlag
        self.examples = examples
        self.parseText = parse
        self.formatValue = format
    }

    /// The value of `text`, or nil if it is not one.
    public func parse(_ text: String) -> Value? { parseText(text) }

    /// The text of `value`, as a configuration file would say it.
    public func format(_ value: Value) -> String { formatValue(value) }

    /// The value of `text`, or an error naming `origin` and `key`.
    public func parse(_ text: String, key: String, origin: String) throws(ConfigurationError) -> Value {
        guard let value = parseText(text) else {
            throw ConfigurationError(origin: origin, reason: "\(key): expected \(expected), not \"\(text)\"")
        }
        return value
    }

    /// The same text, read as `nil` when it is `0`: "0 = none" for limits and timeouts.
    func zeroIsNone() -> SettingValue<Value?> where Value: Equatable & Sendable {
        SettingValue<Value?>(
            placeholder: placeholder, expected: expected, bareFlag: bareFlag, examples: examples,
            parse: { [parseText] text in
                guard let value = parseText(text) else { return nil }
                return .some(value == parseText("0") ? nil : value)
            },
            format: { [formatValue] value in value.map(formatValue) ?? "0" })
    }
}

extension SettingValue where Value == Bool {
    /// `true`, `yes`, `on`, `1` or `false`, `no`, `off`, `0`; a flag alone means true.
    public static var bool: Self {
        Self(
            placeholder: "bool", expected: "true or false", bareFlag: "true", examples: ["true", "false"],
            parse: { text in
                switch text.lowercased() {
                case "true", "yes", "on", "1": true
                case "false", "no", "off", "0": false
                default: nil
                }
            },
            format: { $0 ? "true" : "false" })
    }
}

extension SettingValue where Value == Int {
    /// A whole number of at least `minimum`.
    public static func count(minimum: Int) -> Self {
        Self(
            placeholder: "n", expected: "a whole number of at least \(minimum)", examples: ["\(minimum + 7)", "\(minimum)"],
            parse: { text in Int(text).flatMap { $0 >= minimum ? $0 : nil } },
            format: { String($0) })
    }

    /// A size in bytes: `1048576`, `512K`, `64M`, `1G`, `1T` (optionally with a trailing `B`).
    public static var size: Self {
        Self(
            placeholder: "size", expected: "a size like 1048576, 512K, 64M or 1G", examples: ["3M", "1000", "0"],
            parse: { ServerConfiguration.parseSize($0) },
            format: { bytes in
                for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes != 0 && bytes % (1 << shift) == 0 {
                    return "\(bytes >> shift)\(suffix)"
                }
                return String(bytes)
            })
    }
}

extension SettingValue where Value == Int? {
    /// A port number, `0` (any free port) or `off` (nil).
    public static var port: Self {
        Self(
            placeholder: "port", expected: "a port number, 0 (any free port) or off", examples: ["7311", "0", "off"],
            parse: { text in
                if text.lowercased() == "off" { return .some(nil) }
                guard let port = Int(text), (0...65535).contains(port) else { return nil }
                return port
            },
            format: { $0.map(String.init) ?? "off" })
    }

    /// A size, `0` for none (nil).
    public static var sizeOrNone: Self { SettingValue<Int>.size.zeroIsNone() }
}

extension SettingValue where Value == Duration {
    /// Seconds, a decimal number such as `30` or `0.25`, kept to the millisecond.
    public static var seconds: Self {
        Self(
            placeholder: "seconds", expected: "seconds (a number)", examples: ["42", "0.5", "0"],
            parse: { text in
                // The bound keeps the conversion to milliseconds from overflowing (292 million years).
                guard let seconds = Double(text), seconds >= 0, seconds < 9e15 else { return nil }
                return .milliseconds(Int64(seconds * 1000))
            },
            format: { duration in
                let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
                return milliseconds % 1000 == 0 ? String(milliseconds / 1000) : String(Double(milliseconds) / 1000)
            })
    }
}

extension SettingValue where Value == Duration? {
    /// Seconds, `0` for none (nil).
    public static var secondsOrNone: Self { SettingValue<Duration>.seconds.zeroIsNone() }
}

extension SettingValue where Value == String {
    /// Any text that is not empty, e.g. an address or a role name.
    public static func name(_ placeholder: String, expected: String) -> Self {
        Self(
            placeholder: placeholder, expected: expected, examples: ["example", "other"],
            parse: { $0.isEmpty ? nil : $0 }, format: { $0 })
    }

    /// One of `choices`.
    public static func oneOf(_ choices: [String], placeholder: String) -> Self {
        Self(
            placeholder: placeholder,
            expected: choices.dropLast().joined(separator: ", ") + " or " + (choices.last ?? ""),
            examples: choices.reversed(),
            parse: { choices.contains($0) ? $0 : nil }, format: { $0 })
    }
}

extension SettingValue where Value == String? {
    /// Any text, e.g. a file path; empty, or the word `none` when given, is nil.
    public static func text(_ placeholder: String, none: String? = nil) -> Self {
        Self(
            placeholder: placeholder, expected: "a \(placeholder)" + (none.map { " or \($0)" } ?? ""),
            examples: ["/tmp/rgate-example", "/tmp/rgate-other"] + (none.map { [$0] } ?? []),
            parse: { text in .some(text.isEmpty || text == none ? nil : text) },
            format: { $0 ?? none ?? "" })
    }

    /// A file path; empty is none.
    public static var file: Self { text("file") }
}
