internal import CRShim
#if canImport(Glibc)
import Glibc
#endif

/// A read-only, zero-copy view of an R object (or of a part of one) that an ``RObject`` keeps
/// alive. For encoders that want R's own memory, e.g. to write a numeric vector with one
/// `memcpy`. Valid only on the R thread, and only while the object is not modified.
public struct RObjectView {
    let sexp: rg_sexp
    /// Keeps the root object protected while views into it exist.
    let owner: RObject

    /// The kind of object.
    public enum Kind: Sendable, Hashable {
        case null, logical, integer, double, complex, character, raw, list, expression, symbol, language, pairlist, s4, closure
        /// Any other SEXPTYPE (closure, environment, ...).
        case other(Int32)
    }

    /// The object's kind.
    public var kind: Kind {
        switch rg_typeof(sexp) {
        case Int32(RG_NILSXP): .null
        case Int32(RG_LGLSXP): .logical
        case Int32(RG_INTSXP): .integer
        case Int32(RG_REALSXP): .double
        case Int32(RG_CPLXSXP): .complex
        case Int32(RG_STRSXP): .character
        case Int32(RG_RAWSXP): .raw
        case Int32(RG_VECSXP): .list
        case Int32(RG_EXPRSXP): .expression
        case Int32(RG_SYMSXP): .symbol
        case Int32(RG_LANGSXP): .language
        case Int32(RG_LISTSXP): .pairlist
        case Int32(RG_S4SXP): .s4
        case Int32(RG_CLOSXP): .closure
        case let t: .other(t)
        }
    }

    /// The number of elements (nodes, for calls and pairlists).
    public var count: Int {
        switch kind {
        case .symbol, .other, .s4, .null, .closure: 0
        default: Int(rg_length(sexp))
        }
    }

    /// Attributes in R's order.
    public var attributes: [(name: String, value: RObjectView)] {
        var result: [(String, RObjectView)] = []
        var node = rg_attributes(sexp)
        while let current = node, rg_is_nil(current) == 0 {
            if let name = rg_tag_name(current) {
                result.append((String(cString: name), RObjectView(sexp: rg_car(current), owner: owner)))
            }
            node = rg_cdr(current)
        }
        return result
    }

    /// Element `i` of a list, expression, call or pairlist.
    public func element(_ i: Int) -> RObjectView {
        switch kind {
        case .language, .pairlist: RObjectView(sexp: rg_car(node(i)), owner: owner)
        default: RObjectView(sexp: rg_vector_elt(sexp, Int64(i)), owner: owner)
        }
    }

    /// The tag of node `i` of a call or pairlist.
    public func tag(_ i: Int) -> String? {
        guard kind == .language || kind == .pairlist, let name = rg_tag_name(node(i)) else { return nil }
        return String(cString: name)
    }

    private func node(_ i: Int) -> rg_sexp {
        var n = sexp
        for _ in 0..<i { n = rg_cdr(n) }
        return n
    }

    /// A closure's formals (a pairlist, or NULL) and body.
    public var closureParts: (formals: RObjectView, body: RObjectView)? {
        guard kind == .closure else { return nil }
        return (RObjectView(sexp: rg_formals(sexp), owner: owner), RObjectView(sexp: rg_closure_body(sexp), owner: owner))
    }

    /// A symbol's name.
    public var symbolName: String {
        guard kind == .symbol, let p = rg_symbol_name(sexp) else { return "" }
        return String(cString: p)
    }

    /// Integer or logical data in R's representation (NA = Int32.min).
    public func withInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T {
        let n = Int(rg_length(sexp))
        let p = kind == .logical ? rg_logical(sexp) : rg_integer(sexp)
        guard n == 0 || p != nil else { throw EngineError("R could not provide the data of a vector of \(n) elements") }
        return try body(UnsafeBufferPointer(start: p, count: n))
    }

    /// Double data (R's NA bit pattern kept), or complex data as interleaved re/im.
    public func withDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T {
        let n = Int(rg_length(sexp))
        let isComplex = kind == .complex
        let p = isComplex ? rg_complex(sexp) : rg_real(sexp)
        guard n == 0 || p != nil else { throw EngineError("R could not provide the data of a vector of \(n) elements") }
        return try body(UnsafeBufferPointer(start: p, count: isComplex ? 2 * n : n))
    }

