import NIOCore
import RgateEngine
import RgateModel
import RgateQAP1

/// `eval`, `voidEval`, `setSEXP` and `assignSEXP`, under the session's limits and records.
extension QAP1Session {
    func evaluate(_ parameters: [QAP1Parameter], returnValue: Bool) -> Bool {
        let outcome: (Evaluation, RObject?)
        let start = ContinuousClock.now
        let command = returnValue ? "eval" : "voidEval"
        var sent: [UInt8]?
        switch parameters.first {
        case .string(let code)?:
            sent = code
            let access = self.access
            outcome = withHardLimit { code.withUnsafeBytes { access.evaluate(engine, code: $0, options: options) } }
        case .sexp(let body)?:
            guard access.role?.runsArbitraryCode == true else { return refuse(command: "\(command) of an R object") }
            let object: RObject
            do {
                object = try engine.makeObject(try QAP1SEXP.decode(body))
            } catch {
                return respond(error: .invalidParameter)
            }
            outcome = withHardLimit { engine.evaluate(object: object, options: options) }
        default:
            return respond(error: .invalidParameter)
        }
        let (evaluation, object) = outcome
        if assignment.auditRequests {
            report(command: command, code: sent, outcome: SessionRuntime.outcome(of: evaluation), since: start, limit: SessionRuntime.limit(of: evaluation))
        }
        runtime.count(evaluation, since: start)
        if let error = evaluation.error {
            switch error.code {
            case .parseIncomplete: return respond(error: .parseIncomplete)
            case .parseInvalid: return respond(error: .parseError)
            case .timeout:
                engine.setErrorMessage("Error: \(error.message)\n")
                return respond(error: .rError)
            default: return respond(error: .rError)
            }
        }
        guard returnValue else { return respondOK() }
        guard let object else {
            // Code with no expression: Rserve returns the (empty) parse result, expression().
            var payload = ByteBuffer.fresh()
            QAP1Parameter.writeHeader(type: QAP1Parameter.DataType.sexp, length: 4, into: &payload)
            payload.writeInteger(UInt32(QAP1SEXP.XT.vectorExp), endianness: .little)
            return respond(.responseOK, payload: payload)
        }
        return respondOK(object: object)
    }

    func assign(_ parameters: [QAP1Parameter], parseName: Bool) -> Bool {
        guard parameters.count >= 2, let name = parameters[0].stringValue, !name.isEmpty else {
            return respond(error: .invalidParameter)
        }
        let value: RValue
        switch parameters[1] {
        case .sexp(let body):
            do { value = try QAP1SEXP.decode(body) } catch { return respond(error: .invalidParameter) }
        case .string(let bytes):
            value = .character([String(decoding: bytes, as: UTF8.self)])
        default:
            return respond(error: .invalidParameter)
        }
        if let refusal = access.assignRefusal(name: name, value: value) {
            engine.setErrorMessage("Error: \(refusal)\n")
            report(command: "setSEXP", outcome: "refused")
            return respond(error: .rError)
        }
        report(command: parseName ? "assignSEXP" : "setSEXP", outcome: "ok")
        do {
            let object = try engine.makeObject(value)
            if !parseName || SessionRuntime.isSyntacticName(name) {
                try engine.assign(name, object: object)
                return respondOK()
            }
            // assignSEXP with a target like `names(x)`: Rserve silently does nothing useful; rgate
            // performs the replacement assignment the client asked for.
            try engine.assign(".rgate_assign_value", object: object)
            let code = Array("\(name) <- .rgate_assign_value; rm(.rgate_assign_value)".utf8)
            let evaluation = code.withUnsafeBytes { engine.evaluate(utf8: $0, options: options) }
            if let error = evaluation.error {
                return respond(error: error.isParseError ? (error.code == .parseIncomplete ? .parseIncomplete : .parseError) : .rError)
            }
            return respondOK()
        } catch {
            engine.setErrorMessage("Error: \(error.message)\n")
            return respond(error: .rError)
        }
    }
}
