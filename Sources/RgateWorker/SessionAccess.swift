import Crypto
import RgateEngine
import RgateIPC
import RgateModel
import RgatePolicy
#if canImport(Glibc)
import Glibc
#endif

/// Who a session serves and what they may do: the role (anonymous or from a login), and the
/// gate every request passes before R sees it.
///
/// For roles that run arbitrary code, code goes to R as sent. For a caller, code is parsed by
/// ``CallerRequest`` and only the canonical form of an allow-listed call is evaluated, in a
/// fresh environment holding exactly the function and the (plain-data) variables it names.
struct SessionAccess {
    /// The role; nil until the client logs in (when there is no anonymous role).
    private(set) var role: Role?
    private(set) var user: String?
    private var caller: CallerRuntime?
    let settings: WorkerSettings

    init(settings: WorkerSettings, anonymousRole: String) {
        self.settings = settings
        if !anonymousRole.isEmpty { adopt(roleNamed: anonymousRole, user: nil) }
    }

    /// Switches to the role of a logged-in user; false when the role is unknown here.
    @discardableResult
    mutating func adopt(roleNamed name: String, user: String?) -> Bool {
        guard let role = settings.policy.roles[name] else { return false }
        self.role = role
        self.user = user
        caller = role.base == .caller ? settings.callers[name] ?? CallerRuntime(role: role, functions: [:]) : nil
        return true
    }

    var isCaller: Bool { role?.base == .caller }

    /// A refusal, as an evaluation error the protocols already know how to report.
    static func refusal(_ message: String) -> Evaluation {
        var evaluation = Evaluation()
        evaluation.error = EvaluationError(code: .rejected, message: message)
        return evaluation
    }

    func refusalMessage(command: String) -> String {
        "rgate: \(command) is not allowed for role \(role?.name ?? "none")"
    }

