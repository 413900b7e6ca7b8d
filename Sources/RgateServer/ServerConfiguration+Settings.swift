import RgatePolicy

extension ServerConfiguration {
    /// Every setting, declared once: the configuration file's keys, the `RGATE_*` environment
    /// variables, the flags of `rgate serve` and its `--help`, and the README's table all come
    /// from here. To add a setting, add an entry (and a property with its default).
    public static let settings: [Setting] = [
        // Listeners
        Setting("host", \.host, .name("address", expected: "an address"),
                help: "Address to listen on. Off loopback, clients must log in unless allow_remote_without_auth."),
        Setting("text_port", \.textPort, .port, help: "Port of the seed's text protocol."),
        Setting("qap_port", \.qapPort, .port, help: "Port of Rserve's QAP1 protocol."),
        Setting("ocap_port", \.ocapPort, .port,
                help: "Port of QAP1 in object-capability mode (Rserve's qap.oc): clients get the caller role's functions as capabilities."),
        Setting("tls_port", \.tlsPort, .port, help: "Port of QAP1 over TLS (Rserve's tls.port); needs tls_cert_file and tls_key_file."),
        Setting("tls_cert_file", \.tlsCertificateFile, .file, help: "PEM certificate chain for tls_port."),
        Setting("tls_key_file", \.tlsKeyFile, .file, help: "PEM private key for tls_port."),
        Setting("tls_client_ca_file", \.tlsClientCAFile, .file,
                help: "PEM CA certificates: TLS clients must then present a certificate one of them signed."),
        // Logins
        Setting("users_file", \.policy.usersFile, .file, help: "rgate users file (`rgate user add`); clients then log in."),
        Setting("anonymous_role", .text("role", none: "none"), default: "analyst; none with users",
                help: "Role of clients that do not log in, or none.",
                get: { $0.policy.anonymousRole },
                set: { $0.policy.anonymousRole = $1; $0.anonymousRoleExplicit = true }),
        Setting("allow_remote_without_auth", \.allowRemoteWithoutAuth, .bool,
                help: "Let clients that do not log in connect to a host other than loopback."),
        Setting("qap_password_file", \.policy.rservePasswordFile, .file,
                help: "Rserve-style password file (plain, $md5$, $sha1$, crypt); its users get rserve_password_role."),
        Setting("rserve_password_role", \.policy.rservePasswordRole, .name("role", expected: "a role name"),
                help: "Role of the users from qap_password_file."),
        Setting("qap_rsa_key_file", \.qapRSAKeyFile, .file, default: "made at start", help: "PEM RSA key for Rserve's RSA secure login."),
        Setting("login_max_failures", \.loginMaxFailures, .count(minimum: 1),
                help: "Failed logins from one address before it is locked out."),
        Setting("login_lockout", \.loginLockout, .seconds, help: "How long failed logins count, and how long a lockout lasts."),
        Setting("login_delay", \.loginDelay, .seconds,
                help: "Delay before a failed login is answered, doubling with each recent failure (up to 32 times)."),
        Setting("allow_shutdown", \.allowShutdown, .bool,
                help: "Let anonymous analysts shut the server down (QAP1 shutdown; the admin role always may)."),
        // Audit
        Setting("audit_log", \.auditLog, .text("file", none: "off"), help: "Audit lines (JSON) to this file, - for standard output, or off."),
        Setting("audit_max_size", \.auditMaxBytes, .size, help: "Size at which the audit file is rotated."),
        Setting("audit_keep", \.auditKeep, .count(minimum: 0), help: "Rotated audit files kept."),
        // Sessions
        Setting("workers", \.warmWorkers, .count(minimum: 0), help: "Warm R session processes kept ready."),
        Setting("max_sessions", \.maxSessions, .count(minimum: 1),
                help: "Sessions at once; more clients wait (session_wait), then get a busy error."),
        Setting("session_wait", \.workerWaitTimeout, .seconds, help: "How long a client may wait for a free session."),
        Setting("shared_session", \.sharedSession, .bool, help: "Serve every text connection from one shared R, as the seed server did."),
        Setting("eval_timeout", \.evalTimeout, .secondsOrNone, help: "Wall-clock limit per request; 0 = none."),
        Setting("kill_grace", \.killGrace, .seconds,
                help: "How long R may take to stop after the time limit before its process is killed."),
        Setting("idle_timeout", \.idleTimeout, .secondsOrNone, help: "Close connections idle this long; 0 = never."),
        Setting("shutdown_grace", \.shutdownGrace, .seconds, help: "How long running sessions may finish after SIGTERM."),
        // Limits
        Setting("max_request_size", \.maxRequestBytes, .size, help: "Largest text-protocol request."),
        Setting("max_qap_message_size", \.maxQAPMessageBytes, .size, help: "Largest QAP1 message (Rserve's maxinbuf)."),
        Setting("max_output_size", \.maxOutputBytes, .size, help: "Console output kept per request; the rest is cut with a note."),
        Setting("max_result_size", \.maxResultBytes, .size,
                help: "Largest reply (value and transcript) a session driven by the server itself (HTTP, jobs) may send it; a larger one ends that session."),
        Setting("memory_limit", \.memoryLimitBytes, .sizeOrNone,
                help: "Memory per session process, including R's heap shared with the zygote; beyond it allocations are R errors. 0 = none."),
        Setting("max_file_size", \.fileSizeLimitBytes, .size, help: "Largest file a session may write."),
        Setting("session_uids", \.sessionUIDs, .bool, help: "As root: run each session as its own unprivileged user."),
        Setting("max_processes", \.maxProcesses, .count(minimum: 1), help: "Processes per session user (fork bombs), with session_uids."),
        // Logging
        Setting("log_level", \.logLevel, .oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"], placeholder: "level"),
                help: "Least severe log messages written (to standard error)."),
    ]

    /// The settings by key.
    static let settingsByKey = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })

    /// The setting with this configuration-file key, if any.
    public static func setting(_ key: String) -> Setting? { settingsByKey[key] }

    /// Applies one setting given as text.
    public mutating func apply(_ key: String, _ value: String, origin: String) throws(ConfigurationError) {
        guard let setting = Self.settingsByKey[key] else {
            throw ConfigurationError(origin: origin, reason: "unknown setting \"\(key)\" (known: \(Self.settingsByKey.keys.sorted().joined(separator: ", ")))")
        }
        try setting.apply(value, to: &self, origin: origin)
    }

    /// Builds the configuration from defaults, then a YAML file, then `RGATE_*` environment
    /// variables, then command-line overrides (each later source wins), and checks it as a whole.
    public static func load(
        file: String?, fileText: String? = nil, environment: [String: String], overrides: [(key: String, value: String)]
    ) throws(ConfigurationError) -> ServerConfiguration {
        var config = try layered(file: file, fileText: fileText, environment: environment, overrides: overrides)
        try config.finishPolicy(origin: file ?? "configuration")
        return config
    }

    /// The sources of ``load(file:fileText:environment:overrides:)`` applied in order, before the
    /// policy's defaults and checks.
    static func layered(
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
        for setting in settings {
            if let value = environment[setting.environmentVariable] {
                try setting.apply(value, to: &config, origin: setting.environmentVariable)
            }
        }
        for (key, value) in overrides {
            try config.apply(key, value, origin: "--" + key.replacingUnderscores())
        }
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

    /// A size like `1048576`, `512K`, `64M`, `1G` (optionally with a trailing `B`); nil for
    /// anything else, including sizes too large to count.
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
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
    func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { $0 != " " }), let last = lastIndex(where: { $0 != " " }) else { return "" }
        return String(self[first...last])
    }
}
