/// The kind of a data-plane frame (``BridgeFrame``): a request from the supervisor or the
/// session's reply. A `RawRepresentable` constant, so an unknown kind from a peer is still
/// representable and can be refused with an error.
public struct BridgeFrameType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Supervisor → session: evaluate code like the console (``BridgeRequest/evaluate``).
    public static let evaluate = BridgeFrameType(rawValue: 1)
    /// Supervisor → session: call a function with data arguments (``BridgeRequest/call``).
    public static let call = BridgeFrameType(rawValue: 2)
    /// Supervisor → session: bind a value to a name (``BridgeRequest/assign``).
    public static let assign = BridgeFrameType(rawValue: 3)
    /// Supervisor → session: encode a global variable's value (``BridgeRequest/fetch``).
    public static let fetch = BridgeFrameType(rawValue: 4)
    /// Supervisor → session: the global environment's objects (``BridgeRequest/listObjects``).
    public static let listObjects = BridgeFrameType(rawValue: 5)
    /// Supervisor → session: stop the running request (no reply of its own: the running
    /// request's reply says `cancelled`; a cancel that arrives while idle is ignored).
    public static let cancel = BridgeFrameType(rawValue: 6)
    /// Session → supervisor: the answer to the request with the same id.
    public static let reply = BridgeFrameType(rawValue: 0x81)

    /// Whether frames of this kind travel from the supervisor to the session.
    public var isRequest: Bool { rawValue >= 1 && rawValue <= 6 }

    public var description: String {
        switch self {
        case .evaluate: "evaluate"
        case .call: "call"
        case .assign: "assign"
        case .fetch: "fetch"
        case .listObjects: "listObjects"
        case .cancel: "cancel"
        case .reply: "reply"
        default: "frame type \(rawValue)"
        }
    }
}
