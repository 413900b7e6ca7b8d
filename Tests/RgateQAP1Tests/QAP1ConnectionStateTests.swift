import RgateQAP1
import Testing

@Suite("Rserve's login and gating rules, without R or a socket")
struct QAP1ConnectionStateTests {
    typealias State = QAP1ConnectionState
    typealias Gate = QAP1ConnectionState.Gate

    /// A QAP1 connection where users must log in (no anonymous role).
    func loginRequired(rsa: Bool = false, tls: Bool = false) -> State {
        State(.init(loginsChecked: true, rsaLogin: rsa, tlsOffered: tls), authenticated: false, serializedCommandsAllowed: false)
    }

    /// A QAP1 connection with an anonymous role (and, with `users`, logins to other roles).
    func anonymous(users: Bool = true, rsa: Bool = false, tls: Bool = false, serialized: Bool = true) -> State {
        State(.init(loginsChecked: users, rsaLogin: rsa, tlsOffered: tls), authenticated: true, serializedCommandsAllowed: serialized)
    }

    /// An OCAP connection.
    func ocap(authenticated: Bool = false) -> State {
        State(.init(objectCapabilities: true, loginsChecked: true), authenticated: authenticated, serializedCommandsAllowed: false)
    }

    static let usingCommands: [QAP1Command] = [
        .eval, .voidEval, .shutdown, .setSEXP, .assignSEXP, .detachSession, .detachedVoidEval, .attachSession,
        .ctrlEval, .ctrlSource, .ctrlShutdown, .openFile, .createFile, .closeFile, .readFile, .writeFile,
        .removeFile, .ocCall, QAP1Command(rawValue: 0x0ee), QAP1Command(rawValue: 0x1234),
    ]
    static let serializedCommands: [QAP1Command] = [.serEval, .serEEval, .serAssign, QAP1Command(rawValue: 0x0f0)]

    // MARK: Before a login

    @Test("Anything before a required login is refused with authFailed and the connection closed",
          arguments: usingCommands + [.setBufferSize, .setEncoding])
    func beforeLogin(command: QAP1Command) {
        var state = loginRequired()
        #expect(state.received(command) == .refuseAndClose(.authFailed))
        #expect(!state.isUsed)
    }

    @Test("Serialized (raw-payload) commands before a login close with authFailed", arguments: serializedCommands)
    func serializedBeforeLogin(command: QAP1Command) {
        var state = loginRequired()
        #expect(state.received(command) == .refuseAndClose(.authFailed))
    }

    @Test("login, keyReq, secLogin and switch are answered before a login")
    func loginCommandsBeforeLogin() {
        var state = loginRequired(rsa: true, tls: true)
        #expect(state.received(.login) == .dispatch)
        #expect(state.received(.keyRequest) == .dispatch)
        #expect(state.received(.switchProtocol) == .dispatch)
        #expect(state.received(.secureLogin) == .refuse(.unavailable)) // no key yet: see below
        #expect(!state.isUsed)
    }

    @Test("After a login, commands run; the first confines the process")
    func afterLogin() {
        var state = loginRequired()
        #expect(state.received(.login) == .dispatch)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.isAuthenticated && state.isLoggedIn)
        #expect(state.received(.eval) == .dispatchAfterConfining)
        #expect(state.received(.eval) == .dispatch)
    }

    // MARK: Logins

    @Test("Without users, every login succeeds (Rserve without a password file), even after use, and changes nothing")
    func loginWithoutUsers() {
        var state = anonymous(users: false)
        #expect(state.received(.login) == .answerOK)
        #expect(state.received(.eval) == .dispatchAfterConfining)
        #expect(state.received(.login) == .answerOK)
        #expect(!state.isLoggedIn)
    }

    @Test("A second login is an invalid command (the session goes on)")
    func secondLogin() {
        var state = loginRequired()
        #expect(state.received(.login) == .dispatch)
        state.loginSucceeded(serializedCommandsAllowed: true)
        #expect(state.received(.login) == .refuse(.invalidCommand))
        #expect(state.received(.login) == .refuse(.invalidCommand))
    }

    @Test("An anonymous client may log in once")
    func anonymousLogsInOnce() {
        var state = anonymous()
        #expect(state.received(.login) == .dispatch)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.received(.login) == .refuse(.invalidCommand))
    }

