import NIOCore
import RgateEngine
import RgateQAP1

/// R serialization (RSclient's RS.eval / RS.assign).
extension QAP1Session {
    func serialized(_ command: QAP1Command, _ payload: ByteBuffer) -> Bool {
        guard command == .serEval || command == .serEEval || command == .serAssign else {
            return respond(error: .invalidCommand)
        }
        let raw: RObject
        do { raw = try engine.makeObject(.raw(Array(payload.readableBytesView))) } catch { return respond(error: .outOfMemory) }
        // Rserve hangs the client when unserialize fails; rgate answers with an error.
        guard case .success(let object) = engine.callBase("unserialize", [raw]) else { return respond(error: .rError) }
        if command == .serAssign {
            guard case .success(let one) = engine.makeObjectResult(.integer([1])),
                  case .success(let two) = engine.makeObjectResult(.integer([2])),
                  case .success(let name) = engine.callBase("[[", [object, one]),
                  case .success(let value) = engine.callBase("[[", [object, two]),
                  case .success(let nameText) = engine.callBase("as.character", [name]),
                  let target = try? engine.value(of: nameText).strings?.first ?? nil
            else { return respond(error: .rError) }
            do { try engine.assign(target, object: value) } catch { return respond(error: .rError) }
            return respondOK()
        }
        var (evaluation, result) = withHardLimit { engine.evaluate(object: object, options: options) }
        if command == .serEEval, evaluation.error == nil, let first = result {
            (evaluation, result) = withHardLimit { engine.evaluate(object: first, options: options) }
        }
        // Rserve answers a failed serEval with status 1 (RSclient shows "status code 0x1").
        guard evaluation.error == nil, let result else { return respond(error: QAP1Status(rawValue: 1)) }
        guard case .success(let null) = engine.makeObjectResult(.null),
              case .success(let bytes) = engine.callBase("serialize", [result, null]) else { return respond(error: .rError) }
        let payload = bytes.withRawBytes { ByteBuffer(bytes: $0) } ?? ByteBuffer.fresh(capacity: 1)
        return respond(.responseOK, payload: payload)
    }
}
