public import RgateModel

/// The Swift value model encodes through the same encoder as R's own objects.
extension RValue: QAP1SEXPSource {
    public var qapKind: QAP1ObjectKind {
        switch payload {
        case .null: .null
        case .logical: .logical
        case .integer: .integer
        case .double: .double
        case .complex: .complex
        case .character: .character
        case .raw: .raw
        case .list: .list
        case .symbol: .symbol
        case .language: .language
        case .pairlist: .pairlist
        case .opaque(let type, _): type == "S4" ? .s4 : .unknown(Int32(QAP1SEXP.sexpType(named: type)))
        }
    }

    public var qapCount: Int { payload.count }

    public func qapAttributes() -> [(name: String, value: RValue)] {
        let wire: [RAttribute]
        switch payload {
        case .language, .pairlist: wire = attributes.filter { $0.name != "names" } // tags carry them
        default: wire = attributes
        }
        return wire.map { ($0.name, $0.value) }
    }

    public func qapElement(_ i: Int) -> RValue {
        switch payload {
        case .list(let v), .language(let v), .pairlist(let v): v[i]
        default: .null
        }
    }

    public func qapTag(_ i: Int) -> String? {
        guard let names, i < names.count else { return nil }
        return names[i]
    }

    public var qapSymbolName: String {
        if case .symbol(let name) = payload { return name }
        return ""
    }

    public var qapClosureParts: (formals: RValue, body: RValue)? { nil }

    public func withQAPInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T {
        let values: [Int32] = switch payload {
        case .integer(let v): v.map { $0 ?? Int32.min }
        case .logical(let v): v.map { $0.map { $0 ? 1 : 0 } ?? Int32.min }
        default: []
        }
        return try values.withUnsafeBufferPointer(body)
    }

    public func withQAPDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T {
        let na = Double(bitPattern: QAP1SEXP.naRealBits)
        var values: [Double] = []
        switch payload {
        case .double(let v): values = v.map { $0 ?? na }
        case .complex(let v):
            values.reserveCapacity(2 * v.count)
            for e in v { values.append(e?.real ?? na); values.append(e?.imaginary ?? na) }
        default: break
        }
        return try values.withUnsafeBufferPointer(body)
    }

    public func withQAPBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard case .raw(let bytes) = payload else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try bytes.withUnsafeBytes(body)
    }

    public func withQAPString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T {
        guard case .character(let strings) = payload, var s = strings[i] else { return try body(nil) }
        return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
