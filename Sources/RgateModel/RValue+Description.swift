extension RValue: CustomStringConvertible {
    /// A compact, R-like rendering (`[1] 1.5 NA`, `$a` for list elements); for humans, not parsing.
    public var description: String { render(prefix: "") }

    private func render(prefix: String) -> String {
        func atoms(_ items: [String]) -> String {
            guard !items.isEmpty else { return "\(payload.typeName)(0)" }
            if let names, names.count == items.count {
                return zip(names, items).map { "\($0 ?? "<NA>")=\($1)" }.joined(separator: " ")
            }
            return "[1] " + items.joined(separator: " ")
        }
        var text: String
        switch payload {
        case .null: text = "NULL"
        case .logical(let v): text = atoms(v.map { $0.map { $0 ? "TRUE" : "FALSE" } ?? "NA" })
        case .integer(let v):
            if let labels = strings, classNames.contains("factor") {
                text = "[1] " + labels.map { $0 ?? "<NA>" }.joined(separator: " ")
            } else {
                text = atoms(v.map { $0.map(String.init) ?? "NA" })
            }
        case .double(let v): text = atoms(v.map { $0.map(Self.format) ?? "NA" })
        case .complex(let v): text = atoms(v.map { $0.map { "\(Self.format($0.real))\($0.imaginary < 0 ? "-" : "+")\(Self.format(abs($0.imaginary)))i" } ?? "NA" })
        case .character(let v): text = atoms(v.map { $0.map { "\"\($0)\"" } ?? "NA" })
        case .raw(let v): text = atoms(v.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) })
        case .list(let v):
            let names = self.names
            text = v.enumerated().map { i, e in
                let label = names.flatMap { i < $0.count ? $0[i] : nil }.flatMap { $0.isEmpty ? nil : "$\($0)" } ?? "[[\(i + 1)]]"
                return "\(prefix)\(label)\n" + e.render(prefix: prefix + label)
            }.joined(separator: "\n")
            if v.isEmpty { text = "list()" }
        case .symbol(let name): text = name
        case .language(let v): text = "<call: \(v.first?.description ?? "")(...)>"
        case .pairlist(let v): text = "<pairlist of \(v.count)>"
        case .opaque(let type, let d): text = "<\(type)> \(d)"
        }
        return text
    }

    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Inf" : "Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }
}
