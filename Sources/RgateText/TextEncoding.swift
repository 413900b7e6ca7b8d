public import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Converts between a named text encoding and UTF-8 (R runs in UTF-8), using iconv.
///
/// Common spellings are normalised (`utf8`, `UTF-8`, `latin1`, `ISO8859-1`, `latin-1` ...);
/// anything else is passed to iconv as is, so every encoding glibc knows works.
public struct TextEncoding: Sendable, Hashable {
    /// The canonical iconv name.
    public let canonicalName: String

    /// Looks up an encoding by the name a client sent.
    /// - Throws: ``TextProtocolError`` (`unknownEncoding`) when iconv cannot convert it.
    public init(named name: String) throws(TextProtocolError) {
        let folded = name.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " }
        let canonical: String = switch folded {
        case "utf8": "UTF-8"
        case "latin1", "iso88591", "l1", "iso885911987": "ISO-8859-1"
        case "ascii", "usascii", "ansix3.41968": "ASCII"
        default: name
        }
        for (to, from) in [("UTF-8", canonical), (canonical, "UTF-8")] {
            let cd = iconv_open(to, from)
            if cd == iconv_t(bitPattern: -1) {
                throw TextProtocolError(.unknownEncoding, "unknown encoding \"\(name)\"; use e.g. UTF-8 or latin1")
            }
            iconv_close(cd)
        }
        canonicalName = canonical
    }

    /// UTF-8.
    public static let utf8 = try! TextEncoding(named: "UTF-8")

    /// True for UTF-8, where conversion is only validation.
    public var isUTF8: Bool { canonicalName == "UTF-8" }

    /// Decodes bytes in this encoding to UTF-8, strictly.
    /// - Throws: ``TextProtocolError`` (`invalidText`) with the offset of the first bad byte.
    public func decodeToUTF8(_ bytes: ByteBuffer) throws(TextProtocolError) -> [UInt8] {
        let input = Array(bytes.readableBytesView)
        if isUTF8 {
            if let bad = Self.firstInvalidUTF8(input) {
                throw TextProtocolError(.invalidText, "the code is not valid UTF-8 (first bad byte at offset \(bad))", offset: bad)
            }
            return input
        }
        return try convert(input, from: canonicalName, to: "UTF-8")
    }

    /// Encodes UTF-8 text into this encoding; characters it cannot represent become `?`.
    public func encode(_ text: String) -> ByteBuffer {
        let utf8 = Array(text.utf8)
        if isUTF8 { return ByteBuffer(bytes: utf8) }
        let converted = (try? convert(utf8, from: "UTF-8", to: canonicalName, substitute: true)) ?? utf8
        return ByteBuffer(bytes: converted)
    }

    private func convert(_ input: [UInt8], from: String, to: String, substitute: Bool = false) throws(TextProtocolError) -> [UInt8] {
        let cd = iconv_open(to, from)
        guard cd != iconv_t(bitPattern: -1) else {
            throw TextProtocolError(.unknownEncoding, "unknown encoding \"\(from == "UTF-8" ? to : from)\"")
        }
        defer { iconv_close(cd) }
        var output = [UInt8](repeating: 0, count: max(16, input.count * 4 + 16))
        var source = input
        var failure: Int?
        let produced: Int = source.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                var inPtr = UnsafeMutableRawPointer(inBuf.baseAddress).map { $0.assumingMemoryBound(to: CChar.self) }
                var inLeft = inBuf.count
                var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                var outLeft = outBuf.count
                while inLeft > 0 {
                    if iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft) != -1 { break }
                    let consumed = inBuf.count - inLeft
                    if (errno == EILSEQ || errno == EINVAL) && substitute && outLeft > 0 {
                        // Skip one UTF-8 character, write '?'.
                        var skip = 1
                        while skip < inLeft, (inBuf[consumed + skip] & 0xC0) == 0x80 { skip += 1 }
                        inPtr = inPtr! + skip
                        inLeft -= skip
                        outPtr!.pointee = CChar(UInt8(ascii: "?"))
                        outPtr! += 1
                        outLeft -= 1
                        continue
                    }
                    failure = consumed
                    break
                }
                return outBuf.count - outLeft
            }
        }
        if let failure {
            throw TextProtocolError(.invalidText, "the code is not valid \(from) (first bad byte at offset \(failure))", offset: failure)
        }
        return Array(output[0..<produced])
    }

    /// The offset of the first byte that breaks UTF-8, or nil when `bytes` is valid.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let need: Int
            var minimum: UInt32
            var cp: UInt32
            switch b {
            case 0xC2...0xDF: need = 1; cp = UInt32(b & 0x1F); minimum = 0x80
            case 0xE0...0xEF: need = 2; cp = UInt32(b & 0x0F); minimum = 0x800
            case 0xF0...0xF4: need = 3; cp = UInt32(b & 0x07); minimum = 0x10000
            default: return i
            }
            guard i + need < n else { return i }
            for k in 1...need {
                let c = bytes[i + k]
                guard c & 0xC0 == 0x80 else { return i }
                cp = (cp << 6) | UInt32(c & 0x3F)
            }
            if cp < minimum || cp > 0x10FFFF || (0xD800...0xDFFF).contains(cp) { return i }
            i += need + 1
        }
        return nil
    }
}
