import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The audit trail: one JSON object per line for each session event and request (time, session,
/// user, role, peer, protocol, command, code size and SHA-256, outcome, duration, limit hit).
/// Passwords and code are never written; only the code's size and hash.
///
/// Written by the supervisor only (session processes report their requests over their control
/// socket), to standard output or to a file that is rotated at ``maxBytes`` (`audit.log` →
/// `audit.log.1` → ... → `audit.log.<keep>`).
final class AuditLog: Sendable {
    private struct State {
        var descriptor: Int32
        var size: Int
    }

    let path: String?
    let maxBytes: Int
    let keep: Int
    private let state: Mutex<State>

    /// Opens (appends to) `path`, or writes to standard output when `path` is nil or `-`.
    init(path: String?, maxBytes: Int = 100 << 20, keep: Int = 5) throws(ConfigurationError) {
        let file = path == "-" ? nil : path
        self.path = file
        self.maxBytes = maxBytes
        self.keep = keep
        if let file {
            let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ConfigurationError(origin: "audit_log", reason: "cannot open \(file): \(String(cString: strerror(errno)))") }
            var st = stat()
            fstat(fd, &st)
            state = Mutex(State(descriptor: fd, size: Int(st.st_size)))
        } else {
            state = Mutex(State(descriptor: 1, size: 0))
        }
    }

    /// Writes one line. `fields` are added after the common ones, in order; nil values are left out.
    func write(
        event: String, session: UInt64, peer: String = "", user: String? = nil, role: String? = nil,
        protocol wireProtocol: String? = nil, fields: [(String, JSONField?)] = [], outcome: String? = nil
    ) {
        var line = "{\"time\":\"\(Self.timestamp())\",\"event\":\(JSONField.string(event).json),\"session\":\(session)"
        if !peer.isEmpty { line += ",\"peer\":" + JSONField.string(peer).json }
        if let user { line += ",\"user\":" + JSONField.string(user).json }
        if let role, !role.isEmpty { line += ",\"role\":" + JSONField.string(role).json }
        if let wireProtocol { line += ",\"protocol\":" + JSONField.string(wireProtocol).json }
        for (key, value) in fields {
            if let value { line += ",\(JSONField.string(key).json):\(value.json)" }
        }
        if let outcome { line += ",\"outcome\":" + JSONField.string(outcome).json }
        line += "}\n"
        let bytes = Array(line.utf8)
        state.withLock { s in
            if path != nil, s.size + bytes.count > maxBytes { rotate(&s) }
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.write(s.descriptor, $0.baseAddress, $0.count) }
                if n <= 0 { if errno == EINTR { continue }; break }
                offset += n
            }
            s.size += offset
        }
    }

    private func rotate(_ s: inout State) {
        guard let path else { return }
        close(s.descriptor)
        unlink("\(path).\(keep)")
        if keep > 1 {
            for i in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(i)", "\(path).\(i + 1)") }
        }
        if keep > 0 { rename(path, "\(path).1") } else { unlink(path) }
        s.descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        s.size = 0
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let millis = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(millis)Z"
    }
}

/// Lower-case hexadecimal, two digits per byte.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// A JSON value in an audit line.
enum JSONField {
    case string(String)
    case int(Int)
    case double(Double)

    var json: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return v.isFinite ? String(v) : "null"
        case .string(let s):
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7f {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
    }
}
