public import NIOCore

/// How a value travels on the data plane: encoded in the session, straight from R's memory,
/// in the format the request asked for (or, for values sent to the session, the format they
/// are in).
public struct BridgeValueFormat: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// No value wanted (a request that only needs the transcript or the status).
    public static let none = BridgeValueFormat(rawValue: 0)
    /// Rserve's QAP1 SEXP encoding (`XT_*`, as in a `DT_SEXP` parameter, without its header).
    public static let qap1 = BridgeValueFormat(rawValue: 1)
    /// R serialization (what `serialize(x, NULL)` returns: the bytes of an uncompressed RDS file).
    public static let rds = BridgeValueFormat(rawValue: 2)
    /// The text R's `print` shows (UTF-8), as the console would print the value.
    public static let print = BridgeValueFormat(rawValue: 3)
    /// Lossless typed JSON (the layout of `jsonlite::serializeJSON`); encoded by the HTTP front
    /// end's mapping, which a session without it refuses with `unsupported-format`.
    public static let rjson = BridgeValueFormat(rawValue: 4)
    /// jsonlite's friendly JSON (`toJSON`); as for ``rjson``.
    public static let json = BridgeValueFormat(rawValue: 5)

    /// The format's name, as HTTP query parameters and logs write it.
    public var description: String {
        switch self {
        case .none: "none"
        case .qap1: "qap1"
        case .rds: "rds"
        case .print: "print"
        case .rjson: "rjson"
        case .json: "json"
        default: "format \(rawValue)"
        }
    }

    /// The format with this name (`qap1`, `rds`, `print`, `rjson`, `json`, `none`).
    public init?(name: String) {
        switch name {
        case "none": self = .none
        case "qap1": self = .qap1
        case "rds": self = .rds
        case "print": self = .print
        case "rjson": self = .rjson
        case "json": self = .json
        default: return nil
        }
    }
}

/// A value's bytes in a named format (a slice of the frame that carried it: not copied).
public struct BridgeValue: Sendable, Hashable {
    /// The encoding of ``bytes``.
    public var format: BridgeValueFormat
    /// The encoded value.
    public var bytes: ByteBuffer

    /// Creates an encoded value.
    public init(format: BridgeValueFormat, bytes: ByteBuffer) {
        self.format = format
        self.bytes = bytes
    }
}
