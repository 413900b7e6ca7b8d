internal import CRShim
#if canImport(Glibc)
import Glibc
#endif
public import RgateModel

extension REngine {
    /// Converts an R object to the Swift value model (copying its data).
    func convert(_ x: rg_sexp) throws(EngineError) -> RValue {
        let type = rg_typeof(x)
        let n = Int(rg_length(x))
        let payload: RPayload
        func data<T>(_ pointer: UnsafePointer<T>?) throws(EngineError) -> UnsafePointer<T>? {
            guard n > 0 else { return nil }
            guard let pointer else { throw EngineError("R could not provide the data of a vector of \(n) elements (out of memory?)") }
            return pointer
        }
        switch type {
        case Int32(RG_NILSXP):
            return .null
        case Int32(RG_LGLSXP):
            let p = try data(rg_logical(x))
            payload = .logical((0..<n).map { p![$0] == Int32.min ? nil : p![$0] != 0 })
        case Int32(RG_INTSXP):
            let p = try data(rg_integer(x))
            payload = .integer((0..<n).map { p![$0] == Int32.min ? nil : p![$0] })
        case Int32(RG_REALSXP):
            let p = try data(rg_real(x))
            payload = .double((0..<n).map { rg_r_isna(p![$0]) != 0 ? nil : p![$0] })
        case Int32(RG_CPLXSXP):
            let p = try data(rg_complex(x))
            payload = .complex((0..<n).map { i in
                let re = p![2 * i], im = p![2 * i + 1]
                return rg_r_isna(re) != 0 || rg_r_isna(im) != 0 ? nil : RComplex(re, im)
            })
        case Int32(RG_STRSXP):
            payload = .character((0..<n).map { string(x, Int64($0)) })
        case Int32(RG_RAWSXP):
            payload = .raw(n == 0 ? [] : Array(UnsafeBufferPointer(start: try data(rg_raw(x)), count: n)))
        case Int32(RG_SYMSXP):
            let name = rg_symbol_name(x)!
            return RValue(.symbol(String(decoding: UnsafeRawBufferPointer(start: name, count: strlen(name)), as: UTF8.self)))
        case Int32(RG_LANGSXP), Int32(RG_LISTSXP):
            var values: [RValue] = []
            var tags: [String] = []
            var tagged = false
            var node: rg_sexp? = x
            while let current = node, rg_is_nil(current) == 0 {
                values.append(try convert(rg_car(current)))
                if let tag = rg_tag_name(current) {
                    tags.append(String(decoding: UnsafeRawBufferPointer(start: tag, count: strlen(tag)), as: UTF8.self))
                    tagged = true
                } else {
                    tags.append("")
                }
                node = rg_cdr(current)
            }
            var attributes = try self.attributes(of: x)
            if tagged { attributes.insert(RAttribute(name: "names", value: .character(tags)), at: 0) }
            return RValue(type == Int32(RG_LANGSXP) ? .language(values) : .pairlist(values), attributes: attributes)
        case Int32(RG_VECSXP), Int32(RG_EXPRSXP):
            var elements: [RValue] = []
            elements.reserveCapacity(n)
            for i in 0..<n { elements.append(try convert(rg_vector_elt(x, Int64(i)))) }
            payload = .list(elements)
        default:
            payload = .opaque(type: Self.typeName(type), description: type == Int32(RG_ENVSXP) ? "<environment>" : deparse(x))
        }
        return RValue(payload, attributes: try attributes(of: x))
    }

    private func attributes(of x: rg_sexp) throws(EngineError) -> [RAttribute] {
        var result: [RAttribute] = []
        var node = rg_attributes(x)
        while let current = node, rg_is_nil(current) == 0 {
            if let name = rg_tag_name(current) {
                result.append(RAttribute(name: String(decoding: UnsafeRawBufferPointer(start: name, count: strlen(name)), as: UTF8.self), value: try convert(rg_car(current))))
            }
            node = rg_cdr(current)
        }
        return result
    }

    /// Builds a preserved R object from a Swift value; the caller releases it.
    func build(_ value: RValue) throws(EngineError) -> rg_sexp {
        let x = try allocate(value.payload)
        do throws(EngineError) {
            for attribute in value.attributes {
                let a = try build(attribute.value)
                defer { rg_release(a) }
                guard rg_set_attribute(x, attribute.name, a) == 0 else {
                    throw EngineError("R rejected attribute '\(attribute.name)'")
                }
            }
        } catch {
            rg_release(x)
            throw error
        }
        return x
    }