    @Test("A login after other commands is refused as not allowed (invalidCommand); the session goes on")
    func loginAfterUse() {
        var state = anonymous()
        #expect(state.received(.eval) == .dispatchAfterConfining)
        #expect(state.received(.login) == .deny(.invalidCommand))
        #expect(state.received(.eval) == .dispatch)
        #expect(state.received(.login) == .deny(.invalidCommand))
    }

    @Test("A second login after use is still an invalid command, not a refusal")
    func secondLoginAfterUse() {
        var state = loginRequired()
        _ = state.received(.login)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.received(.eval) == .dispatchAfterConfining)
        #expect(state.received(.login) == .refuse(.invalidCommand))
    }

    // MARK: RSA logins

    @Test("keyReq and secLogin are unavailable without RSA logins")
    func noRSA() {
        var state = loginRequired(rsa: false)
        #expect(state.received(.keyRequest) == .refuse(.unavailable))
        #expect(state.received(.secureLogin) == .refuse(.unavailable))
        #expect(state.received(.login) == .dispatch)
    }

    @Test("secLogin without a key is unavailable")
    func secureLoginWithoutKey() {
        var state = loginRequired(rsa: true)
        #expect(state.received(.secureLogin) == .refuse(.unavailable))
        #expect(!state.hasUnspentKey)
    }

    @Test("One key request per login: a second while the key is unspent is a replay attempt, securityClose and close")
    func secondKeyRequest() {
        var state = loginRequired(rsa: true)
        #expect(state.received(.keyRequest) == .dispatch)
        #expect(state.keyRequested() == .dispatch)
        #expect(state.hasUnspentKey)
        #expect(state.received(.keyRequest) == .dispatch) // its parameter is checked first
        #expect(state.keyRequested() == .refuseAndClose(.securityClose))
    }

    @Test("secLogin spends the key (one login per key request)")
    func secureLoginSpendsKey() {
        var state = loginRequired(rsa: true)
        _ = state.received(.keyRequest)
        #expect(state.keyRequested() == .dispatch)
        #expect(state.received(.secureLogin) == .dispatch)
        #expect(!state.hasUnspentKey)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.received(.secureLogin) == .refuse(.unavailable))
    }

    @Test("After a secure login, a new key may be requested, but another secLogin is an invalid command that keeps the key")
    func secureLoginAfterLogin() {
        var state = loginRequired(rsa: true)
        _ = state.received(.keyRequest)
        _ = state.keyRequested()
        _ = state.received(.secureLogin)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.received(.keyRequest) == .dispatch)
        #expect(state.keyRequested() == .dispatch)
        #expect(state.received(.secureLogin) == .refuse(.invalidCommand))
        #expect(state.hasUnspentKey)
    }

    @Test("secLogin after use is refused as not allowed, and spends the key")
    func secureLoginAfterUse() {
        var state = anonymous(rsa: true)
        #expect(state.received(.eval) == .dispatchAfterConfining)
        _ = state.received(.keyRequest)
        #expect(state.keyRequested() == .dispatch)
        #expect(state.received(.secureLogin) == .deny(.invalidCommand))
        #expect(!state.hasUnspentKey)
        #expect(state.received(.secureLogin) == .refuse(.unavailable))
    }

    // MARK: TLS

    @Test("switch is disabled when TLS is not offered")
    func switchNotOffered() {
        var state = loginRequired(tls: false)
        #expect(state.received(.switchProtocol) == .refuse(.disabled))
    }

    @Test("switch to TLS only once")
    func switchOnce() {
        var state = loginRequired(tls: true)
        #expect(state.received(.switchProtocol) == .dispatch)
        #expect(state.received(.switchProtocol) == .dispatch) // a failed or malformed switch may be retried
        state.switchedToTLS()
        #expect(state.isSwitchedToTLS)
        #expect(state.received(.switchProtocol) == .refuse(.disabled))
        #expect(state.received(.eval) == .refuseAndClose(.authFailed)) // still no login
    }

    // MARK: Use and confinement

    @Test("setBufferSize, setEncoding, login, keyReq, secLogin and switch do not count as use")
    func notUse() {
        var state = anonymous(rsa: true, tls: true)
        for command in [QAP1Command.setBufferSize, .setEncoding, .keyRequest, .switchProtocol, .setBufferSize] {
            #expect(state.received(command) == .dispatch)
        }
        #expect(state.keyRequested() == .dispatch)
        #expect(state.received(.secureLogin) == .dispatch)
        #expect(!state.isUsed)
        #expect(state.received(.login) == .dispatch) // a login is still possible
        #expect(!state.isUsed)
    }

    @Test("The first use confines exactly once", arguments: usingCommands)
    func firstUseConfines(command: QAP1Command) {
        var state = anonymous()
        #expect(state.received(command) == .dispatchAfterConfining)
        #expect(state.isUsed)
        #expect(state.received(command) == .dispatch)
        #expect(state.received(.eval) == .dispatch)
        #expect(state.received(.serEval) == .dispatch)
    }

    @Test("Serialized commands are a use for roles that may send them", arguments: serializedCommands)
    func serializedUse(command: QAP1Command) {
        var state = anonymous(serialized: true)
        #expect(state.received(command) == .dispatchAfterConfining)
        #expect(state.received(command) == .dispatch)
    }

    @Test("Serialized commands of a role that may not send them are refused as not allowed, before use", arguments: serializedCommands)
    func serializedRefused(command: QAP1Command) {
        var state = anonymous(serialized: false)
        #expect(state.received(command) == .deny(.rError))
        #expect(!state.isUsed)
        #expect(state.received(.login) == .dispatch) // so a login is still possible
        state.loginSucceeded(serializedCommandsAllowed: true)
        #expect(state.received(command) == .dispatchAfterConfining)
    }

    @Test("A login's role decides whether serialized commands are allowed")
    func loginDecidesSerialized() {
        var state = anonymous(serialized: true)
        _ = state.received(.login)
        state.loginSucceeded(serializedCommandsAllowed: false)
        #expect(state.received(.serEval) == .deny(.rError))
    }

    @Test("QAP1 replies carry message id 0")
    func replyIDInQAP1() {
        var state = anonymous()
        _ = state.received(.eval, messageID: 42)
        #expect(state.replyID == 0)
    }

    @Test("An oversized request is answered with dataOverflow and the session goes on")
    func oversizedInQAP1() {
        var state = anonymous()
        #expect(state.receivedOversized(messageID: 7) == .refuse(.dataOverflow))
        #expect(state.replyID == 0)
        #expect(!state.isUsed)
    }

    // MARK: OCAP mode

    @Test("OCAP mode: only OCcall; anything else is disabled and closes",
          arguments: usingCommands.filter { $0 != .ocCall } + serializedCommands + [.login, .keyRequest, .secureLogin, .switchProtocol, .setBufferSize, .setEncoding])
    func ocapOnlyCalls(command: QAP1Command) {
        var state = ocap()
        #expect(state.received(command) == .refuseAndClose(.disabled))
        var authenticated = ocap(authenticated: true)
        #expect(authenticated.received(command) == .refuseAndClose(.disabled))
    }

    @Test("OCAP mode: OCcall is dispatched before a login (the token table is the gate)")
    func ocapCallDispatched() {
        var state = ocap()
        #expect(state.received(.ocCall) == .dispatch)
        #expect(!state.isUsed)
    }

    @Test("OCAP mode: a call of the login capability is not a use; the first call of a function confines once")
    func ocapUse() {
        var state = ocap()
        _ = state.received(.ocCall)
        #expect(state.capabilityCalled(login: true) == .dispatch)
        #expect(!state.isUsed)
        state.loginSucceeded(serializedCommandsAllowed: false)
        _ = state.received(.ocCall)
        #expect(state.capabilityCalled(login: false) == .dispatchAfterConfining)
        _ = state.received(.ocCall)
        #expect(state.capabilityCalled(login: false) == .dispatch)
    }

    @Test("OCAP mode: replies echo the request's message id", arguments: [UInt32(0), 1, 0xdead_beef])
    func ocapReplyID(messageID: UInt32) {
        var state = ocap()
        _ = state.received(.ocCall, messageID: messageID)
        #expect(state.replyID == messageID)
        _ = state.received(.eval, messageID: messageID &+ 1)
        #expect(state.replyID == messageID &+ 1)
    }

    @Test("OCAP mode: an oversized request is answered with dataOverflow (echoing its id), then closed")
    func oversizedInOCAP() {
        var state = ocap()
        #expect(state.receivedOversized(messageID: 9) == .refuseAndClose(.dataOverflow))
        #expect(state.replyID == 9)
    }
}
