import Yams

/// A setting that cannot be used: where it came from and why.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// e.g. `rgate.yaml:7`, `RGATE_TEXT_PORT`, `--text-port`.
    public var origin: String
    /// What is wrong and what is expected.
    public var reason: String

    public init(origin: String, reason: String) {
        self.origin = origin
        self.reason = reason
    }

    public var description: String { "\(origin): \(reason)" }
}

extension ServerConfiguration {
    /// Every setting, by its config-file key. The environment variable is `RGATE_` + the key in
    /// upper case; the command-line flag is `--` + the key with `-` for `_`.
    public static let keys: [String: String] = [
        "host": "address to listen on",
        "text_port": "text protocol port, 0 or off",
        "qap_port": "QAP1 port, 0 or off",
        "qap_password_file": "Rserve-style password file",
        "qap_rsa_key_file": "PEM RSA key for RSA secure login",
        "allow_shutdown": "let QAP1 clients shut the server down",
        "workers": "warm session processes",
        "eval_timeout": "seconds per request, 0 = none",
        "kill_grace": "seconds before an unresponsive session is killed",
        "idle_timeout": "seconds before an idle connection is closed, 0 = never",
        "max_request_size": "largest text request",
        "max_qap_message_size": "largest QAP1 message",
        "max_output_size": "console output kept per request",
        "max_sessions": "sessions at once",
        "session_wait": "seconds a connection may wait for a session",
        "memory_limit": "memory per session, 0 = none",
        "max_file_size": "largest file a session may write",
        "shared_session": "one shared R for text connections",
        "shutdown_grace": "seconds sessions may finish after SIGTERM",
        "log_level": "trace ... critical",
        "session_uids": "as root: each session runs as its own unprivileged user",
        "max_processes": "processes per session (with session_uids)",
    ]

    /// Applies one setting given as text.
    public mutating func apply(_ key: String, _ value: String, origin: String) throws(ConfigurationError) {
        func fail(_ reason: String) -> ConfigurationError { ConfigurationError(origin: origin, reason: "\(key): \(reason), not \"\(value)\"") }
        func port() throws(ConfigurationError) -> Int? {
            if value.lowercased() == "off" { return nil }
            guard let p = Int(value), (0...65535).contains(p) else { throw fail("expected a port number, 0 (any free port) or off") }
            return p
        }
        func seconds(allowZero: Bool = true) throws(ConfigurationError) -> Duration? {
            guard let s = Double(value), s >= 0, s.isFinite else { throw fail("expected seconds (a number)") }
            if s == 0 && allowZero { return nil }
            return .milliseconds(Int64(s * 1000))
        }
        func size() throws(ConfigurationError) -> Int {
            guard let n = Self.parseSize(value) else { throw fail("expected a size like 1048576, 512K, 64M or 1G") }
            return n
        }
        func count(minimum: Int) throws(ConfigurationError) -> Int {
            guard let n = Int(value), n >= minimum else { throw fail("expected a whole number of at least \(minimum)") }
            return n
        }
        func flag() throws(ConfigurationError) -> Bool {
            switch value.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw fail("expected true or false")
            }
        }
        switch key {
        case "host":
            guard !value.isEmpty else { throw fail("expected an address") }
            host = value
        case "text_port": textPort = try port()
        case "qap_port": qapPort = try port()
        case "qap_password_file": qapPasswordFile = value.isEmpty ? nil : value
        case "qap_rsa_key_file": qapRSAKeyFile = value.isEmpty ? nil : value
        case "allow_shutdown": allowShutdown = try flag()
        case "workers": warmWorkers = try count(minimum: 0)
        case "eval_timeout": evalTimeout = try seconds()
        case "kill_grace": killGrace = try seconds(allowZero: false) ?? .seconds(2)
        case "idle_timeout": idleTimeout = try seconds()
        case "max_request_size": maxRequestBytes = try size()
        case "max_qap_message_size": maxQAPMessageBytes = try size()
        case "max_output_size": maxOutputBytes = try size()
        case "max_sessions": maxSessions = try count(minimum: 1)
        case "session_wait": workerWaitTimeout = try seconds(allowZero: false) ?? .zero
        case "memory_limit": memoryLimitBytes = value == "0" ? nil : try size()
        case "max_file_size": fileSizeLimitBytes = try size()
        case "shared_session": sharedSession = try flag()
        case "session_uids": sessionUIDs = try flag()
        case "max_processes": maxProcesses = try count(minimum: 1)
        case "shutdown_grace": shutdownGrace = try seconds(allowZero: false) ?? .zero
        case "log_level":
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                throw fail("expected trace, debug, info, notice, warning, error or critical")
            }
            logLevel = value
        default:
            throw ConfigurationError(origin: origin, reason: "unknown setting \"\(key)\" (known: \(Self.keys.keys.sorted().joined(separator: ", ")))")
        }
    }

    /// Builds the configuration from defaults, then a YAML file, then `RGATE_*` environment
    /// variables, then command-line overrides (each later source wins).
    public static func load(
        file: String?, fileText: String? = nil, environment: [String: String], overrides: [(key: String, value: String)]
    ) throws(ConfigurationError) -> ServerConfiguration {
        var config = ServerConfiguration()
        if let file {
            let text: String
            if let fileText { text = fileText } else {
                guard let read = readFile(file) else { throw ConfigurationError(origin: file, reason: "cannot read the file") }
                text = read
            }
            for (key, value, line) in try parseYAML(text, file: file) {
                try config.apply(key, value, origin: "\(file):\(line)")
            }
        }
        for key in keys.keys.sorted() {
            let name = "RGATE_" + key.uppercased()
            if let value = environment[name] { try config.apply(key, value, origin: name) }
        }
        for (key, value) in overrides {
            try config.apply(key, value, origin: "--" + key.replacingUnderscores())
        }
        return config
    }

    /// The top-level `key: scalar` pairs of a YAML document, with their lines.
    static func parseYAML(_ text: String, file: String) throws(ConfigurationError) -> [(String, String, Int)] {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        } catch {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        }
        guard let node else { return [] }
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(origin: "\(file):\(node.mark?.line ?? 1)", reason: "expected `key: value` lines at the top level")
        }
        var result: [(String, String, Int)] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard case .scalar(let key) = keyNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "expected a plain key")
            }
            guard case .scalar(let value) = valueNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "\(key.string): expected a single value")
            }
            result.append((key.string, value.string, line))
        }
        return result
    }

    /// A size like `1048576`, `512K`, `64M`, `1G` (optionally with a trailing `B`).
    public static func parseSize(_ text: String) -> Int? {
        var digits = text.uppercased().trimmingSpaces()
        if digits.hasSuffix("B") { digits.removeLast() }
        var multiplier = 1
        switch digits.last {
        case "K": multiplier = 1 << 10
        case "M": multiplier = 1 << 20
        case "G": multiplier = 1 << 30
        case "T": multiplier = 1 << 40
        default: break
        }
        if multiplier > 1 { digits.removeLast() }
        guard let value = Int(digits), value >= 0 else { return nil }
        return value * multiplier
    }
}

private func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
    func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { $0 != " " }), let last = lastIndex(where: { $0 != " " }) else { return "" }
        return String(self[first...last])
    }
}

#if canImport(Glibc)
import Glibc
#endif
