public import Foundation
import Crypto
import _CryptoExtras

/// rgate's own users: a text file with one `name:role:hash` line per user, where the hash is
/// `$scrypt$ln=N,r=R,p=P$<salt>$<key>` (base64, 16-byte salt, 32-byte key). Passwords are never
/// stored; a slow, salted hash is. Lines starting with `#` and blank lines are ignored.
///
/// Written by `rgate user add/remove` (atomically, mode 0600); read by the supervisor, never by
/// session processes.
public struct UserDatabase: Sendable, Hashable {
    /// One user.
    public struct User: Sendable, Hashable {
        public var name: String
        public var role: String
        public var passwordHash: String

        public init(name: String, role: String, passwordHash: String) {
            self.name = name
            self.role = role
            self.passwordHash = passwordHash
        }
    }

    /// The users, in file order.
    public private(set) var users: [User]

    /// An empty database.
    public init() { users = [] }

    /// Parses a users file.
    /// - Parameter source: the file's name, for errors (`source:line: reason`).
    public init(text: String, source: String = "users file") throws(AuthConfigurationError) {
        users = []
        var seen = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, UserDatabase.isValidName(parts[0]), !parts[1].isEmpty else {
                throw AuthConfigurationError("\(source):\(index + 1): expected name:role:hash")
            }
            guard ScryptHash(parts[2]) != nil else {
                throw AuthConfigurationError("\(source):\(index + 1): the password of '\(parts[0])' is not a $scrypt$ hash (passwords are never stored in clear)")
            }
            guard seen.insert(parts[0]).inserted else {
                throw AuthConfigurationError("\(source):\(index + 1): user '\(parts[0])' appears twice")
            }
            users.append(User(name: parts[0], role: parts[1], passwordHash: parts[2]))
        }
    }

    /// The file's text.
    public var text: String {
        "# rgate users: name:role:scrypt hash. Edit with `rgate user add|remove`.\n"
            + users.map { "\($0.name):\($0.role):\($0.passwordHash)\n" }.joined()
    }

    /// User names: letters, digits, `.`, `_`, `-`, `@`; 1 to 64 characters.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "@")
        }
    }

    /// The user named `name`.
    public func user(named name: String) -> User? { users.first { $0.name == name } }

    /// Adds a user or replaces its role and password.
    public mutating func set(_ name: String, role: String, password: String, cost: ScryptHash.Cost = .default) throws {
        guard UserDatabase.isValidName(name) else { throw AuthConfigurationError("'\(name)' is not a valid user name (letters, digits, . _ - @; at most 64)") }
        let hash = try ScryptHash.make(password: password, cost: cost)
        let user = User(name: name, role: role, passwordHash: hash.text)
        if let index = users.firstIndex(where: { $0.name == name }) { users[index] = user } else { users.append(user) }
    }

    /// Removes a user; false when there was none.
    @discardableResult
    public mutating func remove(_ name: String) -> Bool {
        let before = users.count
        users.removeAll { $0.name == name }
        return users.count != before
    }

    /// The user's role when `password` is theirs, else nil. Takes as long as the hash's cost
    /// also for unknown users (so timing does not tell which names exist).
    public func verify(user name: String, password: String) -> String? {
        guard let user = user(named: name), let hash = ScryptHash(user.passwordHash) else {
            _ = try? ScryptHash.make(password: password, cost: .default)
            return nil
        }
        return hash.matches(password) ? user.role : nil
    }
}

/// An scrypt password hash in the form `$scrypt$ln=15,r=8,p=1$<salt base64>$<key base64>`.
public struct ScryptHash: Sendable, Hashable {
    /// scrypt's parameters: N = 2^logN, block size r, parallelism p.
    public struct Cost: Sendable, Hashable {
        public var logN: Int
        public var blockSize: Int
        public var parallelism: Int
        public init(logN: Int, blockSize: Int, parallelism: Int) {
            self.logN = logN
            self.blockSize = blockSize
            self.parallelism = parallelism
        }
        /// N = 2^15, r = 8, p = 1: 32 MiB and ~0.1 s per check on a 2020s core.
        public static let `default` = Cost(logN: 15, blockSize: 8, parallelism: 1)
        /// For tests only: fast and weak.
        public static let testing = Cost(logN: 10, blockSize: 8, parallelism: 1)
        var memory: Int { 128 * blockSize * (1 << logN) * parallelism + (1 << 20) }
    }

    public var cost: Cost
    public var salt: [UInt8]
    public var key: [UInt8]

    /// The stored form.
    public var text: String {
        "$scrypt$ln=\(cost.logN),r=\(cost.blockSize),p=\(cost.parallelism)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// Parses the stored form; nil when malformed or the cost is out of range (ln 10...22, r 1...32, p 1...16).
    public init?(_ text: String) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var values: [String: Int] = [:]
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: "=")
            guard kv.count == 2, let v = Int(kv[1]) else { return nil }
            values[String(kv[0])] = v
        }
        guard let ln = values["ln"], let r = values["r"], let p = values["p"],
              (10...22).contains(ln), (1...32).contains(r), (1...16).contains(p),
              let salt = Data(base64Encoded: String(parts[3])), salt.count >= 8,
              let key = Data(base64Encoded: String(parts[4])), key.count >= 16 else { return nil }
        self.cost = Cost(logN: ln, blockSize: r, parallelism: p)
        self.salt = Array(salt)
        self.key = Array(key)
    }

    init(cost: Cost, salt: [UInt8], key: [UInt8]) {
        self.cost = cost
        self.salt = salt
        self.key = key
    }

    /// Hashes `password` with a fresh random salt.
    public static func make(password: String, cost: Cost) throws -> ScryptHash {
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return ScryptHash(cost: cost, salt: salt, key: try derive(password, salt: salt, cost: cost, length: 32))
    }

    /// Whether `password` hashes to this (constant-time comparison).
    public func matches(_ password: String) -> Bool {
        guard let derived = try? ScryptHash.derive(password, salt: salt, cost: cost, length: key.count) else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(derived, key) { difference |= a ^ b }
        return difference == 0
    }

    static func derive(_ password: String, salt: [UInt8], cost: Cost, length: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: length, rounds: 1 << cost.logN,
            blockSize: cost.blockSize, parallelism: cost.parallelism, maxMemory: cost.memory)
        return key.withUnsafeBytes { Array($0) }
    }
}
