/// Rserve's login and gating rules for one QAP1 connection, as a value: which commands a client
/// may send when, what a refusal answers, and when the session process is confined.
///
/// A server asks ``received(_:messageID:)`` for every request (in QAP1 mode after it parsed the
/// parameters: malformed parameters are answered with their status before any gate), executes
/// the ``Gate`` it returns, and reports what happened with the other transitions
/// (``loginSucceeded(serializedCommandsAllowed:)``, ``keyRequested()``, ``switchedToTLS()``,
/// ``capabilityCalled(login:)``). No R and no socket: every rule is a unit test.
///
/// The rules, as Rserve has them:
/// - Before a required login, only `login`, `secLogin`, `keyReq` and `switch` are answered;
///   anything else is refused with `ERR_auth_failed` and the connection closed (serialized
///   commands too).
/// - A second login is an invalid command (an anonymous client may log in once). A login after
///   other commands is refused as not allowed (`ERR_inv_cmd`, recorded) and the session goes on.
///   Without users every login succeeds (Rserve without a password file).
/// - `keyReq` gives one key per login attempt: a second request while the key is unspent is a
///   replay attempt, refused with `ERR_securityClose` and closed (Rserve 1.8-10+); `secLogin`
///   spends the key, and without one is unavailable.
/// - `switch` to TLS only when offered, and only once.
/// - `setBufferSize`, `setEncoding` and the login commands do not use the session; the first
///   command that does confines the process for the role (before any client code runs).
/// - OCAP mode: only `OCcall` (anything else: `ERR_disabled`, then close); replies echo the
///   request's message id; a call of the login capability is not a use.
public struct QAP1ConnectionState: Sendable, Hashable {
    /// What the server offers on this connection; fixed for its lifetime.
    public struct Configuration: Sendable, Hashable {
        /// Object-capability mode (Rserve's `oc` mode): only calls of capabilities.
        public var objectCapabilities: Bool
        /// Whether logins are checked (users are configured); otherwise every login succeeds.
        public var loginsChecked: Bool
        /// Whether RSA logins (`keyReq`, `secLogin`) are possible.
        public var rsaLogin: Bool
        /// Whether the in-band switch to TLS is offered.
        public var tlsOffered: Bool

        /// Creates a configuration.
        public init(objectCapabilities: Bool = false, loginsChecked: Bool = false, rsaLogin: Bool = false, tlsOffered: Bool = false) {
            self.objectCapabilities = objectCapabilities
            self.loginsChecked = loginsChecked
            self.rsaLogin = rsaLogin
            self.tlsOffered = tlsOffered
        }
    }

    /// What the server does with a request.
    public enum Gate: Sendable, Hashable {
        /// Run the command.
        case dispatch
        /// Confine the process for the role (the session's first use), then run the command; if
        /// confinement fails, answer `ERR_accessDenied` and close.
        case dispatchAfterConfining
        /// Answer OK and do nothing else (a login when no users are configured).
        case answerOK
        /// Answer with the status; the session goes on.
        case refuse(QAP1Status)
        /// Refuse as not allowed: answer with the status and record the refusal (R's error
        /// message, the log, the request record); the session goes on.
        case deny(QAP1Status)
        /// Answer with the status, then close the connection.
        case refuseAndClose(QAP1Status)
    }

    /// What the server offers.
    public let configuration: Configuration
    /// Whether the client has a role: the anonymous one, or a user's after a login.
    public private(set) var isAuthenticated: Bool
    /// Whether a login succeeded (after which another is an invalid command).
    public private(set) var isLoggedIn = false
    /// Whether the role may send serialized commands (`serEval`, `serEEval`, `serAssign`).
    public private(set) var serializedCommandsAllowed: Bool
    /// Whether the session has run anything (after which a login can no longer change the role).
    public private(set) var isUsed = false
    /// Whether a `keyReq` key was issued and not yet spent by a `secLogin`.
    public private(set) var hasUnspentKey = false
    /// Whether the connection was switched to TLS.
    public private(set) var isSwitchedToTLS = false
    /// The message id replies carry: 0, or in OCAP mode the last request's (as Rserve).
    public private(set) var replyID: UInt32 = 0

