/// An R object as a Swift value: a vector of one of R's basic types plus its attributes.
///
/// NA is `nil` in every optional element type. Doubles keep NaN and NA apart: NA is `nil`,
/// NaN is `.nan`. Attributes keep R's order, so `names`, `dim`, `dimnames`, `class`, `levels`
/// and `row.names` (including the compact `c(NA, -n)` form) round-trip; factors, matrices,
/// data frames and dates are ordinary vectors with attributes.
public struct RValue: Sendable {
    /// The vector data (or an opaque description for objects without a data model).
    public var payload: RPayload
    /// Attributes in R's order.
    public var attributes: [RAttribute]

    /// Creates a value from its payload and attributes.
    public init(_ payload: RPayload, attributes: [RAttribute] = []) {
        self.payload = payload
        self.attributes = attributes
    }

    /// R's `NULL`.
    public static let null = RValue(.null)

    /// The attribute named `name`, if present.
    public subscript(attribute name: String) -> RValue? {
        get { attributes.first { $0.name == name }?.value }
        set {
            if let index = attributes.firstIndex(where: { $0.name == name }) {
                if let newValue { attributes[index].value = newValue } else { attributes.remove(at: index) }
            } else if let newValue {
                attributes.append(RAttribute(name: name, value: newValue))
            }
        }
    }

    /// The `names` attribute as Swift strings (NA names become `nil`).
    public var names: [String?]? {
        if case .character(let names)? = self[attribute: "names"]?.payload { return names }
        return nil
    }

    /// The `class` attribute.
    public var classNames: [String] {
        if case .character(let names)? = self[attribute: "class"]?.payload { return names.compactMap { $0 } }
        return []
    }

    /// The number of elements (0 for `NULL` and opaque objects).
    public var count: Int { payload.count }
}

/// One named attribute of an ``RValue``.
public struct RAttribute: Sendable, Hashable {
    /// The attribute's name, e.g. `"names"` or `"dim"`.
    public var name: String
    /// Its value.
    public var value: RValue

    /// Creates an attribute.
    public init(name: String, value: RValue) {
        self.name = name
        self.value = value
    }
}

/// A complex number, as R stores it.
public struct RComplex: Sendable, Hashable {
    /// The real part.
    public var real: Double
    /// The imaginary part.
    public var imaginary: Double

    /// Creates a complex number.
    public init(_ real: Double, _ imaginary: Double) {
        self.real = real
        self.imaginary = imaginary
    }

    public static func == (lhs: RComplex, rhs: RComplex) -> Bool {
        lhs.real.bitPattern == rhs.real.bitPattern && lhs.imaginary.bitPattern == rhs.imaginary.bitPattern
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(real.bitPattern)
        hasher.combine(imaginary.bitPattern)
    }
}

/// The data of an ``RValue``. `nil` elements are NA.
public enum RPayload: Sendable {
    /// `NULL`.
    case null
    /// A logical vector.
    case logical([Bool?])
    /// An integer vector (32-bit, as in R).
    case integer([Int32?])
    /// A double vector; NaN stays NaN, NA is `nil`.
    case double([Double?])
    /// A complex vector.
    case complex([RComplex?])
    /// A character vector (UTF-8).
    case character([String?])
    /// A raw vector.
    case raw([UInt8])
    /// A generic vector (R `list`).
    case list([RValue])
    /// A symbol (R `name`), e.g. `quote(x)`.
    case symbol(String)
    /// A call (R `language`): the function first, then the arguments; argument tags are the
    /// `names` attribute, as `names(quote(f(x, y = 1)))` shows them.
    case language([RValue])
    /// A pairlist; tags are the `names` attribute.
    case pairlist([RValue])
    /// An object without a data model here (closure, environment, language, ...): its R type
    /// name and a one-line description (a deparse, where R can make one).
    case opaque(type: String, description: String)

    /// The number of elements.
    public var count: Int {
        switch self {
        case .null, .opaque: 0
        case .logical(let v): v.count
        case .integer(let v): v.count
        case .double(let v): v.count
        case .complex(let v): v.count
        case .character(let v): v.count
        case .raw(let v): v.count
        case .list(let v), .language(let v), .pairlist(let v): v.count
        case .symbol: 1
        }
    }

    /// R's name for the type, as `typeof()` reports it.
    public var typeName: String {
        switch self {
        case .null: "NULL"
        case .logical: "logical"
        case .integer: "integer"
        case .double: "double"
        case .complex: "complex"
        case .character: "character"
        case .raw: "raw"
        case .list: "list"
        case .symbol: "symbol"
        case .language: "language"
        case .pairlist: "pairlist"
        case .opaque(let type, _): type
        }
    }
}

extension RPayload: Hashable {
    // Doubles compare by bit pattern so that NaN equals NaN: a round trip must be exact.
    public static func == (lhs: RPayload, rhs: RPayload) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.logical(let a), .logical(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.double(let a), .double(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0?.bitPattern == $1?.bitPattern }
        case (.complex(let a), .complex(let b)): a == b
        case (.character(let a), .character(let b)): a == b
        case (.raw(let a), .raw(let b)): a == b
        case (.list(let a), .list(let b)), (.language(let a), .language(let b)), (.pairlist(let a), .pairlist(let b)): a == b
        case (.symbol(let a), .symbol(let b)): a == b
        case (.opaque(let t1, let d1), .opaque(let t2, let d2)): t1 == t2 && d1 == d2
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(typeName)
        hasher.combine(count)
    }
}

extension RValue: Hashable {}
