import Foundation
@testable import RgateServer
import Testing

/// The settings table: every key reaches the configuration from the file, the environment and
/// the command line alike, and the help and the README list exactly the table.
@Suite struct SettingsTableTests {
    static let keys = ServerConfiguration.settings.map(\.key)

    static func setting(_ key: String) throws -> Setting { try #require(ServerConfiguration.setting(key)) }

    /// The setting's examples read as they land: the text `text(in:)` gives back for each.
    static func canonical(_ setting: Setting, _ text: String) throws -> String {
        var configuration = ServerConfiguration()
        try setting.apply(text, to: &configuration, origin: "test")
        return setting.text(in: configuration)
    }

    /// An example that changes the default configuration.
    static func sample(_ setting: Setting) throws -> String {
        let defaults = ServerConfiguration()
        return try #require(setting.examples.first { text in
            var configuration = defaults
            return (try? setting.apply(text, to: &configuration, origin: "test")) != nil && configuration != defaults
        }, "\(setting.key): no example differs from the default")
    }

    static func fromFile(_ key: String, _ value: String) throws -> ServerConfiguration {
        try ServerConfiguration.layered(file: "rgate.yaml", fileText: "# test\n\(key): \"\(value)\"\n", environment: [:], overrides: [])
    }

    static func fromEnvironment(_ key: String, _ value: String) throws -> ServerConfiguration {
        try ServerConfiguration.layered(file: nil, environment: [try setting(key).environmentVariable: value], overrides: [])
    }

    static func fromFlags(_ arguments: [String]) throws -> ServerConfiguration {
        try ServerConfiguration.layered(file: nil, environment: [:], overrides: try ServerConfiguration.commandLineSettings(arguments))
    }

    @Test func keysFlagsAndVariablesAreUniqueAndDerivedFromTheKey() {
        let settings = ServerConfiguration.settings
        #expect(Set(settings.map(\.key)).count == settings.count)
        #expect(Set(settings.map(\.flag)).count == settings.count)
        for setting in settings {
            #expect(setting.key.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } && setting.key.first?.isLetter == true, "\(setting.key)")
            #expect(setting.flag == "--" + setting.key.replacingOccurrences(of: "_", with: "-"))
            #expect(setting.environmentVariable == "RGATE_" + setting.key.uppercased())
            #expect(!setting.help.isEmpty && setting.help.hasSuffix("."), "\(setting.key): help should be a sentence")
        }
    }

    @Test("every key lands the same from the file, the environment and a flag", arguments: keys)
    func roundTrip(_ key: String) throws {
        let setting = try Self.setting(key)
        let value = try Self.sample(setting)
        var expected = ServerConfiguration()
        try setting.apply(value, to: &expected, origin: "test")
        #expect(expected != ServerConfiguration())
        #expect(setting.text(in: expected) != setting.text(in: ServerConfiguration()))
        #expect(try Self.fromFile(key, value) == expected)
        #expect(try Self.fromEnvironment(key, value) == expected)
        #expect(try Self.fromFlags([setting.flag, value]) == expected)
        #expect(try Self.fromFlags(["\(setting.flag)=\(value)"]) == expected)
        // It lands on its own property: every other setting still reads its default.
        for other in ServerConfiguration.settings where other.key != key {
            #expect(other.text(in: expected) == other.text(in: ServerConfiguration()), "\(key) changed \(other.key)")
        }
    }

    @Test("the default shown in help reads back as the default", arguments: keys)
    func defaultTextReadsBack(_ key: String) throws {
        let setting = try Self.setting(key)
        let text = setting.text(in: ServerConfiguration())
        #expect(try Self.canonical(setting, text) == text)
        if key != "anonymous_role" && key != "qap_rsa_key_file" { // their help tells the whole story
            #expect(setting.defaultText == text)
        }
    }

    @Test("file < environment < flag, for every key", arguments: keys)
    func precedence(_ key: String) throws {
        let setting = try Self.setting(key)
        var distinct: [String] = [], seen: Set<String> = []
        for example in setting.examples where seen.insert(try Self.canonical(setting, example)).inserted {
            distinct.append(example)
        }
        try #require(distinct.count >= 2, "\(key): needs two examples that differ")
        let (a, b) = (distinct[0], distinct[1])
        let file = "\(key): \"\(a)\"\n"
        let environment = [setting.environmentVariable: b]
        let fileOnly = try ServerConfiguration.layered(file: "f", fileText: file, environment: [:], overrides: [])
        #expect(setting.text(in: fileOnly) == (try Self.canonical(setting, a)))
        let fileAndEnvironment = try ServerConfiguration.layered(file: "f", fileText: file, environment: environment, overrides: [])
        #expect(setting.text(in: fileAndEnvironment) == (try Self.canonical(setting, b)))
        let all = try ServerConfiguration.layered(
            file: "f", fileText: file, environment: environment, overrides: try ServerConfiguration.commandLineSettings([setting.flag, a]))
        #expect(setting.text(in: all) == (try Self.canonical(setting, a)))
    }

    @Test("a bad value is refused with its origin and the key", arguments: keys)
    func badValues(_ key: String) throws {
        let setting = try Self.setting(key)
        // Paths and names take any text; the other kinds refuse at least one of these.
        guard let bad = ["", "not-a-value", "-1", "1e400"].first(where: { !setting.accepts($0) }) else { return }
        let reason = "\(key): expected \(setting.expected), not \"\(bad)\""
        #expect(throws: ConfigurationError(origin: "rgate.yaml:2", reason: reason)) { try Self.fromFile(key, bad) }
        #expect(throws: ConfigurationError(origin: setting.environmentVariable, reason: reason)) { try Self.fromEnvironment(key, bad) }
        // `--flag=value`: a true/false flag would leave a separate bad word as an unexpected argument.
        #expect(throws: ConfigurationError(origin: setting.flag, reason: reason)) { try Self.fromFlags(["\(setting.flag)=\(bad)"]) }
    }

    @Test func unknownKeysAreRefusedWithTheirOrigin() throws {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.layered(file: "c.yaml", fileText: "workers: 1\ntxt_port: 1\n", environment: [:], overrides: []) }
        do {
            _ = try ServerConfiguration.layered(file: "c.yaml", fileText: "workers: 1\ntxt_port: 1\n", environment: [:], overrides: [])
        } catch {
            #expect(error.origin == "c.yaml:2")
            #expect(error.reason.hasPrefix("unknown setting \"txt_port\" (known: "))
        }
        #expect(throws: ConfigurationError(origin: "--txt-port", reason: "unknown option (`rgate serve --help` lists the settings)")) {
            try ServerConfiguration.commandLineSettings(["--workers", "1", "--txt-port", "1"])
        }
        // Other RGATE_* variables belong to other tools (RGATE_PASSWORD, RGATE_BIN) and are ignored.
        #expect(try ServerConfiguration.layered(file: nil, environment: ["RGATE_TXT_PORT": "1"], overrides: []) == ServerConfiguration())
    }

    @Test func commandLineForms() throws {
        typealias Pairs = [[String]]
        func pairs(_ arguments: [String]) throws -> Pairs { try ServerConfiguration.commandLineSettings(arguments).map { [$0.key, $0.value] } }
        #expect(try pairs(["--text-port", "0", "--text-port=off", "--audit-log", "-"]) == [["text_port", "0"], ["text_port", "off"], ["audit_log", "-"]])
        // A true/false flag stands alone or takes a true/false word; anything else is the next flag.
        #expect(try pairs(["--shared-session", "--session-uids", "off", "--allow-shutdown", "--workers", "2"])
            == [["shared_session", "true"], ["session_uids", "off"], ["allow_shutdown", "true"], ["workers", "2"]])
        #expect(try pairs(["--allow-shutdown=no"]) == [["allow_shutdown", "no"]])
        #expect(throws: ConfigurationError.self) { try pairs(["--shared-session", "maybe"]) }
        #expect(throws: ConfigurationError(origin: "--workers", reason: "expected a value: a whole number of at least 0")) { try pairs(["--workers"]) }
        #expect(throws: ConfigurationError.self) { try pairs(["8080"]) }
        #expect(throws: ConfigurationError.self) { try pairs(["--text_port", "1"]) }
        // A later flag wins.
        #expect(try Self.fromFlags(["--workers", "2", "--workers", "1"]).warmWorkers == 1)
    }

    @Test func todaysFlagsKeepTheirValues() throws {
        let config = try Self.fromFlags([
            "--host", "::1", "--text-port", "off", "--qap-port", "0", "--workers", "2", "--eval-timeout", "0",
            "--kill-grace", "0.5", "--idle-timeout", "0.5", "--max-sessions", "3", "--session-wait", "0.5",
            "--memory-limit", "1G", "--max-output-size", "64K", "--max-processes", "8", "--shared-session",
            "--allow-shutdown", "--session-uids", "off", "--log-level", "warning", "--audit-log", "-",
        ])
        #expect(config.host == "::1" && config.textPort == nil && config.qapPort == 0 && config.warmWorkers == 2)
        #expect(config.evalTimeout == nil && config.killGrace == .milliseconds(500) && config.idleTimeout == .milliseconds(500))
        #expect(config.maxSessions == 3 && config.workerWaitTimeout == .milliseconds(500))
        #expect(config.memoryLimitBytes == 1 << 30 && config.maxOutputBytes == 64 << 10 && config.maxProcesses == 8)
        #expect(config.sharedSession && config.allowShutdown && !config.sessionUIDs)
        #expect(config.logLevel == "warning" && config.auditLog == "-")
        #expect(try Self.fromFlags(["--memory-limit", "0", "--audit-log", "off", "--anonymous-role", "none"]).memoryLimitBytes == nil)
    }

    @Test func roleFieldsUseTheSameParsers() throws {
        let yaml = """
            roles:
              r:
                base: analyst
                eval_timeout: 2.5
                memory_limit: 64M
                network: yes
            """
        let role = try #require(try ServerConfiguration.load(file: "rgate.yaml", fileText: yaml, environment: [:], overrides: []).policy.roles["r"])
        #expect(role.evalTimeoutMilliseconds == 2500 && role.memoryLimitBytes == 64 << 20 && role.network)
        #expect(throws: ConfigurationError(origin: "rgate.yaml:4", reason: "eval_timeout: expected seconds (a number), not \"soon\"")) {
            try ServerConfiguration.load(file: "rgate.yaml", fileText: "roles:\n  r:\n    base: analyst\n    eval_timeout: soon\n", environment: [:], overrides: [])
        }
        #expect(throws: ConfigurationError(origin: "rgate.yaml:3", reason: "network: expected true or false, not \"maybe\"")) {
            try ServerConfiguration.load(file: "rgate.yaml", fileText: "roles:\n  r:\n    network: maybe\n    base: analyst\n", environment: [:], overrides: [])
        }
    }

    @Test func valuesTooLargeAreRefusedNotTrapped() {
        #expect(ServerConfiguration.parseSize("9999999999T") == nil)
        #expect(ServerConfiguration.setting("eval_timeout")?.accepts("1e300") == false)
    }

    @Test func helpListsEveryFlagWithItsDefault() {
        let help = ServerConfiguration.settingsHelp()
        for setting in ServerConfiguration.settings {
            #expect(help.contains("  \(setting.flag) "), "\(setting.flag) missing from help")
            if !setting.defaultText.isEmpty {
                #expect(help.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "  ", with: "").contains("[\(setting.defaultText)]"))
            }
        }
        #expect(help.split(separator: "\n").allSatisfy { $0.count <= 79 })
    }

    @Test func readmeTableMatchesTheSettings() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- settings:begin -->\n"))
        let end = try #require(readme.range(of: "<!-- settings:end -->", range: begin.upperBound..<readme.endIndex))
        #expect(String(readme[begin.upperBound..<end.lowerBound]) == ServerConfiguration.settingsMarkdown,
                "README.md is out of date: put the output of `rgate serve --print-settings-markdown` between the settings markers")
    }

    @Test func serveHelpListsEverySetting() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        process.arguments = ["serve", "--help"]
        let out = Pipe()
        process.standardOutput = out
        process.environment = ["COLUMNS": "80"]
        try process.run()
        let help = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        for setting in ServerConfiguration.settings {
            #expect(help.contains("  \(setting.flag) "), "\(setting.flag) missing from `rgate serve --help`")
        }
        #expect(help.contains("--config <file>"))
        #expect(!help.contains("--exit-with-parent") && !help.contains("--print-settings-markdown"))
    }
}
