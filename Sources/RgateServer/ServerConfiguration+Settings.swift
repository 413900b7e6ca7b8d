import RgatePolicy
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
        "ocap_port": "QAP1 in object-capability mode (Rserve's qap.oc) for caller roles, 0 or off (default off)",
        "tls_port": "QAP1 over TLS port (Rserve's tls.port), 0 or off (default off)",
        "tls_cert_file": "PEM certificate chain for tls_port",
        "tls_key_file": "PEM private key for tls_port",
        "tls_client_ca_file": "PEM CA file: TLS clients must present a certificate it signed",
        "qap_password_file": "Rserve-style password file (its users get rserve_password_role)",
        "rserve_password_role": "role of users from qap_password_file (default analyst)",
        "users_file": "rgate users file (`rgate user add`): scrypt hashes",
        "anonymous_role": "role of clients that do not log in, or none (default: analyst without users, none with)",
        "allow_remote_without_auth": "allow anonymous access on a non-loopback address",
        "audit_log": "audit lines (JSON) to this file, - for stdout, off",
        "audit_max_size": "size at which the audit file rotates",
        "audit_keep": "rotated audit files kept",
        "login_max_failures": "failed logins from one address before it is locked out (default 10)",
        "login_lockout": "seconds failures count and a lockout lasts (default 600)",
        "login_delay": "seconds before a failed login is answered, doubling per failure (default 0.25)",
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
        case "ocap_port": ocapPort = try port()
        case "tls_port": tlsPort = try port()
        case "tls_cert_file": tlsCertificateFile = value.isEmpty ? nil : value
        case "tls_key_file": tlsKeyFile = value.isEmpty ? nil : value
        case "tls_client_ca_file": tlsClientCAFile = value.isEmpty ? nil : value
        case "qap_password_file": policy.rservePasswordFile = value.isEmpty ? nil : value
        case "rserve_password_role": policy.rservePasswordRole = value
        case "users_file": policy.usersFile = value.isEmpty ? nil : value
        case "anonymous_role":
            policy.anonymousRole = (value == "none" || value.isEmpty) ? nil : value
            anonymousRoleExplicit = true
        case "allow_remote_without_auth": allowRemoteWithoutAuth = try flag()
        case "audit_log": auditLog = (value == "off" || value.isEmpty) ? nil : value
        case "audit_max_size": auditMaxBytes = try size()
        case "audit_keep": auditKeep = try count(minimum: 0)
        case "login_max_failures": loginMaxFailures = try count(minimum: 1)
        case "login_lockout": loginLockout = try seconds(allowZero: false) ?? .seconds(600)
        case "login_delay": loginDelay = try seconds() ?? .zero
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
                guard let read = try? readTextFile(file) else { throw ConfigurationError(origin: file, reason: "cannot read the file") }
                text = read
            }
            let document = try parseYAML(text, file: file)
            for (key, value, line) in document.settings {
                try config.apply(key, value, origin: "\(file):\(line)")
            }
            for role in document.roles { config.policy.roles[role.name] = role }
        }
        for key in keys.keys.sorted() {
            let name = "RGATE_" + key.uppercased()
            if let value = environment[name] { try config.apply(key, value, origin: name) }
        }
        for (key, value) in overrides {
            try config.apply(key, value, origin: "--" + key.replacingUnderscores())
        }
        try config.finishPolicy(origin: file ?? "configuration")
        return config
    }

    /// Applies the policy's defaults and checks it as a whole.
    mutating func finishPolicy(origin: String) throws(ConfigurationError) {
        if ocapPort != nil {
            let anonymousIsCaller = policy.anonymousRole.flatMap { policy.roles[$0] }?.base == .caller
            guard anonymousIsCaller || policy.hasUsers else {
                throw ConfigurationError(origin: origin, reason: "ocap_port offers caller roles' functions: it needs an anonymous_role based on caller, or users who log in")
            }
        }
        if tlsPort != nil, tlsCertificateFile == nil || tlsKeyFile == nil {
            throw ConfigurationError(origin: origin, reason: "tls_port needs tls_cert_file and tls_key_file")
        }
        if !anonymousRoleExplicit && policy.hasUsers { policy.anonymousRole = nil }
        do { try policy.validate() } catch { throw ConfigurationError(origin: origin, reason: error.message) }
        if policy.anonymousRole != nil, !allowRemoteWithoutAuth, !Self.isLoopback(host) {
            throw ConfigurationError(
                origin: origin,
                reason: "host \(host) is not a loopback address, and clients may connect without logging in (anonymous_role: \(policy.anonymousRole!)); add users (users_file, anonymous_role: none) or set allow_remote_without_auth: true")
        }
    }

    /// Whether `host` is a loopback address (or name).
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// The top-level `key: scalar` pairs of a YAML document, with their lines, and the `roles`
    /// mapping (`name: {base, functions, source, eval_timeout, memory_limit, max_sessions, network}`).
    static func parseYAML(_ text: String, file: String) throws(ConfigurationError) -> (settings: [(String, String, Int)], roles: [Role]) {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        } catch {
            throw ConfigurationError(origin: file, reason: "not valid YAML: \(error)")
        }
        guard let node else { return ([], []) }
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(origin: "\(file):\(node.mark?.line ?? 1)", reason: "expected `key: value` lines at the top level")
        }
        var result: [(String, String, Int)] = []
        var roles: [Role] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard case .scalar(let key) = keyNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "expected a plain key")
            }
            if key.string == "roles" {
                roles = try parseRoles(valueNode, file: file)
                continue
            }
            guard case .scalar(let value) = valueNode else {
                throw ConfigurationError(origin: "\(file):\(line)", reason: "\(key.string): expected a single value")
            }
            result.append((key.string, value.string, line))
        }
        return (result, roles)
    }

    private static func parseRoles(_ node: Node, file: String) throws(ConfigurationError) -> [Role] {
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(origin: "\(file):\(node.mark?.line ?? 0)", reason: "roles: expected a mapping of role names to settings")
        }
        var roles: [Role] = []
        for (nameNode, body) in mapping {
            let line = nameNode.mark?.line ?? 0
            guard case .scalar(let name) = nameNode else { throw ConfigurationError(origin: "\(file):\(line)", reason: "roles: expected a role name") }
            let origin = "\(file):\(line)"
            guard case .mapping(let fields) = body else {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): expected settings (base, functions, source, ...)")
            }
            var base: Role.Base? = Role.Base(rawValue: name.string)
            var functions: [String] = [], sources: [String] = []
            var timeout: UInt32?, memory: UInt64?, sessions: Int?, network: Bool?
            var commands: Set<Role.CommandGroup>?
            for (fieldNode, valueNode) in fields {
                let fieldOrigin = "\(file):\(fieldNode.mark?.line ?? line)"
                guard case .scalar(let field) = fieldNode else { throw ConfigurationError(origin: fieldOrigin, reason: "expected a setting name") }
                func scalar() throws(ConfigurationError) -> String {
                    guard case .scalar(let v) = valueNode else { throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a single value") }
                    return v.string
                }
                func list() throws(ConfigurationError) -> [String] {
                    switch valueNode {
                    case .scalar(let v): return [v.string]
                    case .sequence(let items):
                        var out: [String] = []
                        for item in items {
                            guard case .scalar(let v) = item else { throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a list of names") }
                            out.append(v.string)
                        }
                        return out
                    default: throw ConfigurationError(origin: fieldOrigin, reason: "\(field.string): expected a list")
                    }
                }
                switch field.string {
                case "base":
                    let v = try scalar()
                    guard let b = Role.Base(rawValue: v) else {
                        throw ConfigurationError(origin: fieldOrigin, reason: "role \(name.string): base must be admin, analyst or caller, not \"\(v)\"")
                    }
                    base = b
                case "functions": functions = try list()
                case "source", "sources": sources = try list()
                case "eval_timeout":
                    guard let s = Double(try scalar()), s >= 0, s < 4_000_000 else { throw ConfigurationError(origin: fieldOrigin, reason: "eval_timeout: expected seconds") }
                    timeout = UInt32(s * 1000)
                case "memory_limit":
                    guard let n = parseSize(try scalar()) else { throw ConfigurationError(origin: fieldOrigin, reason: "memory_limit: expected a size like 512M") }
                    memory = UInt64(n)
                case "max_sessions":
                    guard let n = Int(try scalar()), n >= 1 else { throw ConfigurationError(origin: fieldOrigin, reason: "max_sessions: expected a whole number of at least 1") }
                    sessions = n
                case "commands":
                    var set = Set<Role.CommandGroup>()
                    for item in try list() where item != "none" {
                        guard let group = Role.CommandGroup(rawValue: item) else {
                            throw ConfigurationError(origin: fieldOrigin, reason: "commands: \"\(item)\" is not one of files, shutdown, detach, serialized, none")
                        }
                        set.insert(group)
                    }
                    commands = set
                case "network":
                    switch try scalar().lowercased() {
                    case "true", "yes", "on": network = true
                    case "false", "no", "off": network = false
                    default: throw ConfigurationError(origin: fieldOrigin, reason: "network: expected true or false")
                    }
                default:
                    throw ConfigurationError(origin: fieldOrigin, reason: "role \(name.string): unknown setting \"\(field.string)\" (known: base, functions, source, eval_timeout, memory_limit, max_sessions, network, commands)")
                }
            }
            guard let base else {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): needs a base (admin, analyst or caller)")
            }
            let role = Role(name: name.string, base: base, functions: functions, sources: sources, evalTimeoutMilliseconds: timeout, memoryLimitBytes: memory, maxSessions: sessions, network: network, commands: commands)
            do { try role.validate() } catch { throw ConfigurationError(origin: origin, reason: error.message) }
            for source in sources where access(source, R_OK) != 0 {
                throw ConfigurationError(origin: origin, reason: "role \(name.string): cannot read source file \(source)")
            }
            roles.append(role)
        }
        return roles
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
