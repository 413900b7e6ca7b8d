import RgateJSON
import RgateModel
import Testing

/// Timing of the hot paths: 10^6 elements and a limit in release builds (`swift test -c release
/// --filter RJSONPerformanceTests`); debug builds, unoptimised, time 10^5 and only print.
@Suite("rjson speed")
struct RJSONPerformanceTests {
    #if DEBUG
    static let n = 100_000
    static let encodeLimit = Duration.seconds(1000)
    #else
    static let n = 1_000_000
    static let encodeLimit = Duration.milliseconds(100)
    #endif

    static func best(of runs: Int, _ body: () throws -> Void) rethrows -> Duration {
        let clock = ContinuousClock()
        var best = Duration.seconds(1000)
        for _ in 0..<runs { best = min(best, try clock.measure(body)) }
        return best
    }

    @Test func encodesAMillionDoublesQuickly() throws {
        var g = SplitMix64(seed: 7)
        let value = RValue.double((0..<Self.n).map { _ in .randomBits(using: &g) })
        var bytes: [UInt8] = []
        let encode = try Self.best(of: 5) { bytes = try RJSON.encode(value) }
        let decode = try Self.best(of: 3) { _ = try RJSON.decode(bytes) }
        print("rjson: \(Self.n) random doubles: encode \(encode), decode \(decode), \(bytes.count) bytes")
        #expect(encode < Self.encodeLimit)
        let short = RValue.double((0..<Self.n).map { Double($0) / 100 })
        let encodeShort = try Self.best(of: 5) { bytes = try RJSON.encode(short) }
        let decodeShort = try Self.best(of: 3) { _ = try RJSON.decode(bytes) }
        print("rjson: \(Self.n) two-decimal doubles: encode \(encodeShort), decode \(decodeShort), \(bytes.count) bytes")
        #expect(encodeShort < Self.encodeLimit)
        let integers = RValue.integer((0..<Self.n).map { Int32($0) - 500_000 })
        let encodeIntegers = try Self.best(of: 5) { bytes = try RJSON.encode(integers) }
        let decodeIntegers = try Self.best(of: 3) { _ = try RJSON.decode(bytes) }
        print("rjson: \(Self.n) integers: encode \(encodeIntegers), decode \(decodeIntegers)")
        let strings = RValue.character((0..<Self.n / 5).map { "value \($0)" })
        let encodeStrings = try Self.best(of: 3) { bytes = try RJSON.encode(strings) }
        let decodeStrings = try Self.best(of: 3) { _ = try RJSON.decode(bytes) }
        print("rjson: \(Self.n / 5) strings: encode \(encodeStrings), decode \(decodeStrings)")
    }
}
