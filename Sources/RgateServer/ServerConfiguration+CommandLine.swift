/// The settings as command-line flags of `rgate serve`, and their documentation (the `--help`
/// text and the README's table), all from ``ServerConfiguration/settings``.
extension ServerConfiguration {
    /// The settings among command-line arguments, in order (a later one wins): `--text-port 0`,
    /// `--text-port=0`, and for a true/false setting the flag alone (`--shared-session`, true) or
    /// followed by a true/false word (`--session-uids off`).
    /// - Throws: ``ConfigurationError`` for an unknown flag, a flag without its value, or an
    ///   argument that is not a flag. Values are checked later, by ``load(file:fileText:environment:overrides:)``.
    public static func commandLineSettings(_ arguments: [String]) throws(ConfigurationError) -> [(key: String, value: String)] {
        var result: [(key: String, value: String)] = []
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError(origin: argument, reason: "unexpected argument (`rgate serve --help` lists the settings)")
            }
            var name = argument.dropFirst(2)
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = name[..<equals]
            }
            guard let setting = settingsByFlag["--" + name] else {
                throw ConfigurationError(origin: "--" + name, reason: "unknown option (`rgate serve --help` lists the settings)")
            }
            if let inlineValue {
                result.append((setting.key, inlineValue))
            } else if let bare = setting.bareFlag {
                if let next = rest.first, setting.accepts(next) {
                    result.append((setting.key, next))
                    rest.removeFirst()
                } else {
                    result.append((setting.key, bare))
                }
            } else if let next = rest.popFirst() {
                result.append((setting.key, next))
            } else {
                throw ConfigurationError(origin: setting.flag, reason: "expected a value: \(setting.expected)")
            }
        }
        return result
    }

    /// The settings by command-line flag.
    static let settingsByFlag = Dictionary(uniqueKeysWithValues: settings.map { ($0.flag, $0) })

    /// How values are written, for every kind of setting.
    public static let valueForms = """
        Ports take a number, 0 (any free port) or off; sizes a number of bytes or 512K, 64M, 1G; \
        seconds a decimal number (0.25); true/false settings true, false, yes, no, on, off, 1 or 0 \
        (the flag alone means true).
        """

    /// The settings as `rgate serve --help` lists them: one flag per setting with its value, what
    /// it does and its default, in lines of at most `width` characters.
    public static func settingsHelp(width: Int = 79) -> String {
        let labelWidth = 24
        var lines: [String] = []
        for setting in settings {
            let label = "  " + setting.flag + " " + setting.valuePlaceholder
            let description = setting.help + (setting.defaultText.isEmpty ? "" : " [\(setting.defaultText)]")
            var body = wrap(description, width: width - labelWidth - 2)
            if label.count < labelWidth + 1 {
                lines.append(label.padding(to: labelWidth + 2) + body.removeFirst())
            } else {
                lines.append(label)
            }
            lines += body.map { String(repeating: " ", count: labelWidth + 2) + $0 }
        }
        return lines.joined(separator: "\n")
    }

    /// ``valueForms`` and the settings as a Markdown table (key, flag, meaning, default), as in
    /// the README.
    public static var settingsMarkdown: String {
        func cell(_ text: String) -> String { text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
        var lines = [valueForms, "", "| key | flag | meaning | default |", "|---|---|---|---|"]
        for setting in settings {
            let defaultCell = setting.defaultText.isEmpty ? "" : "`\(cell(setting.defaultText))`"
            lines.append("| `\(setting.key)` | `\(setting.flag) \(setting.valuePlaceholder)` | \(cell(setting.help)) | \(defaultCell) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Words of `text` in lines of at most `width` characters (a longer word stands alone).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        return lines + [line]
    }
}

extension Setting {
    /// The value after the flag in help: `<port>`, or `[<bool>]` when the flag may stand alone.
    var valuePlaceholder: String { bareFlag == nil ? "<\(placeholder)>" : "[<\(placeholder)>]" }
}

extension String {
    func padding(to width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
