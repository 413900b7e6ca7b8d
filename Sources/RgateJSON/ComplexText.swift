internal import RgateModel

/// A complex number as the string rjson carries it, the form `as.complex()` reads: `"NA"`, or
/// the real part, a sign, the imaginary magnitude and `i` (`"1.5-2i"`, `"0+1e-300i"`,
/// `"NaN+Infi"`, `"-Inf-0i"`). Each part is a JSON number, `NaN` or `Inf` (the real part also
/// `-Inf`, and `NA` for jsonlite's `"NA+2i"`); an NA part makes the element NA, as in
/// RgateEngine's conversion.
enum ComplexText {
    /// `nil` when `text` is not a complex number; `.some(nil)` for NA.
    static func parse(_ text: String) -> RComplex?? {
        if text == "NA" { return .some(nil) }
        var bytes = Array(text.utf8)[...]
        guard let real = part(&bytes, signed: true) else { return nil }
        guard let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        bytes = bytes.dropFirst()
        guard let magnitude = part(&bytes, signed: false), bytes.elementsEqual([UInt8(ascii: "i")]) else { return nil }
        guard let re = real, let im = magnitude else { return .some(nil) }
        return .some(RComplex(re, sign == UInt8(ascii: "-") ? -im : im))
    }

    /// One part at the front of `bytes`: `.some(nil)` for NA, `nil` when malformed.
    private static func part(_ bytes: inout ArraySlice<UInt8>, signed: Bool) -> Double?? {
        var negative = false
        if signed, bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        for (word, value) in [("NaN", Double.nan), ("Inf", Double.infinity), ("NA", Double.nan)] where bytes.starts(with: word.utf8) {
            bytes = bytes.dropFirst(word.utf8.count)
            if word == "NA" { return negative ? nil : .some(nil) }
            return .some(negative ? -value : value)
        }
        // A JSON number: digits, optional fraction, optional exponent.
        let start = bytes.startIndex
        var i = start
        func digits() -> Bool {
            let first = i
            while i < bytes.endIndex, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
            return i > first
        }
        guard digits() else { return nil }
        if bytes[start] == 0x30 && i - start > 1 { return nil }
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() else { return nil }
        }
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.endIndex, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() else { return nil }
        }
        guard i - start <= 100, let value = Double(String(decoding: bytes[start..<i], as: UTF8.self)), value.isFinite else { return nil }
        bytes = bytes[i...]
        return .some(negative ? -value : value)
    }
}
