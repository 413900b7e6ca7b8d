import NIOCore
import RgateIPC
import RgateQAP1
import RgateText

/// What the supervisor knows of one wire protocol, in one place: how its clients are told that
/// the server is busy or that their session was lost, and its request size limit. The
/// supervisor's code asks the descriptor instead of switching on the protocol.
struct FrontEnd: Sendable {
    let wireProtocol: WireProtocol
    /// The bytes that tell a client the server cannot take it (nil: the connection just closes).
    let busyReply: @Sendable (_ message: String) -> ByteBuffer?
    /// The bytes that tell a client its session process died (nil: nothing is written).
    let lostReply: @Sendable (_ message: String) -> ByteBuffer?
    /// The largest request the protocol's sessions accept.
    let maxRequestBytes: @Sendable (ServerConfiguration) -> Int
    /// Whether QAP1's in-band `CMD_switch "TLS"` applies.
    let offersTLSSwitch: Bool

    /// The seed's text protocol: replies are console text.
    static let text = FrontEnd(
        wireProtocol: .text,
        busyReply: { message in
            var buffer = ByteBuffer()
            TextReply(body: ByteBuffer(string: message)).encode(into: &buffer)
            return buffer
        },
        lostReply: { message in
            var buffer = ByteBuffer()
            TextReply(body: ByteBuffer(string: message)).encode(into: &buffer)
            return buffer
        },
        maxRequestBytes: { $0.maxRequestBytes }, offersTLSSwitch: false)

    /// Rserve's QAP1: the identification first, then an error status.
    static let qap1 = FrontEnd(
        wireProtocol: .qap1,
        busyReply: { _ in
            // A QAP1 client expects the 32-byte identification first; say "busy" after it.
            var buffer = ByteBuffer(bytes: QAP1Identification.make())
            QAP1Message(command: .error(.sessionBusy)).encode(into: &buffer)
            return buffer
        },
        lostReply: { _ in
            // An R-error status; the client's follow-up (e.g. geterrmessage()) finds the connection closed.
            var buffer = ByteBuffer()
            QAP1Message(command: .error(.rError)).encode(into: &buffer)
            return buffer
        },
        maxRequestBytes: { $0.maxQAPMessageBytes }, offersTLSSwitch: true)

    /// QAP1 in object-capability mode: a busy server just closes (as Rserve's OCAP mode does).
    static let ocap = FrontEnd(
        wireProtocol: .ocap, busyReply: { _ in nil }, lostReply: FrontEnd.qap1.lostReply,
        maxRequestBytes: { $0.maxQAPMessageBytes }, offersTLSSwitch: false)

    /// The data plane: its owner is told in Swift (``SessionError``), never in bytes.
    static let bridge = FrontEnd(
        wireProtocol: .bridge, busyReply: { _ in nil }, lostReply: { _ in nil },
        maxRequestBytes: { $0.maxRequestBytes }, offersTLSSwitch: false)

    /// The descriptor of `wireProtocol`.
    static func of(_ wireProtocol: WireProtocol) -> FrontEnd {
        switch wireProtocol {
        case .text: .text
        case .qap1: .qap1
        case .ocap: .ocap
        default: .bridge
        }
    }
}