    /// Creates the state of a new connection.
    /// - Parameters:
    ///   - authenticated: whether the client has a role before any login (an anonymous role).
    ///   - serializedCommandsAllowed: whether that role may send serialized commands.
    public init(_ configuration: Configuration, authenticated: Bool, serializedCommandsAllowed: Bool) {
        self.configuration = configuration
        isAuthenticated = authenticated
        self.serializedCommandsAllowed = serializedCommandsAllowed
    }

    /// The gate for a request (an oversized one: ``receivedOversized(messageID:)``).
    public mutating func received(_ command: QAP1Command, messageID: UInt32 = 0) -> Gate {
        if configuration.objectCapabilities {
            replyID = messageID
            return command == .ocCall ? .dispatch : .refuseAndClose(.disabled)
        }
        if command.hasRawPayload {
            guard isAuthenticated else { return .refuseAndClose(.authFailed) }
            guard serializedCommandsAllowed else { return .deny(.rError) }
            return use()
        }
        switch command {
        case .login:
            guard configuration.loginsChecked else { return .answerOK }
            guard !isLoggedIn else { return .refuse(.invalidCommand) }
            return isUsed ? .deny(.invalidCommand) : .dispatch
        case .secureLogin:
            guard configuration.rsaLogin, hasUnspentKey else { return .refuse(.unavailable) }
            guard !isLoggedIn else { return .refuse(.invalidCommand) }
            hasUnspentKey = false // one login per key request
            return isUsed ? .deny(.invalidCommand) : .dispatch
        case .keyRequest:
            // The parameter is checked next, then ``keyRequested()``.
            return configuration.rsaLogin ? .dispatch : .refuse(.unavailable)
        case .switchProtocol:
            return configuration.tlsOffered && !isSwitchedToTLS ? .dispatch : .refuse(.disabled)
        default:
            break
        }
        guard isAuthenticated else { return .refuseAndClose(.authFailed) }
        if command == .setBufferSize || command == .setEncoding { return .dispatch }
        return use()
    }

    /// The gate for a request longer than the server accepts (`ERR_data_overflow`; in OCAP mode,
    /// as Rserve, the connection is then closed).
    public mutating func receivedOversized(messageID: UInt32) -> Gate {
        guard configuration.objectCapabilities else { return .refuse(.dataOverflow) }
        replyID = messageID
        return .refuseAndClose(.dataOverflow)
    }

    /// A well-formed `keyReq` (after ``received(_:messageID:)`` dispatched it): `.dispatch` to
    /// issue a key, or, while an issued key is unspent, `ERR_securityClose` and close.
    public mutating func keyRequested() -> Gate {
        guard !hasUnspentKey else { return .refuseAndClose(.securityClose) }
        hasUnspentKey = true
        return .dispatch
    }

    /// A login (QAP1's or OCAP's login capability) succeeded: the client has the user's role.
    public mutating func loginSucceeded(serializedCommandsAllowed: Bool) {
        isAuthenticated = true
        isLoggedIn = true
        self.serializedCommandsAllowed = serializedCommandsAllowed
    }

    /// The connection now runs over TLS.
    public mutating func switchedToTLS() {
        isSwitchedToTLS = true
    }

    /// The gate for an OCAP call of a known capability (after ``received(_:messageID:)``): a call
    /// of the login capability is not a use.
    public mutating func capabilityCalled(login: Bool) -> Gate {
        login ? .dispatch : use()
    }

    private mutating func use() -> Gate {
        if isUsed { return .dispatch }
        isUsed = true
        return .dispatchAfterConfining
    }
}
