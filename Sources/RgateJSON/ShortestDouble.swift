/// The shortest decimal that reads back as the same double, written as a JSON number.
///
/// The digits come from Raffaello Giulietti's Schubfach algorithm ("The Schubfach way to render
/// doubles", 2020; the same steps as the JDK's `DoubleToDecimal`): the shortest digit string in
/// the rounding interval of the double, the closest one when there are several, so the digits
/// are the ones Swift's `Double.description` prints. They are written straight into a byte
/// buffer without a `String` per number, which is what makes 10^6 doubles cheap.
///
/// Layout: plain notation when the leading digit's decimal exponent E is in -5...15
/// (`0.00001`, `0.1`, `1.5`, `100`, `9007199254740992`; an integral double has no `.0`: the
/// node's type says it is a double), scientific otherwise with a bare exponent (`1e16`,
/// `1.5e-7`, `5e-324`, `1.7976931348623157e308`). Negative zero is `-0.0` (jsonlite reads `-0` as
/// the integer 0). Every form is a JSON number that jsonlite (yajl, then `strtod`) and
/// `Double(String)` read exactly; R's own reader is not correctly rounded (see ``RDouble``).
enum ShortestDouble {
    /// The longest output: `-`, 17 digits, `.`, `e-324`.
    static let maximumLength = 25