    /// Evaluates a request's code as the role allows: all of it, or an allow-listed call.
    func evaluate(_ engine: REngine, code: UnsafeRawBufferPointer, options: EvaluationOptions) -> (Evaluation, RObject?) {
        guard let caller else { return engine.evaluateKeepingValue(utf8: code, options: options) }
        let request: CallerRequest
        guard let text = String(validating: code, as: UTF8.self) else {
            return refuse(engine, "rgate: role \(caller.role.name) may only call \(allowedList(caller)); refused: the request is not valid UTF-8")
        }
        do {
            request = try CallerRequest(parsing: text)
        } catch {
            return refuse(engine, "rgate: role \(caller.role.name) may only call \(allowedList(caller)) with constants or variables as arguments; refused: \(error.message)")
        }
        var bindings: [(name: String, value: RObject)] = []
        var source = request.canonicalSource
        switch request {
        case .call(let function, let arguments):
            if function == "geterrmessage", arguments.isEmpty, let f = settings.errorMessageFunction {
                bindings.append((function, f))
            } else {
                guard let f = caller.functions[function] else {
                    return refuse(engine, "rgate: role \(caller.role.name) may only call \(allowedList(caller)); '\(function)' is not one of them")
                }
                if !function.contains("::") { bindings.append((function, f)) }
            }
            if let labels = Optional(arguments.compactMap(\.label)), Set(labels).count != labels.count {
                return refuse(engine, "rgate: an argument name is given twice")
            }
        case .variable:
            break
        case .isFunction(let name):
            if caller.functions[name] != nil {
                source = "TRUE"
            } else if engine.globalVariable(name) != nil {
                source = "FALSE"
            } else {
                return refuse(engine, "Error: object '\(name)' not found")
            }
        }
        if case .isFunction = request {} else {
            for name in Set(request.variables) {
                if caller.functions[name] != nil || name == "geterrmessage" {
                    return refuse(engine, "rgate: '\(name)' names a function; pass data in a variable with another name")
                }
                guard let value = engine.globalVariable(name) else {
                    return refuse(engine, "Error: object '\(name)' not found")
                }
                guard engine.isPlainData(value) else {
                    return refuse(engine, "rgate: variable '\(name)' is not plain data, so a caller cannot use it")
                }
                bindings.append((name, value))
            }
        }
        let scope: RObject
        do { scope = try engine.makeEnvironment(bindings: bindings) } catch {
            return refuse(engine, "rgate: \(error.message)")
        }
        return Array(source.utf8).withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: options, in: scope) }
    }

    /// The functions this role may call, as allow-listed (empty for roles that run any code).
    var callableFunctions: [String] { caller?.role.functions ?? [] }

    /// Calls an allow-listed function with values (Rserve's OCAP call): each argument must be
    /// plain data; nothing is parsed. The call R evaluates is `f(.rgate_arg1, label = .rgate_arg2)`
    /// in a fresh environment binding exactly those names.
    func call(_ engine: REngine, function: String, arguments: [(label: String?, value: RValue)], options: EvaluationOptions) -> (Evaluation, RObject?) {
        guard let caller, let f = caller.functions[function] else {
            return refuse(engine, "rgate: '\(function)' is not a function this role may call")
        }
        var bindings: [(name: String, value: RObject)] = []
        if !function.contains("::") { bindings.append((function, f)) }
        var parts: [String] = []
        for (index, argument) in arguments.enumerated() {
            guard argument.value.isPlainData else {
                return refuse(engine, "rgate: argument \(index + 1) of \(function) is not plain data (no calls, symbols, functions or environments)")
            }
            if let label = argument.label, !CallerRequest.isPlainName(label) {
                return refuse(engine, "rgate: '\(label)' is not a plain argument name")
            }
            let name = ".rgate_arg\(index + 1)"
            do { bindings.append((name, try engine.makeObject(argument.value))) } catch {
                return refuse(engine, "rgate: \(error.message)")
            }
            parts.append(argument.label.map { "\($0) = \(name)" } ?? name)
        }
        let scope: RObject
        do { scope = try engine.makeEnvironment(bindings: bindings) } catch {
            return refuse(engine, "rgate: \(error.message)")
        }
        let source = function + "(" + parts.joined(separator: ", ") + ")"
        return Array(source.utf8).withUnsafeBytes { engine.evaluateKeepingValue(utf8: $0, options: options, in: scope) }
    }

    /// Why a value may not be assigned to `name` by this role, or nil when it may.
    func assignRefusal(name: String, value: RValue) -> String? {
        guard let caller else { return nil }
        guard CallerRequest.isPlainName(name) else {
            return "rgate: role \(caller.role.name) may only assign to plain names (letters, digits, '.', '_'; not starting with '.'), not '\(name)'"
        }
        if caller.functions[name] != nil {
            return "rgate: '\(name)' names a function of role \(caller.role.name); choose another variable name"
        }
        guard value.isPlainData else {
            return "rgate: role \(caller.role.name) may only assign data (no functions, calls, symbols or environments)"
        }
        return nil
    }

    private func allowedList(_ caller: CallerRuntime) -> String {
        caller.role.functions.isEmpty ? "no functions" : caller.role.functions.joined(separator: ", ")
    }

    private func refuse(_ engine: REngine, _ message: String) -> (Evaluation, RObject?) {
        let text = message.hasPrefix("Error") ? message : "Error: " + message
        engine.setErrorMessage(text + "\n")
        var evaluation = Self.refusal(message)
        evaluation.output = [ConsoleChunk(stream: .stderr, text: text + "\n")]
        return (evaluation, nil)
    }

    /// SHA-256 of code, for the audit log.
    static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }
}

extension RValue {
    /// Whether this is plain data all the way down, attributes included, with only inert
    /// attributes and classes (S3 dispatch on a class reaches that class's methods: `lm`,
    /// `bibentry`... would evaluate strings as code).
    var isPlainData: Bool {
        switch payload {
        case .null, .logical, .integer, .double, .complex, .character, .raw: break
        case .list(let items): guard items.allSatisfy(\.isPlainData) else { return false }
        default: return false
        }
        return attributes.allSatisfy { attribute in
            guard attribute.value.isPlainData else { return false }
            if attribute.name == "class" {
                guard case .character(let classes) = attribute.value.payload else { return false }
                return classes.allSatisfy { name in name.map(REngine.isInertClass) ?? false }
            }
            return REngine.isInertAttribute(attribute.name)
        }
    }
}
