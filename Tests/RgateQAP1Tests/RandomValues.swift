import RgateModel

/// Random R values in the subset of the model that the wire represents one to one:
/// no non-nil NA-patterned doubles, no `Int32.min` (it is NA), no NUL in strings, names of
/// calls and pairlists first and with at least one non-empty tag, no attributes on NULL.
struct RandomValues<G: RandomNumberGenerator> {
    var rng: G

    static var stringPool: [String] { ["", "a", "names", "héllo", "日本語", "🙂", "x y", "\u{1}", "ÿ", "NA", "\\", "\"q\"", "a\nb"] }

    mutating func string() -> String {
        if rng.chance(0.6) { return rng.pick(Self.stringPool) }
        let length = Int.random(in: 0...12, using: &rng)
        var s = ""
        for _ in 0..<length {
            let scalar: Unicode.Scalar
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: scalar = Unicode.Scalar(UInt8.random(in: 1...0x7f, using: &rng))
            case 1: scalar = Unicode.Scalar(UInt32.random(in: 0x80...0x7ff, using: &rng))!
            case 2: scalar = Unicode.Scalar(UInt32.random(in: 0xe000...0xfffd, using: &rng))!
            default: scalar = Unicode.Scalar(UInt32.random(in: 0x1_0000...0x10_ffff, using: &rng)) ?? "z"
            }
            s.unicodeScalars.append(scalar)
        }
        return s
    }

    mutating func double() -> Double {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: return rng.pick([.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.ulpOfOne])
        case 1:
            // Any bit pattern, signalling NaNs included, except R's NA.
            let d = Double(bitPattern: rng.next())
            return d.isNaN && UInt32(truncatingIfNeeded: d.bitPattern) == 1954 ? 1954 : d
        default: return Double.random(in: -1e6...1e6, using: &rng)
        }
    }

    mutating func count() -> Int { rng.chance(0.1) ? 0 : Int.random(in: 1...8, using: &rng) }

    /// A vector of random length whose elements are NA with probability 0.15.
    mutating func vector<T>(_ element: (inout Self) -> T) -> [T?] {
        var out: [T?] = []
        for _ in 0..<count() { out.append(rng.chance(0.15) ? nil : element(&self)) }
        return out
    }

    mutating func values(_ n: Int, depth: Int) -> [RValue] {
        var out: [RValue] = []
        for _ in 0..<n { out.append(value(depth: depth)) }
        return out
    }

    mutating func value(depth: Int = 0) -> RValue {
        let leafKinds = 9
        let kind = Int.random(in: 0..<(depth >= 3 ? leafKinds : leafKinds + 3), using: &rng)
        var payload: RPayload
        switch kind {
        case 0: return .null
        case 1: payload = .logical(vector { $0.rng.chance(0.5) })
        case 2: payload = .integer(vector { Int32.random(in: (Int32.min + 1)...Int32.max, using: &$0.rng) })
        case 3: payload = .double(vector { $0.double() })
        case 4: payload = .complex(vector { RComplex($0.double(), $0.double()) })
        case 5: payload = .character(vector { $0.string() })
        case 6:
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...9, using: &rng) { bytes.append(UInt8.random(in: 0...255, using: &rng)) }
            payload = .raw(bytes)
        case 7: return RValue(.symbol(rng.chance(0.2) ? "" : string()))
        case 8:
            let type = rng.pick(["environment", "builtin", "special", "externalptr", "closure", "S4", "weakref", "type17"])
            payload = .opaque(type: type, description: type == "S4" ? "<S4 object>" : "<\(type)>")
        case 9: payload = .list(values(count(), depth: depth + 1))
        case 10:
            let function = rng.chance(0.7) ? RValue(.symbol(string())) : value(depth: depth + 1)
            payload = .language([function] + values(Int.random(in: 0...4, using: &rng), depth: depth + 1))
        default: payload = .pairlist(values(count(), depth: depth + 1))
        }
        var attributes: [RAttribute] = []
        let n = payload.count
        switch payload {
        case .language, .pairlist:
            if n > 0 && rng.chance(0.5) {
                var tags: [String] = []
                for _ in 0..<n { tags.append(rng.chance(0.4) ? "" : string()) }
                if !tags.contains(where: { !$0.isEmpty }) { tags[Int.random(in: 0..<n, using: &rng)] = "tag" }
                attributes.append(RAttribute(name: "names", value: .character(tags)))
            }
        case .opaque, .symbol:
            break
        default:
            if rng.chance(0.3) {
                var names: [String?] = []
                for _ in 0..<n { names.append(rng.chance(0.15) ? nil : string()) }
                attributes.append(RAttribute(name: "names", value: .character(names)))
            }
        }
        if depth < 3 && rng.chance(0.2) {
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let name = rng.pick(["class", "dim", "levels", "comment", "tsp", "x", "é", "row.names"])
                attributes.append(RAttribute(name: name, value: value(depth: depth + 2)))
            }
        }
        return RValue(payload, attributes: attributes)
    }
}
