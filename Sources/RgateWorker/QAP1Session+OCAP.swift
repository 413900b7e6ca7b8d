import NIOCore
import RgateIPC
import RgateModel
import RgateQAP1

/// Object-capability mode (Rserve's OCAP): the client gets tokens for functions and calls them;
/// nothing else. The token table is ``QAP1Session/capabilities``.
extension QAP1Session {
    /// Sends the first message of OCAP mode: `RsOC` and the capabilities, a named list of
    /// `OCref` strings: the role's functions, or only `login` when the client must log in.
    func sendCapabilities() -> Bool {
        var names: [String] = []
        if let role = access.role, role.base == .caller {
            names = access.callableFunctions
        } else if !assignment.loginMethods.isEmpty {
            names = ["login"]
        }
        guard !names.isEmpty else {
            WorkerLog.info("session \(assignment.sessionID): OCAP has no capabilities to offer (the anonymous role is not a caller, and there are no users)")
            return false
        }
        return respondCapabilities(names, command: .ocInit, login: names == ["login"] && access.role?.base != .caller)
    }

    /// Registers fresh tokens for `names` and answers with them (as Rserve's OCinit or a result).
    /// - Parameter login: the one name is the login capability, not a function.
    func respondCapabilities(_ names: [String], command: QAP1Command, login: Bool = false) -> Bool {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.".utf8)
        var rng = SystemRandomNumberGenerator()
        var refs: [RValue] = []
        for name in names {
            let token = String(decoding: (0..<28).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
            capabilities[token] = login ? "" : name
            refs.append(RValue(.character([token]), attributes: [RAttribute(name: "class", value: .character(["OCref"]))]))
        }
        var payload = ByteBuffer.fresh()
        do { try QAP1Parameter.sexp(.list(refs, names: names)).encode(into: &payload) } catch { return false }
        return respond(command, payload: payload)
    }

    /// `CMD_OCcall`: a call whose first element is a capability token, the rest plain data.
    /// An unknown token or a malformed call closes the connection without a reply (as Rserve).
    func capabilityCall(_ message: QAP1Message) -> Bool {
        let start = ContinuousClock.now
        guard case .sexp(let body)? = try? QAP1Parameter.parse(message.payload).first,
              let call = try? QAP1SEXP.decode(body), case .language(let items) = call.payload,
              let head = items.first, case .character(let tokens) = head.payload, tokens.count == 1,
              let token = tokens[0], let function = capabilities[token] else {
            WorkerLog.info("session \(assignment.sessionID): invalid OCAP call; closing")
            return closeSilently()
        }
        let labels = call.names ?? []
        let arguments: [(label: String?, value: RValue)] = items.indices.dropFirst().map { i in
            let label = i < labels.count ? labels[i] : nil
            return (label.flatMap { $0.isEmpty ? nil : $0 }, items[i])
        }
        if let answered = execute(state.capabilityCalled(login: function.isEmpty), for: .ocCall) { return answered }
        if function.isEmpty { return capabilityLogin(arguments) }
        let access = self.access
        let (evaluation, object) = withHardLimit { access.call(engine, function: function, arguments: arguments, options: options) }
        if assignment.auditRequests {
            report(command: "OCcall \(function)", outcome: SessionRuntime.outcome(of: evaluation), since: start, limit: SessionRuntime.limit(of: evaluation))
        }
        runtime.count(evaluation, since: start)
        guard evaluation.error == nil, let object else { return respond(error: .rError) }
        return respondOK(object: object)
    }

    /// The `login(user, password)` capability: on success, the user's role's capabilities.
    func capabilityLogin(_ arguments: [(label: String?, value: RValue)]) -> Bool {
        func text(_ v: RValue) -> String? {
            if case .character(let s) = v.payload, s.count == 1 { return s[0] }
            return nil
        }
        guard arguments.count == 2, let user = text(arguments[0].value), let password = text(arguments[1].value),
              user.utf8.count <= 256, password.utf8.count <= 4096 else {
            engine.setErrorMessage("Error: rgate: login(user, password) takes two strings\n")
            return respond(error: .rError)
        }
        let outcome = authenticate(AuthenticationRequest(method: .password, user: user, secret: Array(password.utf8)))
        guard let outcome, outcome.accepted, access.adopt(roleNamed: outcome.role, user: outcome.user) else {
            // As a failed QAP1 login: answered, then the connection is closed.
            engine.setErrorMessage("Error: rgate: \(outcome?.message ?? "login failed")\n")
            return refuseAndClose(.rError)
        }
        loggedIn()
        capabilities = capabilities.filter { !$0.value.isEmpty } // the login capability is spent
        guard access.role?.base == .caller, !access.callableFunctions.isEmpty else {
            engine.setErrorMessage("Error: rgate: role \(outcome.role) has no functions to call over OCAP; use the QAP1 port\n")
            return respond(error: .rError)
        }
        return respondCapabilities(access.callableFunctions, command: .responseOK)
    }
}
