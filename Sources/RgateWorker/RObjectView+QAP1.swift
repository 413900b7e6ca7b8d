public import RgateEngine
public import RgateQAP1

/// Lets the QAP1 encoder read results straight from R's memory.
extension RObjectView: QAP1SEXPSource {
    public var qapKind: QAP1ObjectKind {
        switch kind {
        case .null: .null
        case .logical: .logical
        case .integer: .integer
        case .double: .double
        case .complex: .complex
        case .character: .character
        case .raw: .raw
        case .list: .list
        case .expression: .expression
        case .symbol: .symbol
        case .language: .language
        case .pairlist: .pairlist
        case .s4: .s4
        case .closure: .closure
        case .other(let t): .unknown(t)
        }
    }
    public var qapCount: Int { count }
    public func qapAttributes() -> [(name: String, value: RObjectView)] {
        let all = attributes
        return kind == .language || kind == .pairlist ? all.filter { $0.name != "names" } : all
    }
    public func qapElement(_ i: Int) -> RObjectView { element(i) }
    public func qapTag(_ i: Int) -> String? { tag(i) }
    public var qapSymbolName: String { symbolName }
    public var qapClosureParts: (formals: RObjectView, body: RObjectView)? { closureParts }
    public func withQAPInt32s<T>(_ body: (UnsafeBufferPointer<Int32>) throws -> T) throws -> T { try withInt32s(body) }
    public func withQAPDoubles<T>(_ body: (UnsafeBufferPointer<Double>) throws -> T) throws -> T { try withDoubles(body) }
    public func withQAPBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T { try withBytes(body) }
    public func withQAPString<T>(_ i: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T { try withString(i, body) }
    public var qapStableData: UnsafeRawBufferPointer? { stableData }
    public func withQAPStrings<T>(_ body: (UnsafeBufferPointer<UnsafePointer<UInt8>?>, UnsafeBufferPointer<Int32>) throws -> T) throws -> T {
        try withStrings(body)
    }
    public func qapStringSizes() throws -> (bytes: Int, missing: Int, startingWith0xFF: Int) { try stringSizes() }
}
