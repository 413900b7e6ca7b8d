import Logging
import RgateAuth
import RgateIPC
import RgatePolicy
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Checks logins for every session, in the supervisor: the user database, Rserve password file
/// and RSA private key never enter a session process (which runs client code).
///
/// Failed logins are slowed down per client address (the answer waits `login_delay`, doubling
/// with each recent failure up to 32 times that), and an address with `login_max_failures`
/// failures within `login_lockout` is refused without checking until that window has passed.
/// Per-role session limits are counted here too.
final class Authenticator: Sendable {
    /// How failed logins are slowed down and locked out.
    struct Throttle: Sendable, Hashable {
        var maxFailures = 10
        var window: Duration = .seconds(600)
        var delay: Duration = .milliseconds(250)
    }

    private struct Failures {
        var count: Int
        var first: ContinuousClock.Instant
    }

    private struct State {
        var users: UserDatabase?
        var usersStamp: (Int, Int) = (-1, -1) // mtime seconds, nanoseconds
        var failures: [String: Failures] = [:]
        var sessionsByRole: [String: Int] = [:]
        var roleOfSession: [UInt64: String] = [:]
    }

    let policy: SecurityPolicy
    private let rserveFile: RservePasswordFile?
    private let rsaKey: RSALoginKey?
    private let logger: Logger
    private let events: ServerEvents
    private let state = Mutex(State())

    let throttle: Throttle

    init(policy: SecurityPolicy, rsaKeyFile: String?, throttle: Throttle = Throttle(), logger: Logger, events: ServerEvents) throws {
        self.throttle = throttle
        self.policy = policy
        self.logger = logger
        self.events = events
        if let path = policy.rservePasswordFile {
            rserveFile = try RservePasswordFile(text: try readTextFile(path), source: path)
        } else {
            rserveFile = nil
        }
        if policy.hasUsers {
            rsaKey = try rsaKeyFile.map { try RSALoginKey(pem: try readTextFile($0)) } ?? RSALoginKey.generate()
        } else {
            rsaKey = nil
        }
        if let path = policy.usersFile {
            // Refuse to start with a broken users file; later edits are picked up at each login.
            let database = try UserDatabase(text: try readTextFile(path), source: path)
            for user in database.users where policy.roles[user.role] == nil {
                throw AuthConfigurationError("\(path): user '\(user.name)' has role '\(user.role)', which the configuration does not define")
            }
            state.withLock { $0.users = database; $0.usersStamp = fileStamp(path) }
        }
    }

    /// The DER public key sessions announce for RSA logins.
    var rsaPublicKeyPEMFree: [UInt8]? { rsaKey?.publicKeyDER }

    /// The logins this server can check.
    var loginMethods: LoginMethods {
        guard policy.hasUsers else { return [] }
        var methods: LoginMethods = [.password, .rsa]
        // crypt() answers need the stored password in clear: only Rserve-style files have it,
        // and only when no rgate users (stored as scrypt hashes) are configured.
        if rserveFile != nil && policy.usersFile == nil { methods.insert(.crypt) }
        return methods
    }

