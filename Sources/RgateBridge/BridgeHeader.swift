public import NIOCore

/// The fixed 16-byte header in front of every data-plane frame (little-endian):
///
/// ```
/// offset 0  u8   version (1)
///        1  u8   frame type (BridgeFrameType)
///        2  u16  reserved (0)
///        4  u32  request id (a reply carries its request's)
///        8  u64  payload length
/// ```
public struct BridgeHeader: Sendable, Hashable {
    /// The only version this codec speaks.
    public static let version: UInt8 = 1
    /// Bytes in a header.
    public static let size = 16

    /// What the frame carries.
    public var type: BridgeFrameType
    /// The request this frame is (or answers).
    public var requestID: UInt32
    /// Bytes of payload after the header.
    public var length: UInt64

    /// Creates a header.
    public init(type: BridgeFrameType, requestID: UInt32, length: UInt64) {
        self.type = type
        self.requestID = requestID
        self.length = length
    }

    /// Writes the header.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.version)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(UInt16(0), endianness: .little)
        buffer.writeInteger(requestID, endianness: .little)
        buffer.writeInteger(length, endianness: .little)
    }

    /// Reads a header at the buffer's reader index without consuming it; nil when fewer than
    /// ``size`` bytes are buffered.
    /// - Throws: ``BridgeError`` for an unknown version or non-zero reserved bytes.
    public static func peek(_ buffer: ByteBuffer) throws(BridgeError) -> BridgeHeader? {
        guard buffer.readableBytes >= size else { return nil }
        let i = buffer.readerIndex
        let version = buffer.getInteger(at: i, as: UInt8.self)!
        guard version == Self.version else {
            throw BridgeError(.badFrame, "unknown data-plane version \(version)", offset: 0)
        }
        guard buffer.getInteger(at: i + 2, endianness: .little, as: UInt16.self)! == 0 else {
            throw BridgeError(.badFrame, "reserved header bytes are not zero", offset: 2)
        }
        return BridgeHeader(
            type: BridgeFrameType(rawValue: buffer.getInteger(at: i + 1, as: UInt8.self)!),
            requestID: buffer.getInteger(at: i + 4, endianness: .little, as: UInt32.self)!,
            length: buffer.getInteger(at: i + 8, endianness: .little, as: UInt64.self)!)
    }
}
