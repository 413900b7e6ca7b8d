import NIOCore
import RgateEngine
import RgateModel
import RgateQAP1

/// Out-of-band messages (R's `self.oobSend`/`self.oobMessage`) during an evaluation.
extension QAP1Session {
    func outOfBand(_ kind: OutOfBandKind, _ object: RObject, _ code: Int32) -> Result<RObject?, EngineError> {
        let base: QAP1Command = kind == .send ? .oobSend : .oobMessage
        let command = QAP1Command(rawValue: base.rawValue | (UInt32(bitPattern: code) & 0xfff))
        var payload = ByteBuffer.fresh()
        do {
            // Straight from R's memory, like results.
            try QAP1SEXP.encode(source: object.view, into: &payload) { size, buffer in
                QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: size, into: &buffer)
            }
        } catch {
            return .failure(EngineError("the out-of-band value could not be encoded: \(error)"))
        }
        guard respond(command, payload: payload) else { return .failure(EngineError("the client connection is gone")) }
        guard kind == .message else { return .success(nil) }
        // The client answers an OOB message with one message of its own (any command code).
        guard case .frame(.message(let reply)) = nextFrame() else {
            return .failure(EngineError("the client did not answer the out-of-band message"))
        }
        let answer: RValue
        do {
            switch try QAP1Parameter.parse(reply.payload).first {
            case .sexp(let body)?: answer = try QAP1SEXP.decode(body)
            case .string(let bytes)?: answer = .character([String(decoding: bytes, as: UTF8.self)])
            default: answer = .null
            }
        } catch {
            return .failure(EngineError("the client's answer could not be decoded: \(error)"))
        }
        do { return .success(try engine.makeObject(answer)) } catch { return .failure(error) }
    }
}
