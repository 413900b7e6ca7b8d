/// One setting of ``ServerConfiguration``, declared once in ``ServerConfiguration/settings``:
/// its key, its documentation, how its text is read and where the value lands.
///
/// Everything else is derived from the key: the configuration file says `text_port: 0`, the
/// environment `RGATE_TEXT_PORT=0`, the command line `--text-port 0`.
public struct Setting: Sendable {
    /// The key in the configuration file, e.g. `text_port`.
    public let key: String
    /// One or two sentences for `--help` and the README.
    public let help: String
    /// The name of the value in help, e.g. `port`.
    public let placeholder: String
    /// What the value must be, completing "expected ...".
    public let expected: String
    /// The default as shown in help: the text of the default value unless the entry says otherwise.
    public let defaultText: String
    /// The text a command-line flag given alone stands for, or nil when the flag needs a value.
    public let bareFlag: String?
    /// Valid texts, for tests and docs.
    public let examples: [String]
    private let assign: @Sendable (inout ServerConfiguration, String, String) throws(ConfigurationError) -> Void
    private let read: @Sendable (ServerConfiguration) -> String
    private let isValue: @Sendable (String) -> Bool

    /// A setting stored at `keyPath`.
    /// - Parameters:
    ///   - key: the configuration-file key (`snake_case`).
    ///   - keyPath: where the value lands.
    ///   - value: how the text is read and written.
    ///   - defaultText: the default as help shows it, when the text of the default value is not
    ///     the whole story (e.g. "analyst; none with users").
    ///   - help: what the setting does.
    public init<Value>(
        _ key: String, _ keyPath: any WritableKeyPath<ServerConfiguration, Value> & Sendable, _ value: SettingValue<Value>,
        default defaultText: String? = nil, help: String
    ) {
        self.init(key, value, default: defaultText, help: help, get: { $0[keyPath: keyPath] }, set: { $0[keyPath: keyPath] = $1 })
    }

    /// A setting that lands through `set`, for one that changes more than one property.
    /// - Parameters:
    ///   - get: the current value, for help's default and round trips.
    ///   - set: stores a parsed value.
    public init<Value>(
        _ key: String, _ value: SettingValue<Value>, default defaultText: String? = nil, help: String,
        get: @escaping @Sendable (ServerConfiguration) -> Value,
        set: @escaping @Sendable (inout ServerConfiguration, Value) -> Void
    ) {
        self.key = key
        self.help = help
        self.placeholder = value.placeholder
        self.expected = value.expected
        self.defaultText = defaultText ?? value.format(get(ServerConfiguration()))
        self.bareFlag = value.bareFlag
        self.examples = value.examples
        self.assign = { (configuration: inout ServerConfiguration, text: String, origin: String) throws(ConfigurationError) in
            set(&configuration, try value.parse(text, key: key, origin: origin))
        }
        self.read = { value.format(get($0)) }
        self.isValue = { value.parse($0) != nil }
    }

    /// The command-line flag: `--` and the key with `-` for `_`.
    public var flag: String { "--" + key.replacingUnderscores() }

    /// The environment variable: `RGATE_` and the key in upper case.
    public var environmentVariable: String { "RGATE_" + key.uppercased() }

    /// Reads `text` into `configuration`, or throws an error naming `origin` and the key.
    public func apply(_ text: String, to configuration: inout ServerConfiguration, origin: String) throws(ConfigurationError) {
        try assign(&configuration, text, origin)
    }

    /// The setting's value in `configuration`, as a configuration file would say it.
    public func text(in configuration: ServerConfiguration) -> String { read(configuration) }

    /// Whether `text` is a value of this setting.
    public func accepts(_ text: String) -> Bool { isValue(text) }
}
