#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// R's conventions for doubles, and their text forms.
enum RDouble {
    /// Whether `value` has R's NA bit pattern (R's `R_IsNA`), as opposed to any other NaN.
    @inline(__always)
    static func isNA(_ value: Double) -> Bool {
        value.isNaN && value.bitPattern & 0xFFFF_FFFF == 1954
    }

    /// The shortest round-trip text of a finite double (see ``ShortestDouble``), for JSON
    /// numbers, which jsonlite reads with `strtod`.
    static func shortest(_ value: Double) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ShortestDouble.maximumLength) { buffer in
            let n = ShortestDouble.write(value, to: buffer.baseAddress!)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<n]), as: UTF8.self)
        }
    }

    /// A finite double as R's own number reader must see it: `%.17g` (17 significant digits,
    /// correctly rounded, trailing zeros dropped: `1.5`, `0.10000000000000001`, `1e+300`).
    ///
    /// R reads text in R code and in `as.complex()` with its own `R_strtod`, which scales by
    /// powers of ten in long double and is not correctly rounded: it misreads about 3 in 10,000
    /// shortest forms (such as `4.6614e+100`) by one ulp, but none of the 17-digit forms (measured
    /// on 460,000 doubles with R 4.2 on x86_64). So complex parts and numbers in calls use this
    /// form; JSON numbers, which jsonlite reads with `strtod`, use ``shortest(_:)``.
    static func seventeenDigits(_ value: Double) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            let n = writeSeventeenDigits(value, to: buffer.baseAddress!)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<n]), as: UTF8.self)
        }
    }

    /// Writes ``seventeenDigits(_:)`` at `p` (at most 24 bytes, then a NUL) and returns its length.
    static func writeSeventeenDigits(_ value: Double, to p: UnsafeMutablePointer<UInt8>) -> Int {
        // The C numeric locale for this thread only, so a process locale cannot make the point a comma.
        let previous = uselocale(cLocale)
        defer { uselocale(previous) }
        return p.withMemoryRebound(to: CChar.self, capacity: 25) { c in
            Int(withVaList([value]) { vsnprintf(c, 25, "%.17g", $0) })
        }
    }

    /// The "C" numeric locale, made once. Safe to share: a locale object is immutable once made and
    /// `uselocale` only installs it for the calling thread.
    private nonisolated(unsafe) static let cLocale = newlocale(LC_NUMERIC_MASK, "C", nil)
}
