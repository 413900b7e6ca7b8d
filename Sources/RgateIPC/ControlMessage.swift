/// What the supervisor, the zygote and session processes tell each other over their unix sockets
/// (SOCK_SEQPACKET, so one `send` is one message). Descriptors travel beside a message (SCM_RIGHTS).
public enum ControlMessage: Sendable, Hashable {
    /// Supervisor → zygote: fork `count` more spare session processes.
    case spawn(count: UInt32)
    /// Zygote → supervisor: R is up; `pid` is the zygote's, `startupMicroseconds` R's start-up time.
    case zygoteReady(pid: Int32, startupMicroseconds: UInt64)
    /// Zygote → supervisor: a spare session process; its control socket travels with the message.
    case spawned(pid: Int32)
    /// Zygote → supervisor: a session process ended with this `waitpid` status.
    case exited(pid: Int32, waitStatus: Int32)
    /// Supervisor → session process: serve this client; the client socket travels with it.
    case assign(SessionAssignment)
    /// Session process → supervisor: the session ended on purpose (sent just before exiting).
    case ended(reason: SessionEndReason)
    /// Session process → supervisor: an authorised client asked the server to shut down.
    case shutdownRequested
    /// Session process → supervisor: check these credentials (the supervisor holds the user
    /// database and the RSA private key; session processes, which run client code, never do).
    case authenticate(AuthenticationRequest)
    /// Supervisor → session process: the answer to `authenticate`.
    case authenticated(AuthenticationOutcome)
    /// Session process → supervisor: one request was served (for the audit log; sent only when
    /// the assignment asks for it).
    case requestDone(RequestRecord)
    /// Session process → supervisor: the client asked for `CMD_switch "TLS"` and was answered OK;
    /// its socket travels with the message, for the supervisor to run the TLS server side.
    case switchToTLS
    /// Session process → supervisor: counters of the requests served since the last tally (at
    /// most about once a second, and before `ended`), sent whether or not auditing is on.
    case requestTally(RequestTally)
    /// Supervisor → session process: the TLS relay is up; the socket to use from now on travels
    /// with the message (none: the switch failed and the session must end).
    case switchedToTLS
}

/// What the audit log records about one request.
public struct RequestRecord: Sendable, Hashable {
    /// The command (`eval`, `voidEval`, `setSEXP`, `call`, `text`...).
    public var command: String
    /// Size of the code or data sent.
    public var codeBytes: UInt64
    /// SHA-256 of the code (empty for data).
    public var codeSHA256: [UInt8]
    /// `ok`, `error`, `refused`, `timeout`, `parse error`...
    public var outcome: String
    /// Wall-clock time spent, in microseconds.
    public var durationMicroseconds: UInt64
    /// The limit hit, if any (`eval_timeout`, `memory_limit`, `max_output_size`).
    public var limit: String

    public init(command: String, codeBytes: UInt64, codeSHA256: [UInt8], outcome: String, durationMicroseconds: UInt64, limit: String = "") {
        self.command = command
        self.codeBytes = codeBytes
        self.codeSHA256 = codeSHA256
        self.outcome = outcome
        self.durationMicroseconds = durationMicroseconds
        self.limit = limit
    }
}

/// Credentials as a client sent them.
public struct AuthenticationRequest: Sendable, Hashable {
    /// How the secret is to be checked.
    public struct Method: RawRepresentable, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `secret` is the password, or unix crypt() of it with `salt` (Rserve's login).
        public static let password = Method(rawValue: 1)
        /// `secret` is Rserve's RSA-encrypted `[authkey][user\npassword\n]`; `authKey` the key sent.
        public static let rsa = Method(rawValue: 2)
    }

    public var method: Method
    public var user: String
    public var secret: [UInt8]
    /// The salt the session announced (for crypt() answers).
    public var salt: String
    /// The RSA login's one-time key.
    public var authKey: [UInt8]

    public init(method: Method, user: String, secret: [UInt8], salt: String = "", authKey: [UInt8] = []) {
        self.method = method
        self.user = user
        self.secret = secret
        self.salt = salt
        self.authKey = authKey
    }
}

/// The supervisor's answer to an ``AuthenticationRequest``.
public struct AuthenticationOutcome: Sendable, Hashable {
    /// Whether the client is now logged in.
    public var accepted: Bool
    /// The user (also for a refusal: as far as known, for the log).
    public var user: String
    /// The user's role when accepted.
    public var role: String
    /// Why not, for the client (no detail that helps guessing).
    public var message: String

