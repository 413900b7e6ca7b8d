extension RValue {
    /// A logical vector.
    public static func logical(_ values: [Bool?], names: [String]? = nil) -> RValue { named(.logical(values), names) }
    /// An integer vector.
    public static func integer(_ values: [Int32?], names: [String]? = nil) -> RValue { named(.integer(values), names) }
    /// A double vector.
    public static func double(_ values: [Double?], names: [String]? = nil) -> RValue { named(.double(values), names) }
    /// A character vector.
    public static func character(_ values: [String?], names: [String]? = nil) -> RValue { named(.character(values), names) }
    /// A complex vector.
    public static func complex(_ values: [RComplex?]) -> RValue { RValue(.complex(values)) }
    /// A raw vector.
    public static func raw(_ bytes: [UInt8]) -> RValue { RValue(.raw(bytes)) }
    /// A list, optionally named.
    public static func list(_ values: [RValue], names: [String]? = nil) -> RValue { named(.list(values), names) }

    /// A factor with the given levels; `codes` are 1-based level indices (nil = NA).
    public static func factor(codes: [Int32?], levels: [String]) -> RValue {
        RValue(.integer(codes), attributes: [
            RAttribute(name: "levels", value: .character(levels)),
            RAttribute(name: "class", value: .character(["factor"])),
        ])
    }

    /// A matrix from column-major data.
    public static func matrix(_ data: RPayload, rows: Int, columns: Int) -> RValue {
        RValue(data, attributes: [RAttribute(name: "dim", value: .integer([Int32(rows), Int32(columns)]))])
    }

    /// A data frame from named, equally long columns, with R's compact row names.
    public static func dataFrame(_ columns: [(name: String, value: RValue)]) -> RValue {
        let rows = columns.first?.value.count ?? 0
        return RValue(.list(columns.map(\.value)), attributes: [
            RAttribute(name: "names", value: .character(columns.map(\.name))),
            RAttribute(name: "class", value: .character(["data.frame"])),
            RAttribute(name: "row.names", value: .integer([nil, Int32(-rows)])),
        ])
    }

    private static func named(_ payload: RPayload, _ names: [String]?) -> RValue {
        guard let names else { return RValue(payload) }
        return RValue(payload, attributes: [RAttribute(name: "names", value: .character(names))])
    }
}

extension RValue {
    /// The elements as doubles when this is a numeric or logical vector (NA becomes `nil`).
    public var doubles: [Double?]? {
        switch payload {
        case .double(let v): v
        case .integer(let v): v.map { $0.map(Double.init) }
        case .logical(let v): v.map { $0.map { $0 ? 1 : 0 } }
        default: nil
        }
    }

    /// The elements as strings when this is a character vector, or a factor's labels.
    public var strings: [String?]? {
        switch payload {
        case .character(let v):
            return v
        case .integer(let codes) where classNames.contains("factor"):
            guard case .character(let levels)? = self[attribute: "levels"]?.payload else { return nil }
            return codes.map { code in
                guard let code, code >= 1, Int(code) <= levels.count else { return nil }
                return levels[Int(code) - 1]
            }
        default:
            return nil
        }
    }

    /// A data frame's columns by name, or `nil` when this is not a data frame.
    public var columns: [(name: String, value: RValue)]? {
        guard classNames.contains("data.frame"), case .list(let values) = payload, let names else { return nil }
        return zip(names, values).map { ($0.0 ?? "", $0.1) }
    }
}
