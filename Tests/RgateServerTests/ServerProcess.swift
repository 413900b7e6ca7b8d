import Foundation
import Glibc
import Testing

/// A real `rgate serve` process on ephemeral ports, stopped when the test is done.
final class ServerProcess: @unchecked Sendable {
    // Safe: `process` and the ports are set once in init and only read afterwards.
    let process: Process
    let textPort: Int
    let qapPort: Int
    private let errors: Pipe
    /// The server's stdin: it stops when this closes (with `--exit-with-parent`), so no server
    /// outlives the test process, even one never stopped explicitly.
    private let lifeline = Pipe()

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["RGATE_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/rgate").path
    }

    /// The worker executable beside ``binary``.
    static var workerBinary: String {
        URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("rgate-worker").path
    }

    static var seedDirectory: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/seed").path
    }

    init(_ arguments: [String] = []) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--text-port", "0", "--qap-port", "0", "--workers", "2", "--exit-with-parent", "--log-level", "warning"] + arguments
        let out = Pipe()
        errors = Pipe()
        process.standardOutput = out
        process.standardError = errors
        process.standardInput = lifeline
        try process.run()
        var text = ""
        let handle = out.fileHandleForReading
        let deadline = Date().addingTimeInterval(30)
        // Every listener's line is printed at once; the text one is missing when it is off.
        while !text.contains("listening qap1"), Date() < deadline {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard text.contains("listening qap1") else {
            process.terminate()
            throw ServerError(message: "server did not start: \(text) \(String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self))")
        }
        textPort = text.split(separator: "\n").first(where: { $0.contains("listening text") })
            .flatMap { Int($0.split(separator: ":").last ?? "") } ?? -1
        qapPort = text.split(separator: "\n").first(where: { $0.contains("listening qap1") })
            .flatMap { Int($0.split(separator: ":").last ?? "") } ?? -1
    }

    /// SIGTERM, then wait (bounded) for the exit; returns the exit status.
    @discardableResult
    func stop(timeout: TimeInterval = 20) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        return process.terminationStatus
    }

    deinit { if process.isRunning { stop() } }
}

struct ServerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A blocking socket to the text port, for sending exactly the bytes a test wants.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw ServerError(message: "connect failed: errno \(errno)") }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// A request in the seed's framing.
    func request(_ code: [UInt8], encoding: String = "UTF-8") {
        var bytes = Array(encoding.utf8) + [10]
        withUnsafeBytes(of: UInt64(code.count).littleEndian) { bytes += $0 }
        send(bytes + code)
    }

    func request(_ code: String, encoding: String = "UTF-8") { request(Array(code.utf8), encoding: encoding) }

    /// Reads exactly n bytes; nil on EOF or timeout.
    func read(_ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if r <= 0 { return nil }
            got += r
        }
        return out
    }

    /// Reads one reply; nil when the connection closed first.
    func reply() -> [UInt8]? {
        guard let header = read(8) else { return nil }
        let length = header.withUnsafeBytes { $0.load(as: UInt64.self) }.littleEndian
        return read(Int(length))
    }

    func replyText() -> String? { reply().map { String(decoding: $0, as: UTF8.self) } }

    /// True when the server closed the connection (EOF) within the receive timeout.
    func isClosed() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    func evaluate(_ code: String) -> String? {
        request(code)
        return replyText()
    }
}

func processExists(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    // A zombie no longer runs anything.
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return !stat.contains(") Z ")
}