    /// Writes finite `value` at `p` and returns the number of bytes written (at most
    /// ``maximumLength``).
    @inline(__always)
    static func write(_ value: Double, to p: UnsafeMutablePointer<UInt8>) -> Int {
        let bits = value.bitPattern
        var start = 0
        if bits >> 63 != 0 {
            p[0] = UInt8(ascii: "-")
            start = 1
        }
        let t = bits & ((1 << 52) - 1)
        let bq = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF)
        let decimal: (f: UInt64, e: Int)
        if bq != 0 {
            // Normal: value = c 2^q with c in [2^52, 2^53).
            let mq = 1075 - bq
            let c = (1 << 52) | t
            if 0 < mq && mq < 53, (c >> UInt64(mq)) << UInt64(mq) == c {
                // An integer below 2^53: its digits are exact and (trailing zeros aside) shortest.
                decimal = (c >> UInt64(mq), 0)
            } else {
                decimal = toDecimal(q: -mq, c: c, dk: 0)
            }
        } else if t != 0 {
            // Subnormal. The two smallest are below the paper's C_TINY, where it computes two digits
            // (Java wants "4.9E-324"); their shortest forms are 5e-324 and 1e-323.
            decimal = t == 1 ? (5, -324) : t == 2 ? (1, -323) : toDecimal(q: -1074, c: t, dk: 0)
        } else {
            // Zero; negative zero as -0.0, which yajl reads as a double (it reads -0 as the integer 0).
            if start == 1 {
                (p + 1).update(from: Array("0.0".utf8), count: 3)
                return 4
            }
            p[0] = UInt8(ascii: "0")
            return 1
        }
        return start + layout(decimal.f, decimal.e, p + start)
    }

    // MARK: - Schubfach

    @inline(__always)
    private static func flog10pow2(_ e: Int) -> Int { (e &* 661_971_961_083) >> 41 }
    @inline(__always)
    private static func flog10ThreeQuartersPow2(_ e: Int) -> Int { (e &* 661_971_961_083 &- 274_743_187_321) >> 41 }
    @inline(__always)
    private static func flog2pow10(_ e: Int) -> Int { (e &* 913_124_641_741) >> 38 }

    /// rop(cp g 2^-127) with g = g1 2^63 + g0, rounded to odd (figure 8 of the paper).
    @inline(__always)
    private static func rop(_ g1: UInt64, _ g0: UInt64, _ cp: UInt64) -> UInt64 {
        let x1 = g0.multipliedFullWidth(by: cp).high
        let y = g1.multipliedFullWidth(by: cp)
        let z = (y.low >> 1) &+ x1
        let vbp = y.high &+ (z >> 63)
        let mask63: UInt64 = (1 << 63) - 1
        return vbp | (((z & mask63) &+ mask63) >> 63)
    }

    /// The decimal (f, e), value ≈ f 10^e, for c 2^q (figures 7 and 9 of the paper).
    @inline(__always)
    private static func toDecimal(q: Int, c: UInt64, dk: Int) -> (f: UInt64, e: Int) {
        let out = c & 1
        let cb = c << 2
        let cbr = cb + 2
        let cbl: UInt64
        let k: Int
        if c != 1 << 52 || q == -1074 {
            cbl = cb - 2
            k = flog10pow2(q)
        } else {
            cbl = cb - 1
            k = flog10ThreeQuartersPow2(q)
        }
        let h = UInt64(truncatingIfNeeded: q + flog2pow10(-k) + 2)
        let (g1, g0) = g[k + 324]
        let vb = rop(g1, g0, cb << h)
        let vbl = rop(g1, g0, cbl << h)
        let vbr = rop(g1, g0, cbr << h)
        let s = vb >> 2
        if s >= 100 {
            let sp10 = 10 * (s / 10)
            let tp10 = sp10 + 10
            let upin = vbl + out <= sp10 << 2
            let wpin = (tp10 << 2) + out <= vbr
            if upin != wpin { return (upin ? sp10 : tp10, k) }
        }
        let t = s + 1
        let uin = vbl + out <= s << 2
        let win = (t << 2) + out <= vbr
        if uin != win { return (uin ? s : t, k + dk) }
        let cmp = Int64(bitPattern: vb &- ((s + t) << 1))
        return (cmp < 0 || (cmp == 0 && s & 1 == 0) ? s : t, k + dk)
    }

    // MARK: - Layout

    /// "00" ... "99", a constant in the binary (no lazy initialisation on the hot path).
    private static let pairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// Writes the two digits of `r` (< 100) at `p`.
    @inline(__always)
    private static func pair(_ r: UInt32, _ p: UnsafeMutablePointer<UInt8>) {
        let two = UnsafeRawPointer(pairs.utf8Start).loadUnaligned(fromByteOffset: 2 * Int(r), as: UInt16.self)
        UnsafeMutableRawPointer(p).storeBytes(of: two, as: UInt16.self)
    }

    /// Writes the eight digits of `r` (< 10^8) at `p`, in two independent halves.
    @inline(__always)
    private static func eight(_ r: UInt32, _ p: UnsafeMutablePointer<UInt8>) {
        let high = r / 10_000, low = r % 10_000
        pair(high / 100, p)
        pair(high % 100, p + 2)
        pair(low / 100, p + 4)
        pair(low % 100, p + 6)
    }

    /// Writes the `count` decimal digits of `f` at `p`.
    @inline(__always)
    private static func digits(_ f: UInt64, count: Int, _ p: UnsafeMutablePointer<UInt8>) {
        var f = f
        var i = count
        while i >= 8 {
            let q = f / 100_000_000
            i -= 8
            eight(UInt32(truncatingIfNeeded: f &- q &* 100_000_000), p + i)
            f = q
        }
        var x = UInt32(truncatingIfNeeded: f)
        while i >= 2 {
            let q = x / 100
            i -= 2
            pair(x &- q &* 100, p + i)
            x = q
        }
        if i == 1 { p[0] = UInt8(truncatingIfNeeded: 48 &+ x) }
    }

    private static let powersOf10: [UInt64] = (0...19).map { (0..<$0).reduce(1) { r, _ in r * 10 } }

    /// The number of decimal digits of `f` (1 for 0).
    @inline(__always)
    static func digitCount(_ f: UInt64) -> Int {
        let t = ((64 - f.leadingZeroBitCount) * 1233) >> 12
        return max(1, f >= powersOf10[t] ? t + 1 : t)
    }

    /// Writes f 10^e (f > 0) at `p`; returns the length.
    @inline(__always)
    private static func layout(_ f: UInt64, _ e: Int, _ p: UnsafeMutablePointer<UInt8>) -> Int {
        var f = f
        var e = e
        // Strip trailing zeros in at most four steps (f < 10^17).
        while f % 100_000_000 == 0 { f /= 100_000_000; e += 8 }
        if f % 10_000 == 0 { f /= 10_000; e += 4 }
        if f % 100 == 0 { f /= 100; e += 2 }
        if f % 10 == 0 { f /= 10; e += 1 }
        let n = digitCount(f)
        let exponent = e + n - 1
        if exponent >= -5 && exponent <= 15 {
            if e >= 0 {
                digits(f, count: n, p)
                (p + n).initialize(repeating: UInt8(ascii: "0"), count: e)
                return n + e
            }
            if exponent >= 0 {
                let integral = exponent + 1
                digits(f, count: n, p + 1)
                for i in 0..<integral { p[i] = p[i + 1] }
                p[integral] = UInt8(ascii: ".")
                return n + 1
            }
            let zeros = -exponent - 1
            p[0] = UInt8(ascii: "0")
            p[1] = UInt8(ascii: ".")
            (p + 2).initialize(repeating: UInt8(ascii: "0"), count: zeros)
            digits(f, count: n, p + 2 + zeros)
            return 2 + zeros + n
        }
        var length: Int
        if n == 1 {
            p[0] = UInt8(truncatingIfNeeded: 48 + f)
            length = 1
        } else {
            digits(f, count: n, p + 1)
            p[0] = p[1]
            p[1] = UInt8(ascii: ".")
            length = n + 1
        }
        p[length] = UInt8(ascii: "e")
        length += 1
        var magnitude = exponent
        if exponent < 0 {
            p[length] = UInt8(ascii: "-")
            length += 1
            magnitude = -exponent
        }
        let m = digitCount(UInt64(magnitude))
        digits(UInt64(magnitude), count: m, p + length)
        return length + m
    }
}
