public import NIOCore

/// Writes the fields of a data-plane payload (little-endian; strings and byte fields carry a
/// u32 length, values a u64 length).
struct BridgePayloadWriter {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    mutating func u8(_ v: UInt8) { buffer.writeInteger(v) }
    mutating func bool(_ v: Bool) { buffer.writeInteger(v ? UInt8(1) : 0) }
    mutating func u32(_ v: UInt32) { buffer.writeInteger(v, endianness: .little) }
    mutating func u64(_ v: UInt64) { buffer.writeInteger(v, endianness: .little) }
    mutating func count(_ n: Int) { u32(UInt32(n)) }
    mutating func string(_ s: String) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0), endianness: .little)
        let n = buffer.writeString(s)
        buffer.setInteger(UInt32(n), at: lengthIndex, endianness: .little)
    }
    mutating func bytes(_ b: [UInt8]) { u32(UInt32(b.count)); buffer.writeBytes(b) }
    mutating func optionalString(_ s: String?) {
        bool(s != nil)
        if let s { string(s) }
    }
    mutating func value(_ v: BridgeValue) {
        u8(v.format.rawValue)
        u64(UInt64(v.bytes.readableBytes))
        buffer.writeImmutableBuffer(v.bytes)
    }
    mutating func optionalValue(_ v: BridgeValue?) {
        bool(v != nil)
        if let v { value(v) }
    }
}

/// Reads the fields of a data-plane payload; every read is bounds-checked and every count is
/// checked against the bytes left before anything is allocated for it.
struct BridgePayloadReader {
    var buffer: ByteBuffer
    let start: Int

    init(_ buffer: ByteBuffer) {
        self.buffer = buffer
        start = buffer.readerIndex
    }

    var offset: Int { buffer.readerIndex - start }

    func fail(_ what: String) -> BridgeError {
        BridgeError(.badPayload, what, offset: offset)
    }

    mutating func u8() throws(BridgeError) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw fail("payload ends inside a field") }
        return v
    }
    mutating func bool() throws(BridgeError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let v: throw fail("\(v) is not a boolean")
        }
    }
    mutating func u32() throws(BridgeError) -> UInt32 {
        guard let v = buffer.readInteger(endianness: .little, as: UInt32.self) else { throw fail("payload ends inside a field") }
        return v
    }
    mutating func u64() throws(BridgeError) -> UInt64 {
        guard let v = buffer.readInteger(endianness: .little, as: UInt64.self) else { throw fail("payload ends inside a field") }
        return v
    }
    /// A count of items each at least `minimumItemBytes` long: refused if the rest cannot hold them.
    mutating func count(minimumItemBytes: Int) throws(BridgeError) -> Int {
        let n = Int(try u32())
        guard n <= buffer.readableBytes / max(minimumItemBytes, 1) else { throw fail("a count of \(n) items does not fit the payload") }
        return n
    }
    mutating func slice(_ n: UInt64) throws(BridgeError) -> ByteBuffer {
        guard n <= UInt64(buffer.readableBytes), let s = buffer.readSlice(length: Int(n)) else {
            throw fail("a field of \(n) bytes does not fit the payload")
        }
        return s
    }
    mutating func string() throws(BridgeError) -> String {
        let n = try u32()
        let s = try slice(UInt64(n))
        guard let text = String(validating: s.readableBytesView, as: UTF8.self) else {
            throw BridgeError(.badPayload, "a string is not valid UTF-8", offset: offset - Int(n))
        }
        return text
    }
    mutating func bytes() throws(BridgeError) -> [UInt8] {
        Array(try slice(UInt64(try u32())).readableBytesView)
    }
    mutating func optionalString() throws(BridgeError) -> String? {
        try bool() ? try string() : nil
    }
    mutating func value() throws(BridgeError) -> BridgeValue {
        let format = BridgeValueFormat(rawValue: try u8())
        return BridgeValue(format: format, bytes: try slice(try u64()))
    }
    mutating func optionalValue() throws(BridgeError) -> BridgeValue? {
        try bool() ? try value() : nil
    }
    func finish() throws(BridgeError) {
        guard buffer.readableBytes == 0 else { throw fail("\(buffer.readableBytes) bytes left after the payload") }
    }
}
