/// Standard base64 (RFC 4648, with padding), as jsonlite's `base64_enc` writes raw vectors.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 0...63 for alphabet bytes, 0xFF otherwise.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, b) in alphabet.enumerated() { table[Int(b)] = UInt8(i) }
        return table
    }()

    /// Appends the encoding of `bytes` to `out`, on one line.
    static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(n >> 18)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
    }

    /// Decodes `text`, skipping the line breaks jsonlite puts every 72 characters; `nil` if it is
    /// not canonical base64 (a foreign byte, bad padding, or nonzero bits after the last byte).
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var quad: UInt32 = 0
        var filled = 0
        var padding = 0
        var finished = false
        for b in text {
            if b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { continue }
            guard !finished else { return nil }  // nothing may follow a padded group
            if b == UInt8(ascii: "=") {
                guard filled >= 2 else { return nil }
                padding += 1
                quad <<= 6
                filled += 1
            } else {
                let v = values[Int(b)]
                guard v != 0xFF, padding == 0 else { return nil }
                quad = quad << 6 | UInt32(v)
                filled += 1
            }
            if filled == 4 {
                out.append(UInt8(truncatingIfNeeded: quad >> 16))
                switch padding {
                case 0:
                    out.append(UInt8(truncatingIfNeeded: quad >> 8))
                    out.append(UInt8(truncatingIfNeeded: quad))
                case 1:
                    guard quad & 0xFF == 0 else { return nil }
                    out.append(UInt8(truncatingIfNeeded: quad >> 8))
                default:
                    guard quad & 0xFFFF == 0 else { return nil }
                }
                quad = 0
                filled = 0
                finished = padding > 0
            }
        }
        return filled == 0 ? out : nil
    }
}
