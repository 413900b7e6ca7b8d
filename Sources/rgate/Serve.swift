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
    // The settings' flags are not `@Option`s: they come from `ServerConfiguration.settings`, the
    // one table that also gives the configuration file's keys and the environment variables.
    // ArgumentParser hands them over unparsed (`settingFlags`); `--help` lists them from the table.
    static let configuration = CommandConfiguration(
        abstract: "Start the server.",
        usage: "rgate serve [--config <file>] [--<setting> <value> ...]",
        discussion: """
        Settings come from defaults, then --config FILE (YAML, `key: value`), then RGATE_* \
        environment variables, then these flags; later sources win. Each setting is a flag here \
        (--max-sessions), a key in the file (max_sessions) and an environment variable \
        (RGATE_MAX_SESSIONS). Binds loopback by default. When ready it prints one line per \
        listener to stdout: `rgate: listening <protocol> <address>`.

        \(ServerConfiguration.valueForms)

        SETTINGS: [default]
        \(ServerConfiguration.settingsHelp())
        """
    )

    @Option(help: ArgumentHelp("YAML file with settings (`key: value`, the keys as the flags with `_`).", valueName: "file"))
    var config: String?

    /// Every other flag: the settings, parsed from the table.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingFlags: [String] = []

    /// Prints the settings table for README.md and exits.
    @Flag(name: .customLong("print-settings-markdown"), help: .hidden)
    var printSettingsMarkdown = false

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

    /// An unknown setting flag, or one without its value, is a usage error (exit 64); a bad
    /// value is refused when the configuration is loaded (exit 78, with its origin).
    func validate() throws {
        do { _ = try ServerConfiguration.commandLineSettings(settingFlags) } catch { throw ValidationError(error.description) }
    }

    /// Prints why the server cannot start (no usage text: the command line was fine) and exits 78.
    static func refuse(_ message: String) -> ExitCode {
        var line = Array("rgate: cannot start: \(message)\n".utf8)
        _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
        return ExitCode(78)
    }

    func run() async throws {
        if printSettingsMarkdown {
            print(ServerConfiguration.settingsMarkdown, terminator: "")
            return
        }
        var settings: ServerConfiguration
        do {
            let overrides = try ServerConfiguration.commandLineSettings(settingFlags)
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