    private func allocate(_ payload: RPayload) throws(EngineError) -> rg_sexp {
        func vector(_ type: Int32, _ n: Int) throws(EngineError) -> rg_sexp {
            guard let x = rg_alloc_vector(type, Int64(n)) else {
                throw EngineError("R could not allocate a vector of \(n) elements")
            }
            return x
        }
        switch payload {
        case .null:
            let x = rg_nil()!
            rg_preserve(x)
            return x
        case .logical(let v):
            let x = try vector(Int32(RG_LGLSXP), v.count)
            if !v.isEmpty { let p = rg_logical_mut(x)!; for (i, e) in v.enumerated() { p[i] = e.map { $0 ? 1 : 0 } ?? Int32.min } }
            return x
        case .integer(let v):
            let x = try vector(Int32(RG_INTSXP), v.count)
            if !v.isEmpty { let p = rg_integer_mut(x)!; for (i, e) in v.enumerated() { p[i] = e ?? Int32.min } }
            return x
        case .double(let v):
            let x = try vector(Int32(RG_REALSXP), v.count)
            if !v.isEmpty { let p = rg_real_mut(x)!; let na = rg_na_real(); for (i, e) in v.enumerated() { p[i] = e ?? na } }
            return x
        case .complex(let v):
            let x = try vector(Int32(RG_CPLXSXP), v.count)
            if !v.isEmpty {
                let p = rg_complex_mut(x)!
                let na = rg_na_real()
                for (i, e) in v.enumerated() { p[2 * i] = e?.real ?? na; p[2 * i + 1] = e?.imaginary ?? na }
            }
            return x
        case .character(let v):
            let x = try vector(Int32(RG_STRSXP), v.count)
            for (i, e) in v.enumerated() {
                let rc: Int32
                if var s = e {
                    rc = s.withUTF8 { utf8 in
                        utf8.withMemoryRebound(to: CChar.self) { rg_set_string_elt(x, Int64(i), $0.baseAddress ?? emptyCString, Int32($0.count)) }
                    }
                } else {
                    rc = rg_set_string_elt(x, Int64(i), nil, 0)
                }
                guard rc == 0 else { rg_release(x); throw EngineError("R could not store string \(i + 1)") }
            }
            return x
        case .raw(let v):
            let x = try vector(Int32(RG_RAWSXP), v.count)
            if !v.isEmpty { let p = rg_raw_mut(x)!; v.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: v.count) } }
            return x
        case .list(let v):
            let x = try vector(Int32(RG_VECSXP), v.count)
            for (i, e) in v.enumerated() {
                let element: rg_sexp
                do throws(EngineError) { element = try build(e) } catch { rg_release(x); throw error }
                rg_set_vector_elt(x, Int64(i), element)
                rg_release(element)
            }
            return x
        case .symbol(let name):
            guard !name.isEmpty, let x = rg_install(name) else { throw EngineError("R could not make the symbol '\(name)'") }
            return x
        case .language(let v), .pairlist(let v):
            let isCall: Bool = if case .language = payload { true } else { false }
            guard !v.isEmpty else {
                if isCall { throw EngineError("a call needs at least a function") }
                let x = rg_nil()!
                rg_preserve(x)
                return x
            }
            let x = try vector(Int32(isCall ? RG_LANGSXP : RG_LISTSXP), v.count)
            for (i, e) in v.enumerated() {
                let element: rg_sexp
                do throws(EngineError) { element = try build(e) } catch { rg_release(x); throw error }
                rg_set_nth_car(x, Int64(i), element)
                rg_release(element)
            }
            return x
        case .opaque(let type, _):
            throw EngineError("an opaque R object (\(type)) cannot be sent back to R")
        }
    }

    static func typeName(_ type: Int32) -> String {
        switch type {
        case Int32(RG_SYMSXP): "symbol"
        case Int32(RG_LISTSXP): "pairlist"
        case Int32(RG_CLOSXP): "closure"
        case Int32(RG_ENVSXP): "environment"
        case Int32(RG_PROMSXP): "promise"
        case Int32(RG_LANGSXP): "language"
        case Int32(RG_SPECIALSXP): "special"
        case Int32(RG_BUILTINSXP): "builtin"
        case Int32(RG_EXTPTRSXP): "externalptr"
        case Int32(RG_WEAKREFSXP): "weakref"
        case Int32(RG_S4SXP): "S4"
        case Int32(RG_BCODESXP): "bytecode"
        default: "type\(type)"
        }
    }
}

/// A NUL byte for empty C strings.
nonisolated(unsafe) private let emptyCString: UnsafePointer<CChar> = {
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    p.pointee = 0
    return UnsafePointer(p)
}()

/// A Swift string from a NUL-terminated C buffer.
func decodeCString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
