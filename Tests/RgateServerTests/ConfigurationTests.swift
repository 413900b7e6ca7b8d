import Foundation
import RgateServer
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsFileEnvironmentThenFlags() throws {
        let yaml = """
            # rgate settings
            text_port: 9000
            qap_port: off
            max_sessions: 10
            memory_limit: 2G
            eval_timeout: 30
            """
        let config = try ServerConfiguration.load(
            file: "rgate.yaml", fileText: yaml,
            environment: ["RGATE_MAX_SESSIONS": "12", "RGATE_WORKERS": "3", "UNRELATED": "x"],
            overrides: [(key: "max_sessions", value: "20")])
        #expect(config.textPort == 9000)
        #expect(config.qapPort == nil)
        #expect(config.maxSessions == 20)           // flag beats environment beats file
        #expect(config.warmWorkers == 3)            // environment beats default
        #expect(config.memoryLimitBytes == 2 << 30)
        #expect(config.evalTimeout == .seconds(30))
        #expect(config.host == "127.0.0.1")         // default
    }

    @Test func rolesUsersAndTheirDefaults() throws {
        let yaml = """
            users_file: /etc/rgate/users
            audit_log: /var/log/rgate/audit.log
            roles:
              scorer:
                base: caller
                functions: [score, stats::median]
                eval_timeout: 5
                memory_limit: 512M
                max_sessions: 3
              ops:
                base: analyst
                network: true
                commands: [files, shutdown]
            """
        let config = try ServerConfiguration.load(file: "rgate.yaml", fileText: yaml, environment: [:], overrides: [])
        let scorer = try #require(config.policy.roles["scorer"])
        #expect(scorer.base == .caller)
        #expect(scorer.functions == ["score", "stats::median"])
        #expect(scorer.evalTimeoutMilliseconds == 5000)
        #expect(scorer.memoryLimitBytes == 512 << 20)
        #expect(scorer.maxSessions == 3)
        #expect(!scorer.network && !scorer.mayUseFiles && !scorer.mayUseSerializedCommands && scorer.mayDetach)
        let ops = try #require(config.policy.roles["ops"])
        #expect(ops.network && ops.mayShutDown && ops.mayUseFiles && !ops.mayDetach && !ops.mayUseSerializedCommands)
        #expect(config.policy.anonymousRole == nil)     // users exist: everyone logs in
        #expect(config.policy.roles["admin"]?.mayShutDown == true) // built-ins stay
        #expect(config.auditLog == "/var/log/rgate/audit.log")
    }

    @Test("bad roles are refused with the line", arguments: [
        ("roles:\n  r:\n    base: superuser\n", "rgate.yaml:3"),
        ("roles:\n  r:\n    base: caller\n    functions: [eval]\n", "rgate.yaml:2"),
        ("roles:\n  r:\n    base: caller\n    colour: blue\n", "rgate.yaml:4"),
        ("roles:\n  r:\n    functions: [f]\n", "rgate.yaml:2"),
        ("roles:\n  r:\n    base: analyst\n    commands: [everything]\n", "rgate.yaml:4"),
        ("roles:\n  r:\n    base: caller\n    commands: [serialized]\n", "rgate.yaml:2"),
    ])
    func badRoles(_ yaml: String, _ origin: String) {
        do {
            _ = try ServerConfiguration.load(file: "rgate.yaml", fileText: yaml, environment: [:], overrides: [])
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.origin == origin, "\(error)")
        }
    }

    @Test func anonymousAccessOnANetworkAddressIsRefused() throws {
        #expect(throws: ConfigurationError.self) {
            try ServerConfiguration.load(file: nil, environment: [:], overrides: [(key: "host", value: "0.0.0.0")])
        }
        // Explicitly allowed, or with logins required, it starts.
        _ = try ServerConfiguration.load(
            file: nil, environment: [:], overrides: [(key: "host", value: "0.0.0.0"), (key: "allow_remote_without_auth", value: "true")])
        _ = try ServerConfiguration.load(
            file: nil, environment: [:], overrides: [(key: "host", value: "0.0.0.0"), (key: "users_file", value: "/etc/rgate/users")])
    }

    @Test func badValueNamesFileAndLine() {
        #expect(throws: ConfigurationError(origin: "rgate.yaml:3", reason: "max_sessions: expected a whole number of at least 1, not \"many\"")) {
            try ServerConfiguration.load(file: "rgate.yaml", fileText: "host: 127.0.0.1\n\nmax_sessions: many\n", environment: [:], overrides: [])
        }
    }

    @Test func unknownKeyIsRefused() throws {
        do {
            _ = try ServerConfiguration.load(file: "c.yaml", fileText: "txt_port: 1\n", environment: [:], overrides: [])
            Issue.record("expected an error")
        } catch {
            #expect(error.origin == "c.yaml:1")
            #expect(error.reason.hasPrefix("unknown setting \"txt_port\""))
        }
    }

    @Test func invalidYAMLIsRefused() {
        #expect(throws: ConfigurationError.self) {
            try ServerConfiguration.load(file: "c.yaml", fileText: "a: [1,\n", environment: [:], overrides: [])
        }
    }

    @Test func badEnvironmentValueNamesTheVariable() {
        #expect(throws: ConfigurationError(origin: "RGATE_TEXT_PORT", reason: "text_port: expected a port number, 0 (any free port) or off, not \"http\"")) {
            try ServerConfiguration.load(file: nil, environment: ["RGATE_TEXT_PORT": "http"], overrides: [])
        }
    }

    @Test(arguments: [("64M", 64 << 20), ("512K", 512 << 10), ("1G", 1 << 30), ("100", 100), ("2gb", 2 << 30)])
    func sizes(_ text: String, _ bytes: Int) {
        #expect(ServerConfiguration.parseSize(text) == bytes)
    }

    @Test func serverStartsFromAConfigFileAndRefusesABadOne() throws {
        let path = NSTemporaryDirectory() + "rgate-\(getpid()).yaml"
        try "workers: 1\nmax_sessions: 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let server = try ServerProcess(["--config", path])
        defer { server.stop() }
        let c = try RawConnection(port: server.textPort)
        #expect(c.evaluate("1") == "[1] 1\n")

        try "workers: -1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = Process()
        bad.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        bad.arguments = ["serve", "--config", path]
        let err = Pipe()
        bad.standardError = err
        bad.standardOutput = FileHandle.nullDevice
        try bad.run()
        bad.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(bad.terminationStatus != 0)
        #expect(message.contains("\(path):1: workers: expected a whole number of at least 0"))
    }
}
