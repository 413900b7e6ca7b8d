import Foundation
import _CryptoExtras

/// The server key of Rserve's RSA secure login (`CMD_keyReq` / `CMD_secLogin`, what RSclient's
/// `RS.authkey()` + `RS.login()` use): the client encrypts `[256][authkey][len][user\npwd\n]`
/// with RSA-OAEP (SHA-1) in chunks of `keySize - 42` bytes.
// Safe: the key is immutable after creation, and BoringSSL's RSA private-key operations
// (decrypt) are thread-safe on a shared, read-only RSA object.
public struct RSALoginKey: @unchecked Sendable {
    private let key: _RSA.Encryption.PrivateKey

    /// A fresh 2048-bit key (made once per worker process; the clients see it with the key request).
    public static func generate() throws -> RSALoginKey {
        RSALoginKey(key: try _RSA.Encryption.PrivateKey(keySize: .bits2048))
    }

    /// A key from a PEM file (Rserve's `rsa.key`), so clients can pin it.
    public init(pem: String) throws {
        key = try _RSA.Encryption.PrivateKey(pemRepresentation: pem)
    }

    private init(key: _RSA.Encryption.PrivateKey) { self.key = key }

    /// The public key, DER-encoded PKCS#1 `RSAPublicKey`, as Rserve sends it.
    public var publicKeyDER: [UInt8] { Array(key.publicKey.pkcs1DERRepresentation) }

    /// The key's modulus size in bytes (one ciphertext block).
    public var blockSize: Int { key.keySizeInBits / 8 }

    /// The `CMD_keyReq` answer: `[u32 256][authkey][u32 length][public key DER]`.
    public func keyRequestAnswer(authKey: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        u32(authKey.count)
        out += authKey
        let der = publicKeyDER
        u32(der.count)
        out += der
        return out
    }

    /// Decrypts a `CMD_secLogin` payload and returns (user, password) when it carries `authKey`.
    public func openLogin(_ ciphertext: [UInt8], authKey: [UInt8]) -> (user: String, password: String)? {
        let block = blockSize
        guard !ciphertext.isEmpty, ciphertext.count % block == 0 else { return nil }
        var plain: [UInt8] = []
        var offset = 0
        while offset < ciphertext.count {
            guard let part = try? key.decrypt(ciphertext[offset..<offset + block], padding: .PKCS1_OAEP) else { return nil }
            plain += part
            offset += block
        }
        func u32(at i: Int) -> Int? {
            guard i + 4 <= plain.count else { return nil }
            return Int(plain[i]) | Int(plain[i + 1]) << 8 | Int(plain[i + 2]) << 16 | Int(plain[i + 3]) << 24
        }
        guard let keyLength = u32(at: 0), keyLength == authKey.count, 4 + keyLength <= plain.count,
              Array(plain[4..<4 + keyLength]) == authKey,
              let length = u32(at: 4 + keyLength), 8 + keyLength + length <= plain.count else { return nil }
        let text = Array(plain[(8 + keyLength)..<(8 + keyLength + length)])
        let parts = text.split(separator: 10, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return nil }
        return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
    }
}
