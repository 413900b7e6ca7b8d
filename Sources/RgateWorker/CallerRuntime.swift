import RgateEngine
import RgatePolicy

/// A caller role's functions, resolved once in the zygote (so every session shares them): the
/// role's R scripts are evaluated into the role's own environment, then each allow-listed name
/// is looked up there (and on the search path), each `pkg::name` in its package's exports.
///
/// The environment's parent is the search path below the global environment, so session
/// variables never shadow what the role's functions use.
final class CallerRuntime {
    let role: Role
    /// Allow-listed reference (as written in the configuration) → the function.
    let functions: [String: RObject]

    init(role: Role, functions: [String: RObject]) {
        self.role = role
        self.functions = functions
    }

    /// Resolves every caller role of the policy; throws with the role, file or function at fault.
    static func prepare(_ policy: SecurityPolicy, engine: REngine) throws(EngineError) -> [String: CallerRuntime] {
        var result: [String: CallerRuntime] = [:]
        for role in policy.roles.values.sorted(by: { $0.name < $1.name }) where role.base == .caller {
            var environment: RObject?
            if !role.sources.isEmpty {
                let files = role.sources.map(rStringLiteral).joined(separator: ", ")
                let code = """
                    local({ e <- new.env(parent = parent.env(globalenv())); \
                    for (f in c(\(files))) sys.source(f, envir = e, keep.source = FALSE); e })
                    """
                let (evaluation, value) = Array(code.utf8).withUnsafeBytes {
                    engine.evaluateKeepingValue(utf8: $0, options: EvaluationOptions(printVisible: false, convertValue: false))
                }
                guard evaluation.error == nil, let value else {
                    throw EngineError("role \(role.name): its source files failed: \(evaluation.error?.message ?? "no environment")")
                }
                environment = value
            }
            var functions: [String: RObject] = [:]
            for reference in role.functions {
                functions[reference] = try resolve(reference, in: environment, engine: engine, role: role.name)
            }
            result[role.name] = CallerRuntime(role: role, functions: functions)
        }
        return result
    }

    /// `base::geterrmessage`, which every role may call (pyRserve asks for it after an error).
    static func errorMessageFunction(engine: REngine) throws(EngineError) -> RObject {
        try resolve("base::geterrmessage", in: nil, engine: engine)
    }

    private static func resolve(_ reference: String, in environment: RObject?, engine: REngine, role: String = "") throws(EngineError) -> RObject {
        // `reference` passed CallerRequest.isFunctionReference: plain names, so safe to splice.
        let code: String
        var bindings: [(name: String, value: RObject)] = []
        if reference.contains("::") {
            code = reference
        } else if let environment {
            bindings.append(("e", environment))
            code = "get(\(rStringLiteral(reference)), envir = e, mode = \"function\")"
        } else {
            code = "get(\(rStringLiteral(reference)), envir = globalenv(), mode = \"function\")"
        }
        let scope = try engine.makeEnvironment(bindings: bindings)
        let (evaluation, value) = Array(code.utf8).withUnsafeBytes {
            engine.evaluateKeepingValue(utf8: $0, options: EvaluationOptions(printVisible: false, convertValue: false), in: scope)
        }
        guard evaluation.error == nil, let value, engine.isFunction(value) else {
            throw EngineError("role \(role): function '\(reference)' not found: \(evaluation.error?.message ?? "not a function")")
        }
        return value
    }
}

/// `text` as an R string literal.
func rStringLiteral(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        default:
            if scalar.value < 0x20 || scalar.value >= 0x7f {
                out += "\\U{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
