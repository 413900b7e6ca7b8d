internal import CRgateSystem
import RgateEngine
import RgateIPC
#if canImport(Glibc)
import Glibc
#endif

/// A process forked from the zygote that serves one client session (or, in shared mode, one
/// client after another) with its own copy of R, then exits.
struct SessionProcess {
    let engine: REngine
    let settings: WorkerSettings
    let control: ControlSocket

    func run() -> Never {
        rgs_set_process_name("rgate-session")
        rgs_session_signals()
        let directory: String
        do {
            directory = try engine.adoptForkedProcess()
            if getppid() == 1 { engine.exitProcess(status: 0) } // the zygote went away meanwhile
        } catch {
            WorkerLog.error("\(error)")
            engine.exitProcess(status: 71)
        }
        // No pre-touch request here: the zygote's warm-up already paid R's JIT and Swift's lazy
        // binding; touching more pages as a spare cost memory per session (0.73 vs 0.46 MB PSS)
        // and CPU per session (QAP1 fresh sessions 604 vs 755/s) for ~0.2 ms of first-request latency.
        // Entered once per process (a shared session keeps it for every client).
        let sandbox = SessionSandbox(settings: settings, directory: directory)
        if !settings.policy.hasUsers, let name = settings.policy.anonymousRole, let role = settings.policy.roles[name] {
            // Nobody can log in to another role: confine the spare now, off the client's path.
            guard sandbox.enter(role) else { engine.exitProcess(status: 71) }
        }
        while true {
            let received: (message: ControlMessage, descriptor: Int32?)?
            do { received = try control.receive() } catch { received = nil }
            guard let received else { engine.exitProcess(status: 0) } // supervisor gone or pool shrinking
            guard case .assign(let assignment) = received.message, let client = received.descriptor else {
                if let fd = received.descriptor { close(fd) }
                continue
            }
            applyLimits(assignment, sandbox: sandbox)
            sandbox.client = client
            let reason = serve(client: client, assignment: assignment, sandbox: sandbox)
            shutdown(client, Int32(SHUT_RDWR))
            close(client)
            if !assignment.sharedSession || reason == .quit {
                sandbox.killStrays()
                try? control.send(.ended(reason: reason))
                engine.exitProcess(status: 0)
            }
            try? control.send(.ended(reason: reason))
        }
    }

    /// Instantiates, in the zygote, the type metadata a session's own code asks for at run time
    /// (the runtime builds it on first use, writing its caches: done in each session, that is a
    /// few more pages copied per session). Found with `Benchmarks/session-cost.py --perf`'s
    /// written-page profile.
    @_optimize(none)
    static func warmUpTypes() {
        let types: [Any.Type] = [
            (message: ControlMessage, descriptor: Int32?).self,
            Optional<(message: ControlMessage, descriptor: Int32?)>.self,
        ]
        withExtendedLifetime(types) {}
    }

    /// Per-session resource limits, set once the session knows who it serves.
    private func applyLimits(_ a: SessionAssignment, sandbox: SessionSandbox) {
        _ = rgs_set_limit(rgs_rlimit_core(), 0) // no core dumps of session memory
        if a.memoryLimitBytes > 0, sandbox.roleMemoryLimit == nil { _ = rgs_set_limit(rgs_rlimit_data(), a.memoryLimitBytes) }
        if a.fileSizeLimitBytes > 0 {
            rgs_ignore_sigxfsz()
            _ = rgs_set_limit(rgs_rlimit_fsize(), a.fileSizeLimitBytes)
        }
        if a.openFilesLimit > 0 { _ = rgs_set_limit(rgs_rlimit_nofile(), UInt64(a.openFilesLimit)) }
    }

    private func serve(client: Int32, assignment: SessionAssignment, sandbox: SessionSandbox) -> SessionEndReason {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        ClientConnection(descriptor: client).setIdleTimeout(milliseconds: assignment.idleTimeoutMilliseconds)
        switch assignment.wireProtocol {
        case .text:
            // The text protocol has no login: it serves only the anonymous role (the supervisor
            // does not hand text connections over when there is none).
            let access = SessionAccess(settings: settings, anonymousRole: assignment.anonymousRole)
            guard let role = access.role, sandbox.enter(role) else { return .protocolError }
            var session = TextSession(engine: engine, client: ClientConnection(descriptor: client), assignment: assignment, control: control, access: access)
            return session.serve()
        case .bridge:
            // The supervisor drives this session itself; the role is the one it authenticated.
            var access = SessionAccess(settings: settings, anonymousRole: "")
            guard access.adopt(roleNamed: assignment.anonymousRole, user: assignment.user.isEmpty ? nil : assignment.user),
                  let role = access.role, sandbox.enter(role) else {
                BridgeSession.refuse(ClientConnection(descriptor: client), "rgate: this session process cannot be confined for role \(assignment.anonymousRole)")
                return .protocolError
            }
            var session = BridgeSession(engine: engine, client: ClientConnection(descriptor: client), assignment: assignment, control: control, access: access)
            return session.serve()
        case .qap1, .ocap:
            return QAP1Session(engine: engine, client: ClientConnection(descriptor: client), assignment: assignment, control: control, settings: settings, sandbox: sandbox).serve()
        default:
            WorkerLog.error("session \(assignment.sessionID): unsupported protocol \(assignment.wireProtocol)")
            return .protocolError
        }
    }
}
