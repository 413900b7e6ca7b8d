/// Who may connect and what each role may do: the part of the configuration that the
/// supervisor hands to workers (as JSON, see ``encoded()``).
public struct SecurityPolicy: Sendable, Hashable, Codable {
    /// Roles by name: the built-in ones plus those the configuration defines (which may
    /// redefine a built-in name, e.g. to give `caller` its functions).
    public var roles: [String: Role]
    /// The role of clients that do not log in; `nil`: everyone must log in (and the seed text
    /// protocol, which has no login, is not served).
    public var anonymousRole: String?
    /// rgate's own user file (`rgate user add`), if any.
    public var usersFile: String?
    /// An Rserve-style password file (plain, `$md5$`, `$sha1$` or crypt); its users get
    /// ``rservePasswordRole``.
    public var rservePasswordFile: String?
    /// The role of users from ``rservePasswordFile``.
    public var rservePasswordRole: String

    /// No users, everyone an analyst: the defaults for a server on loopback.
    public init() {
        roles = Dictionary(uniqueKeysWithValues: Role.builtIn.map { ($0.name, $0) })
        anonymousRole = Role.Base.analyst.rawValue
        usersFile = nil
        rservePasswordFile = nil
        rservePasswordRole = Role.Base.analyst.rawValue
    }

    /// Whether clients must log in.
    public var requiresLogin: Bool { anonymousRole == nil }

    /// Whether any way to log in is configured.
    public var hasUsers: Bool { usersFile != nil || rservePasswordFile != nil }

    /// The role for a name, or nil.
    public func role(named name: String) -> Role? { roles[name] }

    /// Checks the whole policy.
    public func validate() throws(PolicyError) {
        for role in roles.values { try role.validate() }
        if let anonymousRole, roles[anonymousRole] == nil {
            throw PolicyError("anonymous_role: no role named '\(anonymousRole)' (known: \(roles.keys.sorted().joined(separator: ", ")))")
        }
        if roles[rservePasswordRole] == nil {
            throw PolicyError("rserve_password_role: no role named '\(rservePasswordRole)'")
        }
        if anonymousRole == nil, !hasUsers {
            throw PolicyError("anonymous_role is none but no users_file or qap_password_file is set: nobody could connect")
        }
    }
}
