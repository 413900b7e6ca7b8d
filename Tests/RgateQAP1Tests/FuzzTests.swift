import NIOCore
import RgateModel
import RgateQAP1
import Testing

/// Hostile or broken input must give a QAP1Error (ERR_inv_par), never a crash, a hang or an
/// allocation sized by an untrusted length field.
@Suite("Fuzzing the decoders", .timeLimit(.minutes(1)))
struct FuzzTests {
    /// Decodes `bytes` as a SEXP and as a parameter list (and any DT_SEXP in it); whatever
    /// decodes must encode again with a consistent size and be stable from then on.
    static func exercise(_ bytes: [UInt8]) {
        let buf = buffer(bytes)
        do {
            let value = try QAP1SEXP.decode(buf)
            checkReencoding(value, from: bytes)
        } catch {
            #expect(error.status == .invalidParameter, "\(error) for \(dump(bytes))")
        }
        do {
            for parameter in try QAP1Parameter.parse(buf) {
                if case .sexp(let body) = parameter, let value = try? QAP1SEXP.decode(body) {
                    checkReencoding(value, from: bytes)
                }
            }
        } catch {
            #expect(error.status == .invalidParameter, "\(error) for \(dump(bytes))")
        }
    }

    static func checkReencoding(_ value: RValue, from bytes: [UInt8]) {
        let once = encoded(value)
        #expect(encodedSize(value) == once.count, "size mismatch re-encoding \(dump(bytes))")
        do {
            let normalised = try QAP1SEXP.decode(buffer(once))
            #expect(try QAP1SEXP.decode(buffer(encoded(normalised))) == normalised, "unstable re-encoding of \(dump(bytes))")
        } catch {
            Issue.record("our own encoding of a decoded value does not decode: \(error); input \(dump(bytes)), encoding \(dump(once))")
        }
    }

    @Test("Random bytes (20,000 strings of 0-200 bytes)")
    func randomBytes() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...200, using: &rng)
            Self.exercise((0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    /// Byte strings made of plausible headers (known types and flags, small lengths) and
    /// interesting bytes, which get much deeper into the decoder than uniform noise.
    @Test("Random header soup (20,000 strings)")
    func headerSoup() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let types: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 10, 16, 17, 18, 19, 20, 21, 22, 23, 26, 27, 32, 33, 34, 35, 36, 37, 38, 48, 63]
        let interesting: [UInt8] = [0, 0, 0, 1, 2, 3, 4, 8, 0x7f, 0x80, 0xa2, 0x07, 0xf0, 0xff]
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            let target = Int.random(in: 0...200, using: &rng)
            while bytes.count < target {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    var type = rng.pick(types)
                    if rng.chance(0.2) { type |= 0x80 }
                    let length = rng.chance(0.9) ? Int.random(in: 0...64, using: &rng) & ~(rng.chance(0.8) ? 3 : 0) : Int.random(in: 0...0xff_ffff, using: &rng)
                    bytes += rng.chance(0.2) ? largeHead(type, length) : head(type, length)
                case 2:
                    bytes += (0..<Int.random(in: 1...8, using: &rng)).map { _ in rng.pick(interesting) }
                default:
                    bytes += (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            Self.exercise(bytes)
        }
    }

    /// Mutations of every golden payload: bit flips, inserted and deleted bytes, and length
    /// fields set to huge values.
    @Test("Mutated golden encodings", arguments: Golden.all)
    func mutatedGoldens(golden: Golden) {
        var rng = SplitMix64(seed: UInt64(golden.bytes.count) &* 0x9E37 &+ UInt64(golden.r.utf8.count))
        for original in [golden.bytes, golden.sexp] {
            // Every aligned word as a header announcing a huge length, small and large form.
            for i in stride(from: 0, to: original.count - 3, by: 4) {
                for replacement in [[original[i], 0xff, 0xff, 0xff], [original[i] | 0x40, 0xff, 0xff, 0xff], [original[i], 0xfc, 0xff, 0x7f]] {
                    var m = original
                    m.replaceSubrange(i..<i + 4, with: replacement)
                    Self.exercise(m)
                }
                var m = original
                m[i] |= 0x40
                Self.exercise(m)
                if i + 8 <= original.count {
                    m.replaceSubrange(i + 4..<i + 8, with: [0xff, 0xff, 0xff, 0xff])
                    Self.exercise(m)
                }
            }
            // Every truncation.
            for n in 0..<original.count { Self.exercise(Array(original.prefix(n))) }
            // Random edits.
            for _ in 0..<300 {
                var m = original
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0 where !m.isEmpty:
                        m[Int.random(in: 0..<m.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                    case 1:
                        m.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...m.count, using: &rng))
                    case 2 where !m.isEmpty:
                        m.remove(at: Int.random(in: 0..<m.count, using: &rng))
                    default:
                        if !m.isEmpty { m[Int.random(in: 0..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                    }
                }
                Self.exercise(m)
            }
        }
    }

    @Test("100,000 nested headers hit the depth limit instead of the stack", arguments: [
        UInt8(0x10), 0x1a, 0x14, 0x15, 0x16, 0x90, 0xa0, 0x50,
    ])
    func deepNesting(type: UInt8) {
        let levels = 100_000
        var bytes: [UInt8] = []
        bytes.reserveCapacity(levels * 8)
        let headerSize = type & 0x40 != 0 ? 8 : 4
        for i in 0..<levels {
            let rest = (levels - 1 - i) * headerSize
            bytes += type & 0x40 != 0 ? largeHead(type & ~0x40, rest) : head(type, rest)
        }
        do {
            let value = try QAP1SEXP.decode(buffer(bytes))
            Issue.record("decoded \(value.payload.typeName)")
        } catch {
            #expect(error.status == .invalidParameter)
            #expect(error.message.contains("deeper"), "\(error)")
        }
        // Wrapped in a DT_SEXP parameter, as a client would send it.
        let parameters = try? QAP1Parameter.parse(buffer(head(0x0a, bytes.count) + bytes))
        guard case .sexp(let body)? = parameters?.first else { Issue.record("no DT_SEXP"); return }
        #expect(throws: QAP1Error.self) { try QAP1SEXP.decode(body) }
    }

    @Test("Nesting up to the limit round-trips; one level more is refused")
    func nestingLimit() throws {
        var value = RValue.integer([1])
        for _ in 0..<(QAP1SEXP.maximumDepth - 1) { value = .list([value]) }
        #expect(try QAP1SEXP.decode(buffer(encoded(value))) == value)
        #expect(throws: QAP1Error.self) { try QAP1SEXP.decode(buffer(encoded(.list([value])))) }
    }

    @Test("Random values round-trip exactly (3,000 values)")
    func randomValuesRoundTrip() throws {
        var generator = RandomValues(rng: SplitMix64(seed: 42))
        for i in 0..<3_000 {
            let value = generator.value()
            let bytes = encoded(value)
            #expect(encodedSize(value) == bytes.count, "value \(i)")
            #expect(bytes.count.isMultiple(of: 4), "value \(i): Rserve keeps everything 4-byte aligned")
            let decoded = try QAP1SEXP.decode(buffer(bytes))
            #expect(decoded == value, "value \(i): \(value)\nencoded \(dump(bytes))\ndecoded \(decoded)")
            if decoded != value { return }
            // And inside a DT_SEXP parameter.
            let parameters = try QAP1Parameter.parse(buffer(encodedParameter(value)))
            #expect(parameters == [.sexp(buffer(bytes))])
        }
    }
}
