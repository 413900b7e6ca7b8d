import RgateJSON
import RgateModel
import Testing

/// Random and mutated bodies must give a value or an ``RJSONError``: never a trap, a hang or
/// unbounded recursion. A body that decodes must re-encode (when it is expressible) to bytes
/// that decode to the same value.
@Suite("rjson decoder fuzzing")
struct RJSONFuzzTests {
    static let seeds: [RValue] = [
        .null, .logical([true, nil]), .integer([1, nil, -5], names: ["a", "b", "c"]),
        .double([1.5, nil, .nan, .infinity, -0.0, 1e-300]), .complex([RComplex(1, -2), nil]),
        .character(["a", nil, "é\n", "NA"]), .raw([0, 255, 7]),
        .dataFrame([("x", .integer([1, 2])), ("y", .character(["p", nil]))]),
        .factor(codes: [1, nil], levels: ["u"]),
        RValue(.language([RValue(.symbol("f")), RValue(.symbol("x")), .double([1])]), attributes: [RAttribute(name: "names", value: .character(["", "", "y"]))]),
        RValue(.symbol("s")),
        .list([.list([.null, .list([.integer([1])])]), RValue(.pairlist([.double([2])]))]),
    ]

    static let alphabet = Array(#"{}[]:,"\ntrufalsenNAI0123456789.-+eE typeattributesvalue\u00"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]

    func check(_ bytes: [UInt8]) -> Bool {
        do {
            let value = try RJSON.decode(bytes)
            guard let again = try? RJSON.encode(value) else { return true }
            let back = try RJSON.decode(again)
            #expect(back == value, "re-encoding changed \(String(decoding: bytes.prefix(200), as: UTF8.self))")
            return true
        } catch {
            return false
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func randomAndMutatedInputsNeverCrash() throws {
        var g = SplitMix64(seed: 0xF022)
        let valid = try Self.seeds.map { try RJSON.encode($0) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(60))
        var cases = 0
        var decoded = 0
        while cases < 20_000 && clock.now < deadline {
            var bytes: [UInt8]
            switch cases % 4 {
            case 0:
                // Random bytes from a JSON-ish alphabet.
                bytes = (0..<Int.random(in: 0...80, using: &g)).map { _ in Self.alphabet.randomElement(using: &g)! }
            case 1:
                // A valid body with a few random byte changes.
                bytes = valid.randomElement(using: &g)!
                for _ in 0..<Int.random(in: 1...4, using: &g) {
                    let i = Int.random(in: 0..<bytes.count, using: &g)
                    bytes[i] = Bool.random(using: &g) ? Self.alphabet.randomElement(using: &g)! : UInt8.random(in: 0...255, using: &g)
                }
            case 2:
                // A valid body truncated, or with a slice inserted or deleted.
                bytes = valid.randomElement(using: &g)!
                let i = Int.random(in: 0...bytes.count, using: &g)
                switch Int.random(in: 0..<3, using: &g) {
                case 0: bytes = Array(bytes[..<i])
                case 1:
                    let other = valid.randomElement(using: &g)!
                    let j = Int.random(in: 0...other.count, using: &g)
                    bytes.insert(contentsOf: other[j..<min(other.count, j + Int.random(in: 1...40, using: &g))], at: i)
                default: bytes.removeSubrange(i..<min(bytes.count, i + Int.random(in: 1...10, using: &g)))
                }
            default:
                // Two valid bodies spliced.
                let a = valid.randomElement(using: &g)!, b = valid.randomElement(using: &g)!
                bytes = Array(a[..<Int.random(in: 0...a.count, using: &g)]) + Array(b[Int.random(in: 0...b.count, using: &g)...])
            }
            if check(bytes) { decoded += 1 }
            cases += 1
        }
        #expect(cases >= 5_000, "only \(cases) cases ran before the deadline")
        #expect(decoded > 0, "no mutated body decoded at all: the mutations are too coarse")
        #expect(decoded < cases)
    }
}