    public init(accepted: Bool, user: String, role: String, message: String) {
        self.accepted = accepted
        self.user = user
        self.role = role
        self.message = message
    }
}

/// Why a session process ended.
public struct SessionEndReason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The client closed the connection.
    public static let clientClosed = SessionEndReason(rawValue: 1)
    /// The connection was idle past the idle timeout.
    public static let idleTimeout = SessionEndReason(rawValue: 2)
    /// R code called `q()`.
    public static let quit = SessionEndReason(rawValue: 3)
    /// The client broke the protocol and was told so.
    public static let protocolError = SessionEndReason(rawValue: 4)
    /// Reading or writing the client socket failed.
    public static let ioError = SessionEndReason(rawValue: 5)

    public var description: String {
        switch self {
        case .clientClosed: "client closed"
        case .idleTimeout: "idle timeout"
        case .quit: "q() called"
        case .protocolError: "protocol error"
        case .ioError: "I/O error"
        default: "reason \(rawValue)"
        }
    }
}

/// The logins a server can check.
public struct LoginMethods: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// User and password (Rserve's plain-text login).
    public static let password = LoginMethods(rawValue: 1)
    /// Unix crypt() of the password with a salt the server announces (needs Rserve-style stored passwords).
    public static let crypt = LoginMethods(rawValue: 2)
    /// Rserve's RSA secure login.
    public static let rsa = LoginMethods(rawValue: 4)
}

/// Which wire protocol a session speaks.
public struct WireProtocol: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The seed's text protocol.
    public static let text = WireProtocol(rawValue: 1)
    /// Rserve's QAP1.
    public static let qap1 = WireProtocol(rawValue: 2)
    /// Rserve's QAP1 in object-capability mode (`qap.oc`): only calls of capabilities.
    public static let ocap = WireProtocol(rawValue: 3)
    /// The data plane (RgateBridge): the supervisor itself drives the session over a socket
    /// pair, for HTTP and jobs.
    public static let bridge = WireProtocol(rawValue: 4)

    public var description: String {
        switch self {
        case .text: "text"
        case .qap1: "qap1"
        case .ocap: "ocap"
        case .bridge: "bridge"
        default: "protocol \(rawValue)"
        }
    }
}

/// Everything a session process needs to serve one client.
public struct SessionAssignment: Sendable, Hashable {
    /// The supervisor's id for the session (for logs).
    public var sessionID: UInt64
    /// The protocol the client speaks.
    public var wireProtocol: WireProtocol
    /// Wall-clock limit per request in milliseconds (0 = none).
    public var evalTimeoutMilliseconds: UInt32
    /// How long after the limit R may take to stop before the process is killed.
    public var killGraceMilliseconds: UInt32
    /// Close the connection after this long without a request (0 = never).
    public var idleTimeoutMilliseconds: UInt32
    /// The largest request accepted.
    public var maxRequestBytes: UInt64
    /// The most console output kept per request.
    public var maxOutputBytes: UInt64
    /// Keep serving further connections with the same R (the seed's shared-session mode).
    public var sharedSession: Bool
    /// Whether the client may shut the server down (QAP1 `shutdown`).
    public var allowShutdown: Bool
    /// Address-space limit of the session process in bytes (RLIMIT_DATA; 0 = none).
    public var memoryLimitBytes: UInt64
    /// Largest file the session may write (RLIMIT_FSIZE; 0 = none).
    public var fileSizeLimitBytes: UInt64
    /// Most open files (RLIMIT_NOFILE; 0 = inherit).
    public var openFilesLimit: UInt32
    /// The role of a client that does not log in; empty: it must log in.
    public var anonymousRole: String = ""
    /// Which logins the server can check (``LoginMethods``).
    public var loginMethods: LoginMethods = []
    /// The client's address, for logs and audit lines.
    public var peer: String = ""
    /// Whether to report each request (``ControlMessage/requestDone(_:)``) for the audit log.
    public var auditRequests: Bool = false
    /// Whether `CMD_switch "TLS"` is offered (the server has a TLS certificate).
    public var tlsSwitch: Bool = false
    /// The user the supervisor authenticated (bridge sessions, whose ``anonymousRole`` is the
    /// user's role); empty for none.
    public var user: String = ""

