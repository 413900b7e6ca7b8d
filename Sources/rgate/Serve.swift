import ArgumentParser
import CRgateSystem
import Foundation
import Logging
import RgateServer
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the server.",
        discussion: """
        Settings come from defaults, then --config FILE (YAML, `key: value`), then RGATE_* \
        environment variables (e.g. RGATE_TEXT_PORT), then these flags; later sources win. \
        Binds loopback by default. Each port takes a number, 0 (any free port) or `off`. When \
        ready it prints one line per listener to stdout: `rgate: listening <protocol> <address>`.
        """
    )

    @Option(help: "YAML file with settings (keys as the flags, with `_`: text_port, max_sessions, ...).")
    var config: String?

    @Option(help: "Address to listen on. [127.0.0.1]")
    var host: String?

    @Option(name: .customLong("text-port"), help: "Port of the seed's text protocol, 0 or `off`. [8080]")
    var textPort: String?

    @Option(name: .customLong("qap-port"), help: "Port of Rserve's QAP1 protocol, 0 or `off`. [6311]")
    var qapPort: String?

    @Option(name: .customLong("ocap-port"), help: "Port of QAP1 in object-capability mode (Rserve's qap.oc), for caller roles. [off]")
    var ocapPort: String?

    @Option(name: .customLong("tls-port"), help: "Port of QAP1 over TLS (Rserve's tls.port), 0 or `off`. [off]")
    var tlsPort: String?

    @Option(name: .customLong("tls-cert-file"), help: "PEM certificate chain for --tls-port.")
    var tlsCertFile: String?

    @Option(name: .customLong("tls-key-file"), help: "PEM private key for --tls-port.")
    var tlsKeyFile: String?

    @Option(name: .customLong("tls-client-ca-file"), help: "PEM CA certificates: TLS clients must present a certificate they signed.")
    var tlsClientCAFile: String?

    @Option(name: .customLong("qap-password-file"), help: "Rserve-style password file; QAP1 clients must then log in.")
    var qapPasswordFile: String?

    @Option(name: .customLong("users-file"), help: "rgate users file (see `rgate user`); clients must then log in.")
    var usersFile: String?

    @Option(name: .customLong("anonymous-role"), help: "Role of clients that do not log in, or `none`. [analyst; none with users]")
    var anonymousRole: String?

    @Option(name: .customLong("audit-log"), help: "Audit lines (JSON) to FILE, `-` for stdout, or `off`. [off]")
    var auditLog: String?

    @Option(name: .customLong("qap-rsa-key-file"), help: "PEM RSA key for RSA secure login (default: made at start).")
    var qapRSAKeyFile: String?

    @Flag(name: .customLong("allow-shutdown"), help: "Let QAP1 clients shut the server down (Rserve's shutdown command).")
    var allowShutdown = false

    @Option(help: "Warm R session processes kept ready. [4]")
    var workers: String?

    @Option(name: .customLong("eval-timeout"), help: "Wall-clock limit per request in seconds, 0 = none. [300]")
    var evalTimeout: String?

    @Option(name: .customLong("kill-grace"), help: "Seconds R may take to stop after the limit before its process is killed. [2]")
    var killGrace: String?

    @Option(name: .customLong("idle-timeout"), help: "Close connections idle this many seconds, 0 = never. [600]")
    var idleTimeout: String?

    @Option(name: .customLong("max-request-size"), help: "Largest text request, e.g. 64M. [64M]")
    var maxRequestSize: String?

    @Option(name: .customLong("max-qap-message-size"), help: "Largest QAP1 message (Rserve's maxinbuf). [256M]")
    var maxQAPMessageSize: String?

    @Option(name: .customLong("max-output-size"), help: "Console output kept per request. [16M]")
    var maxOutputSize: String?

    @Option(name: .customLong("max-sessions"), help: "Sessions at once; more clients wait, then get a busy error. [64]")
    var maxSessions: String?

    @Option(name: .customLong("session-wait"), help: "Seconds a connection may wait for a free session. [30]")
    var sessionWait: String?

    @Option(name: .customLong("memory-limit"), help: "Memory per session process, e.g. 1G; 0 = none. [0]")
    var memoryLimit: String?

    @Option(name: .customLong("max-file-size"), help: "Largest file a session may write. [1G]")
    var maxFileSize: String?

    @Flag(name: .customLong("shared-session"), help: "Serve all text connections from one R, as the seed server did.")
    var sharedSession = false

    @Option(name: .customLong("session-uids"), help: "As root: run each session as its own unprivileged user (on/off). [on]")
    var sessionUIDs: String?

    @Option(name: .customLong("max-processes"), help: "Processes per session (fork bombs), with session uids. [256]")
    var maxProcesses: String?

    @Option(name: .customLong("shutdown-grace"), help: "Seconds running sessions may finish after SIGTERM. [10]")
    var shutdownGrace: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. [info]")
    var logLevel: String?

    @Flag(name: .customLong("exit-with-parent"), help: .hidden)
    var exitWithParent = false

    /// Sends SIGTERM to this process when standard input, if it is a pipe, reaches end-of-file
    /// (a terminal or /dev/null is not watched).
    private static func terminateAtEndOfStandardInput() {
        var info = stat()
        guard fstat(0, &info) == 0, (info.st_mode & S_IFMT) == S_IFIFO else { return }
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { _ in
            var byte: UInt8 = 0
            while true {
                let n = read(0, &byte, 1)
                if n == 0 || (n < 0 && errno != EINTR) { break }
            }
            kill(getpid(), SIGTERM)
            return nil
        }, nil)
        pthread_detach(thread)
    }

    /// The flags given on the command line, as settings.
    private var overrides: [(key: String, value: String)] {
        var o: [(String, String)] = []
        let options: [(String, String?)] = [
            ("host", host), ("text_port", textPort), ("qap_port", qapPort), ("qap_password_file", qapPasswordFile), ("qap_rsa_key_file", qapRSAKeyFile),
            ("workers", workers), ("eval_timeout", evalTimeout), ("kill_grace", killGrace), ("idle_timeout", idleTimeout),
            ("max_request_size", maxRequestSize), ("max_qap_message_size", maxQAPMessageSize), ("max_output_size", maxOutputSize),
            ("max_sessions", maxSessions), ("session_wait", sessionWait), ("memory_limit", memoryLimit),
            ("max_file_size", maxFileSize), ("shutdown_grace", shutdownGrace), ("log_level", logLevel),
            ("session_uids", sessionUIDs), ("max_processes", maxProcesses),
            ("users_file", usersFile), ("anonymous_role", anonymousRole), ("audit_log", auditLog),
            ("ocap_port", ocapPort), ("tls_port", tlsPort), ("tls_cert_file", tlsCertFile), ("tls_key_file", tlsKeyFile), ("tls_client_ca_file", tlsClientCAFile),
        ]
        for case let (key, value?) in options { o.append((key, value)) }
        if allowShutdown { o.append(("allow_shutdown", "true")) }
        if sharedSession { o.append(("shared_session", "true")) }
        return o
    }

    /// Prints why the server cannot start (no usage text: the command line was fine) and exits 78.
    static func refuse(_ message: String) -> ExitCode {
        var line = Array("rgate: cannot start: \(message)\n".utf8)
        _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
        return ExitCode(78)
    }

    func run() async throws {
        var settings: ServerConfiguration
        do {
            settings = try ServerConfiguration.load(file: config, environment: ProcessInfo.processInfo.environment, overrides: overrides)
        } catch {
            throw Self.refuse(error.description)
        }
        // Workers may run elsewhere: every file the policy names becomes an absolute path.
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        settings.policy.usersFile = settings.policy.usersFile.map(absolute)
        settings.policy.rservePasswordFile = settings.policy.rservePasswordFile.map(absolute)
        for (name, var role) in settings.policy.roles {
            role.sources = role.sources.map(absolute)
            settings.policy.roles[name] = role
        }
        if exitWithParent {
            // Two ways to notice the parent is gone: PR_SET_PDEATHSIG (fires when the parent
            // *thread* ends), and, when stdin is a pipe the parent holds open, its end-of-file
            // (works even when the spawning thread ended before the prctl).
            _ = rgs_set_parent_death_signal(SIGTERM)
            Self.terminateAtEndOfStandardInput()
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "rgate")
        let server: RgateServer
        do {
            server = try RgateServer(configuration: settings, logger: logger) { listeners in
                // Straight to fd 1, unbuffered: tests and scripts wait for these lines.
                // One write for all listeners, so a reader sees every line once it sees one.
                var lines = Array(listeners.map { "rgate: listening \($0.0) \($0.1)\n" }.joined().utf8)
                _ = lines.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
            }
        } catch {
            // A users file, key or certificate that cannot be used: say which, and stop (EX_CONFIG).
            throw Self.refuse("\(error)")
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
