/// A role: what its users may do. Every user has one; so do clients that do not log in (the
/// configuration's anonymous role, if any).
public struct Role: Sendable, Hashable, Codable {
    /// The built-in behaviour a role starts from.
    public enum Base: String, Sendable, Hashable, Codable, CaseIterable {
        /// Everything, including shutting the server down and QAP1 file commands.
        case admin
        /// Arbitrary R inside the session sandbox, QAP1 file commands; no shutdown.
        case analyst
        /// Only the role's allow-listed functions, with data arguments; nothing else.
        case caller
    }

    /// The role's name (`admin`, `analyst`, `caller` or one the configuration defines).
    public var name: String
    /// What the role builds on.
    public var base: Base
    /// For callers: the functions they may call, as `name` (from the role's sources, or found
    /// from the global environment's search path at start) or `pkg::name`.
    public var functions: [String]
    /// R scripts evaluated at server start into the role's own environment (its functions can
    /// then be listed in ``functions``).
    public var sources: [String]
    /// Wall-clock limit per request for this role, in milliseconds (`nil`: the server's).
    public var evalTimeoutMilliseconds: UInt32?
    /// Memory limit per session for this role, in bytes (`nil`: the server's).
    public var memoryLimitBytes: UInt64?
    /// Most sessions of this role at once (`nil`: no limit beyond the server's).
    public var maxSessions: Int?
    /// Whether sessions of this role may use the network (otherwise, as root, they run in a
    /// network namespace with only a loopback device).
    public var network: Bool
    /// The optional QAP1 command groups the role may use (``CommandGroup``); nil: its base's.
    public var commands: Set<CommandGroup>?

    /// Optional groups of QAP1 commands a role may be given or denied.
    public enum CommandGroup: String, Sendable, Hashable, Codable, CaseIterable {
        /// open/create/read/write/close/remove of files in the session's directory.
        case files
        /// `shutdown` of the whole server.
        case shutdown
        /// detach and attach a session (and `detachedVoidEval`, which needs arbitrary code).
        case detach
        /// serEval/serAssign/serEE (R-serialized calls: arbitrary code).
        case serialized
    }

    /// The groups a base allows by default.
    public static func defaultCommands(for base: Base) -> Set<CommandGroup> {
        switch base {
        case .admin: [.files, .shutdown, .detach, .serialized]
        case .analyst: [.files, .detach, .serialized]
        case .caller: [.detach]
        }
    }

    /// The command groups in effect.
    public var allowedCommands: Set<CommandGroup> { commands ?? Role.defaultCommands(for: base) }

    public init(
        name: String, base: Base, functions: [String] = [], sources: [String] = [],
        evalTimeoutMilliseconds: UInt32? = nil, memoryLimitBytes: UInt64? = nil, maxSessions: Int? = nil,
        network: Bool? = nil, commands: Set<CommandGroup>? = nil
    ) {
        self.commands = commands
        self.name = name
        self.base = base
        self.functions = functions
        self.sources = sources
        self.evalTimeoutMilliseconds = evalTimeoutMilliseconds
        self.memoryLimitBytes = memoryLimitBytes
        self.maxSessions = maxSessions
        self.network = network ?? (base == .admin)
    }

    /// Whether the role runs arbitrary R code (admin, analyst) rather than allow-listed calls.
    public var runsArbitraryCode: Bool { base != .caller }
    /// Whether QAP1 shutdown is allowed.
    public var mayShutDown: Bool { allowedCommands.contains(.shutdown) }
    /// Whether QAP1 file commands (open/read/write/remove) are allowed.
    public var mayUseFiles: Bool { allowedCommands.contains(.files) }
    /// Whether detach/attach is allowed.
    public var mayDetach: Bool { allowedCommands.contains(.detach) }
    /// Whether serialized commands (serEval, serAssign, serEE), which carry R code, are allowed
    /// (never for callers: they are code).
    public var mayUseSerializedCommands: Bool { base != .caller && allowedCommands.contains(.serialized) }

    /// The built-in roles, each with its base's defaults.
    public static let builtIn: [Role] = Base.allCases.map { Role(name: $0.rawValue, base: $0) }

    /// Functions that evaluate code, reach other functions by name or change the engine; an
    /// allow-list naming one of them is refused at start, since calling it with data would
    /// still be arbitrary code. A safety net, not a proof: R has more functions that take a
    /// function by name (`FUN = "system"`), so list only functions that treat arguments as data.
    public static let forbiddenFunctions: Set<String> = [
        "eval", "evalq", "eval.parent", "local", "with", "within", "parse", "str2lang", "str2expression",
        "deparse", "do.call", "get", "get0", "mget", "match.fun", "getFunction", "getAnywhere", "getExportedValue",
        "system", "system2", "shell", "pipe", "source", "sys.source", "library", "require", "requireNamespace",
        "loadNamespace", "attachNamespace", "attach", "dyn.load", "library.dynam", ".Internal", ".Primitive", ".Call",
        ".External", ".External2", ".C", ".Fortran", "Recall", "assign", "delayedAssign", "makeActiveBinding",
        "environment<-", "body<-", "formals<-", "sys.function", "sys.call", "on.exit", "Sys.setenv", "Sys.setlocale",
        "options", "setwd", "file", "url", "socketConnection", "rm", "q", "quit", "reg.finalizer", "unserialize",
        "readRDS", "load", "Reduce", "Filter", "Map", "lapply", "sapply", "vapply", "mapply", "rapply", "tryCatch",
        "withCallingHandlers", "try", "invokeRestart", "as.function", "alist", "bquote", "substitute", "quote",
        "sys.frames", "parent.frame", "environment", "new.env", "as.environment", "globalenv", "emptyenv", "topenv",
        "callCC", "Negate", "Vectorize", "outer", "apply", "tapply", "aggregate", "ave", "by", "eapply", "dendrapply",
        "formula", "as.formula", "lm", "glm", "model.frame", "nls", "optim", "optimize", "uniroot", "integrate",
        "registerS3method", "setMethod", "setClass", "trace", "untrace", "browser", "debug", "fix", "edit",
        "sweep", "kronecker", "Find", "Position", "addmargins", "dget", "dput", "environmentName", "sys.frame",
        "Rprof", "Sys.chmod", "file.remove", "unlink", "download.file", "install.packages", "remove.packages",
    ]

    /// Checks a role's definition; the error names the problem.
    public func validate() throws(PolicyError) {
        guard CallerRequest.isPlainName(name) || Base(rawValue: name) != nil else {
            throw PolicyError("role name '\(name)' must be a plain name (letters, digits, '.', '_')")
        }
        for function in functions {
            guard CallerRequest.isFunctionReference(function) else {
                throw PolicyError("role \(name): '\(function)' is not a function name or pkg::name")
            }
            let bare = function.split(separator: ":").last.map(String.init) ?? function
            if Role.forbiddenFunctions.contains(bare) {
                throw PolicyError("role \(name): '\(function)' evaluates code or reaches other functions by name, so allowing it would allow everything")
            }
        }
        if base != .caller, !functions.isEmpty {
            throw PolicyError("role \(name): 'functions' only applies to roles based on caller (\(base.rawValue) runs any code)")
        }
        if let maxSessions, maxSessions < 1 { throw PolicyError("role \(name): max_sessions must be at least 1") }
        if base == .caller, let commands, commands.contains(.serialized) {
            throw PolicyError("role \(name): serialized commands carry R code, which a caller may not run")
        }
    }
}

/// A policy that cannot be used.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
