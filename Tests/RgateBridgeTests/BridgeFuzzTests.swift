import NIOCore
import RgateBridge
import Testing

/// Random and mutated frames must give a ``BridgeError`` (or a frame), never a crash, a hang or
/// an allocation sized by an untrusted length.
@Suite("Fuzzing the data-plane decoder", .timeLimit(.minutes(1)))
struct BridgeFuzzTests {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Decodes everything in `bytes` on `side`; a decoded frame must encode to the bytes it came from.
    static func exercise(_ bytes: [UInt8], side: BridgeFrameDecoder.Side) {
        var decoder = BridgeFrameDecoder(side: side, maximumPayloadBytes: 1 << 16)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            while true {
                let before = buffer.readerIndex
                guard let frame = try decoder.decodeFrame(buffer: &buffer) else { break }
                let consumed = Array(bytes[before..<buffer.readerIndex])
                #expect(Array(frame.encoded.readableBytesView) == consumed, "re-encoding differs for \(consumed)")
            }
        } catch {
            #expect((error as Any) is BridgeError)
        }
    }

    @Test("Random bytes behind a valid header (20,000 frames per side)")
    func randomPayloads() {
        var rng = SplitMix64(state: 0xB21D6E)
        let types: [UInt8] = [1, 2, 3, 4, 5, 6, 0x81, 0, 7, 0x80, 0xff]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...120, using: &rng)
            var frame = ByteBuffer()
            BridgeHeader(type: BridgeFrameType(rawValue: types.randomElement(using: &rng)!), requestID: 1, length: UInt64(length)).encode(into: &frame)
            frame.writeBytes((0..<length).map { _ in UInt8.random(in: 0...3, using: &rng) == 0 ? 0xff : UInt8.random(in: 0...4, using: &rng) })
            let bytes = Array(frame.readableBytesView)
            Self.exercise(bytes, side: .session)
            Self.exercise(bytes, side: .supervisor)
        }
    }

    @Test("Mutations of valid frames (bytes flipped, cut, inserted)")
    func mutations() {
        var rng = SplitMix64(state: 0xF00D)
        let frames = Samples.frames.map { Array($0.encoded.readableBytesView) }
        for _ in 0..<20_000 {
            var bytes = frames.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0...3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.removeSubrange(i...)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                default: bytes[i] ^= 0x80
                }
                if bytes.isEmpty { break }
            }
            Self.exercise(bytes, side: .session)
            Self.exercise(bytes, side: .supervisor)
        }
    }

    @Test("Pure noise")
    func noise() {
        var rng = SplitMix64(state: 0x5EED)
        for _ in 0..<10_000 {
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            Self.exercise(bytes, side: .session)
            Self.exercise(bytes, side: .supervisor)
        }
    }
}
