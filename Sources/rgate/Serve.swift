import ArgumentParser
import CRgateSystem
import Foundation
import RgateAuth
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
        Binds loopback by default. Each port option takes a number, 0 (pick a free port) or `off`.
        When ready it prints one line per listener to stdout: `rgate: listening <protocol> <address>`.
        """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("text-port"), help: "Port of the seed's text protocol, or `off`.")
    var textPort = "8080"

    @Option(name: .customLong("qap-port"), help: "Port of Rserve's QAP1 protocol, or `off`.")
    var qapPort = "6311"

    @Option(name: .customLong("max-qap-message-size"), help: "Largest QAP1 message accepted, e.g. 256M (Rserve's maxinbuf).")
    var maxQAPMessageSize = "256M"

    @Option(name: .customLong("qap-password-file"), help: "Rserve-style password file; QAP1 clients must then log in.")
    var qapPasswordFile: String?

    @Flag(name: .customLong("allow-shutdown"), help: "Let QAP1 clients shut the server down (Rserve's shutdown command).")
    var allowShutdown = false

    @Option(name: .customLong("workers"), help: "Warm R session processes kept ready.")
    var workers = 4

    @Option(name: .customLong("eval-timeout"), help: "Wall-clock limit per request in seconds (0 = none).")
    var evalTimeout: Double = 300

    @Option(name: .customLong("kill-grace"), help: "Seconds R may take to stop after the time limit before its process is killed.")
    var killGrace: Double = 2

    @Option(name: .customLong("idle-timeout"), help: "Close connections idle this many seconds (0 = never).")
    var idleTimeout: Double = 600

    @Option(name: .customLong("max-request-size"), help: "Largest request accepted, e.g. 64M.")
    var maxRequestSize = "64M"

    @Option(name: .customLong("max-output-size"), help: "Most console output kept per request, e.g. 16M.")
    var maxOutputSize = "16M"

    @Option(name: .customLong("memory-limit"), help: "Memory limit per session process, e.g. 1G (0 = none); beyond it allocations are R errors.")
    var memoryLimit = "0"

    @Option(name: .customLong("max-file-size"), help: "Largest file a session may write, e.g. 1G.")
    var maxFileSize = "1G"

    @Option(name: .customLong("max-sessions"), help: "Most sessions at once; beyond it clients wait, then get a busy error.")
    var maxSessions = 64

    @Option(name: .customLong("session-wait"), help: "Seconds a connection may wait for a free session before it is refused.")
    var sessionWait: Double = 30

    @Flag(name: .customLong("shared-session"), help: "Serve all text connections from one R, as the seed server did.")
    var sharedSession = false

    @Option(name: .customLong("shutdown-grace"), help: "Seconds running sessions may finish after SIGTERM.")
    var shutdownGrace: Double = 10

    @Flag(name: .customLong("exit-with-parent"), help: .hidden)
    var exitWithParent = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() async throws {
        var config = ServerConfiguration()
        config.host = host
        config.textPort = try Self.port(textPort, option: "--text-port")
        config.qapPort = try Self.port(qapPort, option: "--qap-port")
        config.maxQAPMessageBytes = try Self.size(maxQAPMessageSize, option: "--max-qap-message-size")
        if let path = qapPasswordFile {
            // Refuse a bad file now, with its line, rather than in every session.
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("--qap-password-file: cannot read \(path)")
            }
            do { _ = try RservePasswordFile(text: text, source: path) } catch { throw ValidationError("\(error)") }
            config.qapPasswordFile = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        guard workers >= 0 else { throw ValidationError("--workers must be 0 or more") }
        config.warmWorkers = workers
        config.evalTimeout = evalTimeout > 0 ? .milliseconds(Int64(evalTimeout * 1000)) : nil
        config.killGrace = .milliseconds(Int64(max(0.1, killGrace) * 1000))
        config.idleTimeout = idleTimeout > 0 ? .milliseconds(Int64(idleTimeout * 1000)) : nil
        config.maxRequestBytes = try Self.size(maxRequestSize, option: "--max-request-size")
        config.maxOutputBytes = try Self.size(maxOutputSize, option: "--max-output-size")
        config.sharedSession = sharedSession
        guard maxSessions >= 1 else { throw ValidationError("--max-sessions must be at least 1") }
        config.maxSessions = maxSessions
        config.workerWaitTimeout = .milliseconds(Int64(max(0, sessionWait) * 1000))
        config.memoryLimitBytes = memoryLimit == "0" ? nil : try Self.size(memoryLimit, option: "--memory-limit")
        config.fileSizeLimitBytes = try Self.size(maxFileSize, option: "--max-file-size")
        config.allowShutdown = allowShutdown
        config.shutdownGrace = .milliseconds(Int64(max(0, shutdownGrace) * 1000))
        if exitWithParent { _ = rgs_set_parent_death_signal(SIGTERM) }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "rgate")
        let server = try RgateServer(configuration: config, logger: logger) { listeners in
            // Straight to fd 1, unbuffered: tests and scripts wait for these lines.
            for (proto, address) in listeners {
                var line = Array("rgate: listening \(proto) \(address)\n".utf8)
                _ = line.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
            }
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    static func port(_ text: String, option: String) throws -> Int? {
        if text.lowercased() == "off" { return nil }
        guard let port = Int(text), (0...65535).contains(port) else {
            throw ValidationError("\(option) takes a port number (0 for any free port) or `off`, not \(text)")
        }
        return port
    }

    static func size(_ text: String, option: String) throws -> Int {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = text.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var multiplier = 1
        if let last = digits.last, let unit = units[last] { multiplier = unit; digits.removeLast() }
        guard let value = Int(digits), value > 0 else {
            throw ValidationError("\(option) takes a size like 1048576, 512K, 64M or 1G, not \(text)")
        }
        return value * multiplier
    }
}