    /// Checks credentials; blocks (slow hash, failure delay): call off the monitor thread.
    func authenticate(_ request: AuthenticationRequest, peer: String, sessionID: UInt64) -> AuthenticationOutcome {
        let host = Self.host(of: peer)
        let clock = ContinuousClock()
        let now = clock.now
        // Every attempt counts as a failure until it succeeds, under the lock, so parallel
        // guesses cannot all pass the check; a success takes back only its own attempt.
        let locked = state.withLock { s -> Bool in
            var f = s.failures[host] ?? Failures(count: 0, first: now)
            if now - f.first > throttle.window { f = Failures(count: 0, first: now) }
            if f.count >= throttle.maxFailures { s.failures[host] = f; return true }
            f.count += 1
            s.failures[host] = f
            return false
        }
        if locked {
            events.emit(.login(session: sessionID, peer: peer, user: request.user, role: nil, outcome: .lockedOut))
            return AuthenticationOutcome(accepted: false, user: request.user, role: "", message: "too many failed logins from \(host); try again later")
        }
        var user = request.user
        var role: String?
        switch request.method {
        case .password:
            role = check(user: user, password: String(decoding: request.secret, as: UTF8.self), salt: request.salt)
        case .rsa:
            if let rsaKey, let opened = rsaKey.openLogin(request.secret, authKey: request.authKey) {
                user = opened.user
                role = check(user: user, password: opened.password, salt: nil)
            }
        default:
            break
        }
        if let known = role, policy.roles[known] == nil {
            // Added with `rgate user add --role` after start, with a role this server does not define.
            logger.error("user \(user.debugDescription) has role '\(known)', which the configuration does not define; refusing the login")
            events.emit(.login(session: sessionID, peer: peer, user: user, role: known, outcome: .unknownRole))
            return AuthenticationOutcome(accepted: false, user: user, role: "", message: "login failed")
        }
        if let role, let limit = policy.roles[role]?.maxSessions {
            let admitted = state.withLock { s -> Bool in
                guard s.sessionsByRole[role, default: 0] < limit else { return false }
                s.sessionsByRole[role, default: 0] += 1
                s.roleOfSession[sessionID] = role
                return true
            }
            if !admitted {
                takeBackAttempt(host)
                events.emit(.login(session: sessionID, peer: peer, user: user, role: role, outcome: .roleSessionLimit))
                return AuthenticationOutcome(accepted: false, user: user, role: role, message: "all \(limit) sessions of role \(role) are in use; try again later")
            }
        }
        if let role {
            takeBackAttempt(host)
            events.emit(.login(session: sessionID, peer: peer, user: user, role: role, outcome: .accepted))
            return AuthenticationOutcome(accepted: true, user: user, role: role, message: "")
        }
        let count = state.withLock { s -> Int in
            if s.failures.count > 10_000 { s.failures = s.failures.filter { now - $0.value.first <= throttle.window } }
            return s.failures[host]?.count ?? 1
        }
        logger.notice("login failed", metadata: ["user": "\(user.debugDescription)", "peer": "\(peer)", "session.id": "\(sessionID)", "failures": "\(count)"])
        events.emit(.login(session: sessionID, peer: peer, user: user, role: nil, outcome: .failed))
        let base = throttle.delay.components
        let baseMicros = Int(base.seconds) * 1_000_000 + Int(base.attoseconds / 1_000_000_000_000)
        usleep(UInt32(clamping: baseMicros << min(count - 1, 5)))
        return AuthenticationOutcome(accepted: false, user: user, role: "", message: "login failed")
    }

    /// Uncounts an attempt that did not fail (each one counts as a failure until it succeeds).
    private func takeBackAttempt(_ host: String) {
        state.withLock { s in
            if var f = s.failures[host] { f.count = max(0, f.count - 1); s.failures[host] = f }
        }
    }

    /// Forgets a session (its role's session count goes down).
    func sessionEnded(_ sessionID: UInt64) {
        state.withLock { s in
            if let role = s.roleOfSession.removeValue(forKey: sessionID) { s.sessionsByRole[role, default: 1] -= 1 }
        }
    }

    private func check(user: String, password: String, salt: String?) -> String? {
        if let path = policy.usersFile {
            let database = currentUsers(path)
            if database?.user(named: user) != nil {
                return database?.verify(user: user, password: password)
            }
        }
        if let rserveFile, rserveFile.verify(user: user, password: password, salt: salt?.isEmpty == false ? salt : nil) {
            return policy.rservePasswordRole
        }
        if policy.usersFile != nil {
            _ = UserDatabase().verify(user: user, password: password) // same time as a real check
        }
        return nil
    }

    /// The users file, re-read when it changed (so `rgate user add` needs no restart).
    private func currentUsers(_ path: String) -> UserDatabase? {
        let stamp = fileStamp(path)
        if let cached = state.withLock({ s -> UserDatabase?? in s.usersStamp == stamp ? .some(s.users) : nil }) { return cached }
        do {
            let database = try UserDatabase(text: try readTextFile(path), source: path)
            state.withLock { $0.users = database; $0.usersStamp = stamp }
            return database
        } catch {
            logger.error("cannot read the users file; keeping the last good one: \(error)")
            return state.withLock { $0.users }
        }
    }

    static func host(of peer: String) -> String {
        if peer.hasPrefix("["), let end = peer.firstIndex(of: "]") {
            let address = String(peer[peer.index(after: peer.startIndex)..<end])
            // An IPv4 client seen through an IPv6 socket is the same address.
            return address.lowercased().hasPrefix("::ffff:") && address.contains(".") ? String(address.dropFirst(7)) : address
        }
        if let colon = peer.lastIndex(of: ":"), peer.firstIndex(of: ":") == colon { return String(peer[..<colon]) }
        return peer
    }
}

private func fileStamp(_ path: String) -> (Int, Int) {
    var st = stat()
    guard stat(path, &st) == 0 else { return (-1, -1) }
    return (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec) ^ Int(st.st_size) << 32 ^ Int(st.st_ino))
}

/// The whole text of a file.
func readTextFile(_ path: String) throws(AuthConfigurationError) -> String {
    guard let file = fopen(path, "r") else { throw AuthConfigurationError("\(path): cannot open (\(String(cString: strerror(errno))))") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