    /// Creates an assignment.
    public init(
        sessionID: UInt64, wireProtocol: WireProtocol, evalTimeoutMilliseconds: UInt32, killGraceMilliseconds: UInt32,
        idleTimeoutMilliseconds: UInt32, maxRequestBytes: UInt64, maxOutputBytes: UInt64, sharedSession: Bool,
        allowShutdown: Bool = false, memoryLimitBytes: UInt64 = 0, fileSizeLimitBytes: UInt64 = 0, openFilesLimit: UInt32 = 0
    ) {
        self.allowShutdown = allowShutdown
        self.memoryLimitBytes = memoryLimitBytes
        self.fileSizeLimitBytes = fileSizeLimitBytes
        self.openFilesLimit = openFilesLimit
        self.sessionID = sessionID
        self.wireProtocol = wireProtocol
        self.evalTimeoutMilliseconds = evalTimeoutMilliseconds
        self.killGraceMilliseconds = killGraceMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.maxRequestBytes = maxRequestBytes
        self.maxOutputBytes = maxOutputBytes
        self.sharedSession = sharedSession
    }
}

extension ControlMessage {
    /// The largest encoded message (senders keep credentials and names far below it).
    public static let maximumSize = 8192

    private enum Tag: UInt8 {
        case spawn = 1, zygoteReady, spawned, exited, assign, ended, shutdownRequested, authenticate, authenticated, requestDone, switchToTLS, switchedToTLS
        case requestTally
    }

    /// The first byte of an encoded ``spawned(pid:)``.
    static var spawnedTag: UInt8 { Tag.spawned.rawValue }
    /// The first byte of an encoded ``exited(pid:waitStatus:)``.
    static var exitedTag: UInt8 { Tag.exited.rawValue }

    /// The count of an encoded ``spawn(count:)``, read in place (no allocation); nil for any
    /// other message.
    public static func spawnCount(in bytes: UnsafeRawBufferPointer) -> UInt32? {
        guard bytes.count == 5, bytes[0] == Tag.spawn.rawValue else { return nil }
        return UInt32(bytes[1]) | UInt32(bytes[2]) << 8 | UInt32(bytes[3]) << 16 | UInt32(bytes[4]) << 24
    }

