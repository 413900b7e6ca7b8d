import NIOCore
import RgateIPC
import RgateQAP1
#if canImport(Glibc)
import Glibc
#endif

/// Logins: plain (`login`), RSA (`keyReq` then `secLogin`), and the supervisor's verdict on
/// credentials. Which login may happen when is ``QAP1ConnectionState``'s to say.
extension QAP1Session {
    /// A two-character salt for crypt() logins.
    static func makeSalt() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./".utf8)
        var rng = SystemRandomNumberGenerator()
        return String(decoding: [alphabet.randomElement(using: &rng)!, alphabet.randomElement(using: &rng)!], as: UTF8.self)
    }

    /// `CMD_login "user\npassword"` (the gate has let it through: users are configured, and it
    /// is the first login, before any use).
    func login(_ parameters: [QAP1Parameter]) -> Bool {
        guard case .string(let bytes)? = parameters.first, let newline = bytes.firstIndex(of: 10), newline <= 256, bytes.count <= 4096 else {
            return refuseAndClose(.authFailed)
        }
        let user = String(decoding: bytes[..<newline], as: UTF8.self)
        var secret = Array(bytes[(newline + 1)...])
        while let last = secret.last, last == 10 || last == 13 || last == 0 { secret.removeLast() }
        return finishLogin(AuthenticationRequest(method: .password, user: user, secret: secret, salt: assignment.loginMethods.contains(.crypt) ? salt : ""))
    }

    /// Asks the supervisor to check credentials, then adopts the user's role or ends the session
    /// (as Rserve does after a failed login).
    func finishLogin(_ request: AuthenticationRequest) -> Bool {
        let outcome = authenticate(request)
        guard let outcome, outcome.accepted, access.adopt(roleNamed: outcome.role, user: outcome.user) else {
            WorkerLog.info("session \(assignment.sessionID): login failed for user \(request.user.debugDescription)")
            engine.setErrorMessage("Error: rgate: \(outcome?.message ?? "login failed")\n")
            return refuseAndClose(.authFailed)
        }
        loggedIn()
        return respondOK()
    }

    /// Tells ``state`` that the client now has the role ``access`` adopted for a user.
    func loggedIn() {
        state.loginSucceeded(serializedCommandsAllowed: access.role?.mayUseSerializedCommands == true)
    }

    /// The supervisor's verdict on credentials (nil when it could not be asked).
    func authenticate(_ request: AuthenticationRequest) -> AuthenticationOutcome? {
        guard (try? control.send(.authenticate(request))) != nil else { return nil }
        while let received = try? control.receive() {
            if let fd = received.descriptor { close(fd) }
            if case .authenticated(let answer) = received.message { return answer }
        }
        return nil
    }

    /// `CMD_keyReq "rsa-authkey"`: a fresh 256-byte key and the server's public RSA key; one key
    /// per login (a second request while it is unspent is a replay attempt: refused and closed,
    /// as Rserve 1.8-10+).
    func keyRequest(_ parameters: [QAP1Parameter]) -> Bool {
        guard let der = rsaPublicKeyDER else { return respond(error: .unavailable) }
        guard let kind = parameters.first?.stringValue, kind.contains("rsa-authkey") else { return respond(error: .invalidParameter) }
        if let answered = execute(state.keyRequested(), for: .keyRequest) { return answered }
        var key = [UInt8](repeating: 0, count: 256)
        var rng = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = rng.next() }
        authKey = key
        var answer: [UInt8] = []
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { answer += $0 } }
        u32(key.count)
        answer += key
        u32(der.count)
        answer += der
        return respond(.responseOK, payload: ByteBuffer(bytes: answer))
    }

    /// `CMD_secLogin`: the RSA-OAEP encrypted `[authkey][user\npassword\n]`, opened by the
    /// supervisor (the gate has spent the key of the last `keyReq`).
    func secureLogin(_ parameters: [QAP1Parameter]) -> Bool {
        guard let authKey else { return respond(error: .unavailable) }
        guard case .bytes(let body)? = parameters.first, body.readableBytes <= 4096 else {
            return refuseAndClose(.authFailed)
        }
        return finishLogin(AuthenticationRequest(method: .rsa, user: "", secret: Array(body.readableBytesView), authKey: authKey))
    }
}