    /// Raw data.
    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let n = Int(rg_length(sexp))
        let p = rg_raw(sexp)
        guard n == 0 || p != nil else { throw EngineError("R could not provide the data of a vector of \(n) elements") }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// The data of an integer, double or complex vector in R's memory, when it already exists
    /// there (not a compact ALTREP vector that would have to be expanded): stays valid while the
    /// owning ``RObject`` lives and R does not modify it.
    public var stableData: UnsafeRawBufferPointer? {
        let n = Int(rg_length(sexp))
        guard n > 0, rg_is_altrep(sexp) == 0 else { return nil }
        switch kind {
        case .integer: return rg_integer(sexp).map { UnsafeRawBufferPointer(start: $0, count: 4 * n) }
        case .double: return rg_real(sexp).map { UnsafeRawBufferPointer(start: $0, count: 8 * n) }
        case .complex: return rg_complex(sexp).map { UnsafeRawBufferPointer(start: $0, count: 16 * n) }
        default: return nil
        }
    }

    /// Every string at once, as (pointer, length) pairs (pointer nil for NA), valid only inside
    /// `body`: one call into R for the whole vector instead of one per element.
    public func withStrings<T>(_ body: (UnsafeBufferPointer<UnsafePointer<UInt8>?>, UnsafeBufferPointer<Int32>) throws -> T) throws -> T {
        let table = try stringTable()
        return try table.pointers.withUnsafeBufferPointer { p in
            // UnsafePointer<CChar>? and UnsafePointer<UInt8>? have the same layout.
            try p.withMemoryRebound(to: UnsafePointer<UInt8>?.self) { bytes in
                try table.lengths.withUnsafeBufferPointer { l in try body(bytes, l) }
            }
        }
    }

    /// The sizes of a character vector's strings as UTF-8: bytes of all non-NA strings together,
    /// how many elements are NA, and how many strings start with byte 0xFF (which some wire
    /// formats escape).
    public typealias StringSizes = (bytes: Int, missing: Int, startingWith0xFF: Int)

    /// The sizes of this character vector's strings (from the same table as ``withStrings(_:)``,
    /// computed while it is built).
    public func stringSizes() throws -> StringSizes { try stringTable().sizes }

    private func stringTable() throws -> RObject.StringTable {
        let key = UnsafeMutableRawPointer(sexp)
        if let cached = owner.stringTables[key] { return cached }
        let n = Int(rg_length(sexp))
        var pointers = [UnsafePointer<CChar>?](repeating: nil, count: n)
        var lengths = [Int32](repeating: 0, count: n)
        var arena: UnsafeMutableRawPointer?
        var sizes: (Int64, Int64, Int64) = (0, 0, 0)
        let rc = pointers.withUnsafeMutableBufferPointer { p in
            lengths.withUnsafeMutableBufferPointer { l in
                withUnsafeMutableBytes(of: &sizes) { s in
                    rg_string_table(sexp, p.baseAddress, l.baseAddress, &arena, s.baseAddress!.assumingMemoryBound(to: Int64.self))
                }
            }
        }
        guard rc == 0 else {
            rg_string_table_free(arena)
            throw EngineError("R could not provide the strings of a vector of \(n) elements")
        }
        let table = RObject.StringTable(
            pointers: pointers, lengths: lengths, arena: arena,
            sizes: (bytes: Int(sizes.0), missing: Int(sizes.1), startingWith0xFF: Int(sizes.2)))
        owner.stringTables[key] = table
        return table
    }

    /// String `i` as UTF-8 (nil for NA), valid only inside `body`.
    public func withString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T {
        var length: Int32 = 0
        guard let p = rg_string_elt(sexp, Int64(i), &length) else { return try body(nil) }
        return try body(UnsafeRawBufferPointer(start: p, count: Int(length)))
    }
}

extension RObject {
    /// A zero-copy view of this object.
    public var view: RObjectView { RObjectView(sexp: sexp, owner: self) }
}