    /// The message's bytes.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .spawn(let count):
            w.u8(Tag.spawn.rawValue); w.u32(count)
        case .zygoteReady(let pid, let micros):
            w.u8(Tag.zygoteReady.rawValue); w.i32(pid); w.u64(micros)
        case .spawned(let pid):
            w.u8(Tag.spawned.rawValue); w.i32(pid)
        case .exited(let pid, let status):
            w.u8(Tag.exited.rawValue); w.i32(pid); w.i32(status)
        case .assign(let a):
            w.u8(Tag.assign.rawValue); w.u64(a.sessionID); w.u8(a.wireProtocol.rawValue)
            w.u32(a.evalTimeoutMilliseconds); w.u32(a.killGraceMilliseconds); w.u32(a.idleTimeoutMilliseconds)
            w.u64(a.maxRequestBytes); w.u64(a.maxOutputBytes); w.u8(a.sharedSession ? 1 : 0); w.u8(a.allowShutdown ? 1 : 0)
            w.u64(a.memoryLimitBytes); w.u64(a.fileSizeLimitBytes); w.u32(a.openFilesLimit)
            w.string(a.anonymousRole); w.u8(a.loginMethods.rawValue); w.string(a.peer); w.u8(a.auditRequests ? 1 : 0); w.u8(a.tlsSwitch ? 1 : 0)
            w.string(a.user)
        case .requestDone(let r):
            w.u8(Tag.requestDone.rawValue); w.string(r.command); w.u64(r.codeBytes); w.data(r.codeSHA256); w.string(r.outcome)
            w.u64(r.durationMicroseconds); w.string(r.limit)
        case .authenticate(let a):
            w.u8(Tag.authenticate.rawValue); w.u8(a.method.rawValue); w.string(a.user); w.data(a.secret)
            w.string(a.salt); w.data(a.authKey)
        case .authenticated(let o):
            w.u8(Tag.authenticated.rawValue); w.u8(o.accepted ? 1 : 0); w.string(o.user); w.string(o.role); w.string(o.message)
        case .ended(let reason):
            w.u8(Tag.ended.rawValue); w.u8(reason.rawValue)
        case .shutdownRequested:
            w.u8(Tag.shutdownRequested.rawValue)
        case .switchToTLS:
            w.u8(Tag.switchToTLS.rawValue)
        case .switchedToTLS:
            w.u8(Tag.switchedToTLS.rawValue)
        case .requestTally(let t):
            w.u8(Tag.requestTally.rawValue); w.u32(t.requests); w.u32(t.errors); w.u32(t.timeouts); w.u32(t.refused); w.u32(t.cancelled)
            w.u64(t.totalMicroseconds); w.u8(UInt8(t.buckets.count))
            for b in t.buckets { w.u32(b) }
        }
        return w.bytes
    }

    /// Decodes one message; every byte must be used.
    public init(decoding bytes: [UInt8]) throws(ControlMessageError) {
        var r = ByteReader(bytes)
        guard let tag = Tag(rawValue: try r.u8()) else { throw ControlMessageError("unknown message tag \(bytes[0])") }
        switch tag {
        case .spawn: self = .spawn(count: try r.u32())
        case .zygoteReady: self = .zygoteReady(pid: try r.i32(), startupMicroseconds: try r.u64())
        case .spawned: self = .spawned(pid: try r.i32())
        case .exited: self = .exited(pid: try r.i32(), waitStatus: try r.i32())
        case .assign:
            var a = SessionAssignment(
                sessionID: try r.u64(), wireProtocol: WireProtocol(rawValue: try r.u8()),
                evalTimeoutMilliseconds: try r.u32(), killGraceMilliseconds: try r.u32(),
                idleTimeoutMilliseconds: try r.u32(), maxRequestBytes: try r.u64(), maxOutputBytes: try r.u64(),
                sharedSession: try r.u8() != 0, allowShutdown: try r.u8() != 0,
                memoryLimitBytes: try r.u64(), fileSizeLimitBytes: try r.u64(), openFilesLimit: try r.u32())
            a.anonymousRole = try r.string()
            a.loginMethods = LoginMethods(rawValue: try r.u8())
            a.peer = try r.string()
            a.auditRequests = try r.u8() != 0
            a.tlsSwitch = try r.u8() != 0
            a.user = try r.string()
            self = .assign(a)
        case .switchToTLS: self = .switchToTLS
        case .switchedToTLS: self = .switchedToTLS
        case .requestDone:
            self = .requestDone(RequestRecord(
                command: try r.string(), codeBytes: try r.u64(), codeSHA256: try r.data(), outcome: try r.string(),
                durationMicroseconds: try r.u64(), limit: try r.string()))
        case .authenticate:
            self = .authenticate(AuthenticationRequest(
                method: .init(rawValue: try r.u8()), user: try r.string(), secret: try r.data(), salt: try r.string(), authKey: try r.data()))
        case .authenticated:
            self = .authenticated(AuthenticationOutcome(accepted: try r.u8() != 0, user: try r.string(), role: try r.string(), message: try r.string()))
        case .ended: self = .ended(reason: SessionEndReason(rawValue: try r.u8()))
        case .shutdownRequested: self = .shutdownRequested
        case .requestTally:
            var t = RequestTally()
            t.requests = try r.u32(); t.errors = try r.u32(); t.timeouts = try r.u32(); t.refused = try r.u32(); t.cancelled = try r.u32()
            t.totalMicroseconds = try r.u64()
            let n = Int(try r.u8())
            guard n == t.buckets.count else { throw ControlMessageError("a request tally with \(n) buckets (expected \(t.buckets.count))") }
            for i in 0..<n { t.buckets[i] = try r.u32() }
            self = .requestTally(t)
        }
        guard r.atEnd else { throw ControlMessageError("\(bytes.count - r.offset) trailing bytes after a \(tag) message") }
    }
}

/// A control message that does not decode.
public struct ControlMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func data(_ v: [UInt8]) { u32(UInt32(v.count)); bytes += v }
    mutating func string(_ v: String) { data(Array(v.utf8)) }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { offset == bytes.count }
    mutating func take(_ n: Int) throws(ControlMessageError) -> ArraySlice<UInt8> {
        guard bytes.count - offset >= n else { throw ControlMessageError("message truncated at byte \(offset)") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
    mutating func u8() throws(ControlMessageError) -> UInt8 { try take(1).first! }
    mutating func u32() throws(ControlMessageError) -> UInt32 {
        try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func i32() throws(ControlMessageError) -> Int32 { Int32(bitPattern: try u32()) }
    mutating func data() throws(ControlMessageError) -> [UInt8] { Array(try take(Int(try u32()))) }
    mutating func string() throws(ControlMessageError) -> String { String(decoding: try data(), as: UTF8.self) }
    mutating func u64() throws(ControlMessageError) -> UInt64 {
        try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}
