internal import CRgateSystem
import RgatePolicy
#if canImport(Glibc)
import Glibc
#endif

/// Confines a session process once its role is known, before it runs any of the client's code:
/// the network namespace without network (unless the role has `network: true`), its own
/// unprivileged user (uid 100000 + pid, no groups, a process limit) owning only its own
/// directory, and the role's memory limit. Until then the process only speaks the protocol
/// (identification, login), which needs no privileges it could misuse.
///
/// Entering is one-way: a process that cannot be confined ends instead of running unconfined.
final class SessionSandbox {
    let settings: WorkerSettings
    let directory: String
    /// The current client's socket (its address family decides the detach socket's).
    var client: Int32 = -1
    private(set) var entered = false
    /// Whether the process runs as its own per-session user.
    private(set) var ownsUID = false
    /// TCP sockets made before leaving the host's network, for a later detach (a socket keeps
    /// the namespace it was made in), by address family. Two fields, not a dictionary: a
    /// dictionary type first used in a session instantiates its metadata there, writing pages
    /// the zygote shares.
    private var detachSocketIPv4: Int32?
    private var detachSocketIPv6: Int32?

    /// The role's own memory limit, once entered (it wins over the server's).
    private(set) var roleMemoryLimit: UInt64?
    /// The role the process was confined for (nil in the zygote's warm-up).
    private(set) var enteredRole: Role?

    /// A process confined for one role (a spare, confined ahead of its client for the anonymous
    /// role) asked to serve another (a bridged session the supervisor opened for a user's role):
    /// allowed only where confinement can still be made to match. Entering is one-way, so the
    /// network namespace cannot change, and a memory limit can only be lowered.
    private func reenter(_ role: Role) -> Bool {
        guard let current = enteredRole, current.name != role.name else { return true }
        if settings.isolatedNetwork != nil, current.network != role.network {
            WorkerLog.error("a session confined for role \(current.name) cannot serve role \(role.name): their network access differs")
            return false
        }
        if role.memoryLimitBytes != current.memoryLimitBytes {
            guard let bytes = role.memoryLimitBytes, bytes > 0, rgs_set_limit(rgs_rlimit_data(), bytes) == 0 else {
                WorkerLog.error("a session confined for role \(current.name) cannot take role \(role.name)'s memory limit")
                return false
            }
            roleMemoryLimit = bytes
        }
        enteredRole = role
        return true
    }

    /// Takes the detach socket for the current client's address family, if one was made.
    func takeDetachSocket() -> Int32? {
        switch Self.family(of: client) {
        case AF_INET?:
            defer { detachSocketIPv4 = nil }
            return detachSocketIPv4
        case AF_INET6?:
            defer { detachSocketIPv6 = nil }
            return detachSocketIPv6
        default:
            return nil
        }
    }

    init(settings: WorkerSettings, directory: String) {
        self.settings = settings
        self.directory = directory
    }

    /// A sandbox that counts as entered without confining anything, for the zygote's warm-up
    /// conversation with itself (the zygote runs only its own fixed code, and must keep its
    /// privileges to fork confinable sessions). Never used by a session process.
    static func zygoteWarmUp(settings: WorkerSettings) -> SessionSandbox {
        let sandbox = SessionSandbox(settings: settings, directory: "")
        sandbox.entered = true
        return sandbox
    }

    /// Confines the process for `role` (and starts its time-limit watchdog thread when the zygote
    /// does not enforce its deadline); false when that failed
    /// (the session must end).
    func enter(_ role: Role) -> Bool {
        if entered { return reenter(role) }
        entered = true
        enteredRole = role
        if let isolated = settings.isolatedNetwork {
            if !role.network {
                // A socket for a later detach, made while the host's network is still reachable
                // (for the client's address family; both when entered before any client).
                let family = Self.family(of: client)
                if family == nil || family == AF_INET {
                    let fd = rgs_tcp_socket(AF_INET)
                    if fd >= 0 { detachSocketIPv4 = fd }
                }
                if family == nil || family == AF_INET6 {
                    let fd = rgs_tcp_socket(AF_INET6)
                    if fd >= 0 { detachSocketIPv6 = fd }
                }
                guard rgs_netns_enter(isolated) == 0 else {
                    WorkerLog.error("cannot enter the network namespace: errno \(errno)")
                    return false
                }
            }
            close(isolated)
        }
        if let base = settings.uidBase {
            // Its own user: no signals to or reads of other sessions or the server; fork bombs
            // stop at the process limit.
            let uid = base + UInt32(getpid())
            guard rgs_become_user(uid, uid, directory, settings.maxProcesses, SIGKILL) == 0 else {
                WorkerLog.error("cannot drop the session to uid \(uid): errno \(errno)")
                return false
            }
            // putenv, not setenv: setenv records each value in a search tree built in the
            // zygote, and rebalancing it copies old heap pages into every session. The strings
            // stay for the life of the process, as putenv requires.
            _ = putenv(strdup("HOME=\(directory)"))
            _ = putenv(strdup("USER=rgate-\(uid)"))
            ownsUID = true
            // Processes a dead earlier session with this uid (same pid, reused) left behind.
            killStrays()
        }
        if let bytes = role.memoryLimitBytes, bytes > 0 {
            _ = rgs_set_limit(rgs_rlimit_data(), bytes)
            roleMemoryLimit = bytes
        }
        // Files the session makes (also in shared places like /tmp) are its own.
        umask(0o077)
        // The hard time limit: the zygote enforces it (SessionDeadlines) when this process has
        // a deadline page; otherwise a watchdog thread, started only now: changing credentials
        // in a process that already has a second thread costs a signal round to it.
        guard rgs_watchdog_start(50) == 0 else {
            WorkerLog.error("cannot start the watchdog thread")
            return false
        }
        return true
    }

    /// Kills every other process of this session's user: what its code started and left running
    /// (`system("cmd &")`, `setsid`), so nothing outlives the session. Only with a uid of its own.
    func killStrays() {
        if ownsUID { kill(-1, SIGKILL) } // Linux: every process this user may signal, not itself
    }

    private static func family(of descriptor: Int32) -> Int32? {
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return ok == 0 ? Int32(address.ss_family) : nil
    }
}
