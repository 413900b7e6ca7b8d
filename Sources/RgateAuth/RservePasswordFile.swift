internal import CRgateSystem
import Crypto

/// An Rserve password file (`pwdfile`): one `user password` per line, `#` comments; the
/// password is plain text, `$` + 32 hex digits (MD5) or `$` + 40 hex digits (SHA-1); a line
/// starting with `*` accepts any user and password. A leading `@` and a `/uid,gid` suffix on the
/// user (Rserve's control/uid options) are accepted and ignored.
public struct RservePasswordFile: Sendable, Hashable {
    /// One entry.
    public struct Entry: Sendable, Hashable {
        public var user: String
        public var password: String
    }

    /// The entries, in file order.
    public var entries: [Entry]
    /// True when a `*` line accepts everyone.
    public var acceptsAnyone: Bool

    /// Parses the file's text.
    /// - Throws: ``AuthConfigurationError`` naming the line of a malformed entry.
    public init(text: String, source: String = "password file") throws(AuthConfigurationError) {
        entries = []
        acceptsAnyone = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("*") { acceptsAnyone = true; continue }
            guard let separator = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw AuthConfigurationError("\(source):\(index + 1): expected `user password`")
            }
            var user = String(line[..<separator])
            if user.hasPrefix("@") { user.removeFirst() }
            if let slash = user.firstIndex(of: "/") { user = String(user[..<slash]) }
            let password = String(line[separator...]).trimmingCharacters(in: " \t")
            guard !user.isEmpty, !password.isEmpty else {
                throw AuthConfigurationError("\(source):\(index + 1): expected `user password`")
            }
            entries.append(Entry(user: user, password: password))
        }
    }

    /// Checks a QAP1 login (`user\npassword`, the password plain or crypt(3)ed with `salt`).
    public func verify(user: String, password: String, salt: String?) -> Bool {
        if acceptsAnyone { return true }
        guard let entry = entries.first(where: { $0.user == user }) else { return false }
        let stored = entry.password
        if stored.hasPrefix("$"), stored.count == 33 || stored.count == 41 {
            let expected = String(stored.dropFirst()).lowercased()
            let digest: String = stored.count == 33
                ? Insecure.MD5.hash(data: Array(password.utf8)).hexString
                : Insecure.SHA1.hash(data: Array(password.utf8)).hexString
            return constantTimeEqual(digest, expected)
        }
        if constantTimeEqual(stored, password) { return true }
        // crypt(3) login: the client sent crypt(password, salt); only plain entries can match.
        if let salt, salt.utf8.count == 2, let hashed = Self.crypt(stored, salt: salt) {
            return constantTimeEqual(hashed, password)
        }
        return false
    }

    /// crypt(3) with a 2-character DES salt.
    public static func crypt(_ key: String, salt: String) -> String? {
        var out = [CChar](repeating: 0, count: 256)
        guard rgs_crypt(key, salt, &out, out.count) == 0 else { return nil }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A fresh 2-character salt from crypt's alphabet.
    public static func makeSalt() -> String {
        let alphabet = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var rng = SystemRandomNumberGenerator()
        return String([alphabet.randomElement(using: &rng)!, alphabet.randomElement(using: &rng)!])
    }
}

/// A configuration file that cannot be used.
public struct AuthConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where and what.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
}

extension Sequence where Element == UInt8 {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        guard let first = firstIndex(where: { !chars.contains($0) }), let last = lastIndex(where: { !chars.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String { self[...].trimmingCharacters(in: set) }
}
