import NIOCore
import RgateModel
import RgateQAP1

/// Bytes from a hex dump such as `"0a 08 00 00 | 20 04 00 00"`: every pair of hex digits is a
/// byte; spaces, `|` and other separators are ignored.
func hex(_ dump: String) -> [UInt8] {
    let digits = dump.unicodeScalars.compactMap { UInt8(String($0), radix: 16) }
    precondition(digits.count.isMultiple(of: 2), "odd number of hex digits in \(dump)")
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

/// A hex dump of `bytes`, for messages.
func dump<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
}

/// A buffer holding `bytes`.
func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// The bytes of `QAP1SEXP.encode(value)`.
func encoded(_ value: RValue) -> [UInt8] {
    var out = ByteBuffer()
    try! QAP1SEXP.encode(value, into: &out) // test values nest far less than the depth limit
    return Array(out.readableBytesView)
}

/// `QAP1SEXP.encodedSize(value)` for test values, which nest far less than the depth limit.
func encodedSize(_ value: RValue) -> Int {
    try! QAP1SEXP.encodedSize(value)
}

/// The bytes of a DT_SEXP parameter holding `value`.
func encodedParameter(_ value: RValue) -> [UInt8] {
    var out = ByteBuffer()
    try! QAP1Parameter.sexp(value).encode(into: &out) // shallow test values
    return Array(out.readableBytesView)
}

/// Little-endian bytes of a 32-bit integer.
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
/// Little-endian bytes of a double.
func le64(_ v: Double) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }

/// A small-form `XT_*`/`DT_*` header.
func head(_ type: UInt8, _ length: Int) -> [UInt8] { le32(UInt32(type) | UInt32(length) << 8) }
/// A large-form header (`type` gets the 0x40 flag), as pyRserve writes for every object.
func largeHead(_ type: UInt8, _ length: Int) -> [UInt8] {
    le32(UInt32(type | 0x40) | UInt32(length & 0xff_ffff) << 8) + le32(UInt32(length >> 24))
}

/// A symbol value.
func sym(_ name: String) -> RValue { RValue(.symbol(name)) }

/// A deterministic generator (SplitMix64), so that fuzzing failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
    /// A random element of a non-empty array.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &self)] }
}
