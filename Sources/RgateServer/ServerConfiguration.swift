public import RgatePolicy

/// Everything `rgate serve` can be told. Defaults are safe for a single machine: loopback only.
public struct ServerConfiguration: Sendable, Hashable {
    /// Users, roles and who may connect without logging in.
    public var policy = SecurityPolicy()
    /// Whether `anonymous_role` was set explicitly (otherwise it is `none` once users exist).
    public var anonymousRoleExplicit = false
    /// Allow anonymous access on a non-loopback address (refused at start otherwise).
    public var allowRemoteWithoutAuth = false
    /// Where audit lines go: a file path, `-` for standard output, nil for nowhere.
    public var auditLog: String? = nil
    /// Size at which the audit file is rotated.
    public var auditMaxBytes: Int = 100 << 20
    /// Rotated audit files kept.
    public var auditKeep: Int = 5
    /// Failed logins from one address before it is locked out.
    public var loginMaxFailures: Int = 10
    /// How long failures count, and how long a lockout lasts.
    public var loginLockout: Duration = .seconds(600)
    /// The delay before a failed login is answered (doubling with each recent failure, to 32x).
    public var loginDelay: Duration = .milliseconds(250)
    /// The address listeners bind to.
    public var host: String = "127.0.0.1"
    /// The seed text protocol's port; `nil` disables it, 0 picks a free port.
    public var textPort: Int? = 8080
    /// Rserve's QAP1 port; `nil` disables it, 0 picks a free port.
    public var qapPort: Int? = 6311
    /// QAP1 in object-capability mode (Rserve's `qap.oc`): clients (RSclient) get the caller
    /// role's functions as capabilities and can only call those; off unless set.
    public var ocapPort: Int? = nil
    /// QAP1 over TLS (Rserve's `tls.port`); off unless set (needs ``tlsCertificateFile`` and ``tlsKeyFile``).
    public var tlsPort: Int? = nil
    /// PEM certificate chain for the TLS port.
    public var tlsCertificateFile: String? = nil
    /// PEM private key for the TLS port.
    public var tlsKeyFile: String? = nil
    /// PEM CA certificates; when set, TLS clients must present a certificate signed by one.
    public var tlsClientCAFile: String? = nil
    /// A PEM RSA private key for Rserve's RSA secure login (default: a key made at start).
    public var qapRSAKeyFile: String? = nil
    /// Whether QAP1 clients may shut the server down (`shutdown` command); off by default.
    public var allowShutdown: Bool = false
    /// Memory limit per session process (RLIMIT_DATA), `nil` for none. It covers the whole
    /// process, including the R heap shared with the zygote (~100-200 MB).
    public var memoryLimitBytes: Int? = nil
    /// Largest file a session may write.
    public var fileSizeLimitBytes: Int = 1 << 30
    /// Most files a session may have open.
    public var openFilesLimit: Int = 1024
    /// Most sessions running at once; more connections wait (up to `workerWaitTimeout`) for one
    /// to end, then are told the server is busy.
    public var maxSessions: Int = 64
    /// When started as root: run each session as its own unprivileged user (uid 100000 + pid).
    public var sessionUIDs: Bool = true
    /// Most processes a session may have (fork bombs); enforced per session user.
    public var maxProcesses: Int = 256
    /// How many warm session processes to keep ready.
    public var warmWorkers: Int = 4
    /// Wall-clock limit per request (`nil`: none).
    public var evalTimeout: Duration? = .seconds(300)
    /// How long R may take to stop after the limit before its process is killed.
    public var killGrace: Duration = .seconds(2)
    /// Close connections idle this long (`nil`: never).
    public var idleTimeout: Duration? = .seconds(600)
    /// The largest text-protocol request accepted, in bytes.
    public var maxRequestBytes: Int = 64 << 20
    /// The largest QAP1 message accepted, in bytes (Rserve's `maxinbuf`).
    public var maxQAPMessageBytes: Int = 256 << 20
    /// The most console output kept per request, in bytes.
    public var maxOutputBytes: Int = 16 << 20
    /// The largest reply a bridged session may send the supervisor (it is buffered there whole).
    public var maxResultBytes: Int = 256 << 20
    /// Serve every text connection from one long-lived R, as the seed server did.
    public var sharedSession: Bool = false
    /// How long a new connection may wait for a free worker before it is told the server is busy.
    public var workerWaitTimeout: Duration = .seconds(30)
    /// How long shutdown waits for running sessions before stopping them.
    public var shutdownGrace: Duration = .seconds(10)
    /// The log level name (`info` by default).
    public var logLevel: String = "info"
    /// The worker executable (the zygote; defaults to `rgate-worker` beside this program).
    public var workerExecutable: String? = nil

    /// The defaults.
    public init() {}
}

extension Duration {
    var milliseconds: UInt32 {
        let c = components
        return UInt32(clamping: c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
    }
}
