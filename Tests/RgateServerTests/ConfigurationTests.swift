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
