/// The double nearest to `mantissa` × 10^`exponent`, without big numbers, when that can be
/// decided from a 128-bit product (almost always).
///
/// The Eisel-Lemire algorithm (Daniel Lemire, "Number Parsing at a Gigabyte per Second", 2021;
/// this follows Go's `strconv.eiselLemire64`). It gives `nil` when the product is too close to a
/// halfway point to decide, or the result is subnormal, zero or infinite: the caller then uses
/// `strtod`. `mantissa` must be the exact decimal significand (at most 19 digits).
enum EiselLemire {
    static func double(mantissa: UInt64, exponent: Int, negative: Bool) -> Double? {
        guard mantissa != 0 else { return negative ? -0.0 : 0 }
        guard exponent >= -348, exponent <= 347 else { return nil }
        let clz = mantissa.leadingZeroBitCount
        let man = mantissa << UInt64(clz)
        var exponent2 = UInt64(bitPattern: Int64(((217_706 * exponent) >> 16) + 64 + 1023 - clz))
        let (high, low) = powersOfTen[exponent + 348]
        var (xHi, xLo) = man.multipliedFullWidth(by: high)
        // Wider approximation, when the truncated table entry could matter.
        if xHi & 0x1FF == 0x1FF && xLo &+ man < man {
            let (yHi, yLo) = man.multipliedFullWidth(by: low)
            var mergedHi = xHi
            let mergedLo = xLo &+ yHi
            if mergedLo < xLo { mergedHi &+= 1 }
            if mergedHi & 0x1FF == 0x1FF && mergedLo &+ 1 == 0 && yLo &+ man < man { return nil }
            xHi = mergedHi
            xLo = mergedLo
        }
        // Shift to 54 bits.
        let msb = xHi >> 63
        var result = xHi >> (msb + 9)
        exponent2 &-= 1 ^ msb
        // Halfway ambiguity.
        if xLo == 0 && xHi & 0x1FF == 0 && result & 3 == 1 { return nil }
        // From 54 to 53 bits.
        result &+= result & 1
        result >>= 1
        if result >> 53 > 0 {
            result >>= 1
            exponent2 &+= 1
        }
        // Subnormal, zero or infinite: leave it to strtod.
        if exponent2 &- 1 >= 0x7FF - 1 { return nil }
        var bits = exponent2 << 52 | result & 0x000F_FFFF_FFFF_FFFF
        if negative { bits |= 1 << 63 }
        return Double(bitPattern: bits)
    }
}
