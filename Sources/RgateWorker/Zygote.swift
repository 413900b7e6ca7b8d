internal import CRgateSystem
public import RgateEngine
public import RgateIPC
import RgatePolicy
#if canImport(Glibc)
import Glibc
#endif

/// The worker process (`rgate-worker`): starts R once, then forks session processes on demand.
///
/// The zygote is strictly single-threaded (fork is only safe then) and never evaluates client
/// code. Each forked session process inherits the warm R (copy-on-write), gets its own temp and
/// working directory, waits for a client from the supervisor, serves it and exits. The zygote
/// reaps session processes and reports their exit status; when the supervisor goes away (its end
/// of the control socket closes) it kills every session process and exits, so nothing outlives it.
public enum Zygote {
    /// Runs the zygote on the calling (main) thread; never returns.
    /// - Parameter control: the socket to the supervisor (fd 3 when spawned by `rgate serve`).
    public static func run(control: ControlSocket) -> Never {
        rgs_set_process_name("rgate-zygote")
        rgs_zygote_signals()
        let clock = ContinuousClock()
        let start = clock.now
        let engine: REngine
        do {
            engine = try REngine.start()
        } catch {
            WorkerLog.error("R did not start: \(error)")
            exit(70)
        }
        let settings = WorkerSettings()
        do {
            if let json = getenv("RGATE_POLICY").map({ String(cString: $0) }) {
                settings.policy = try SecurityPolicy(json: json)
            }
            // Caller roles' scripts and functions: loaded once here, shared by every session.
            settings.callers = try CallerRuntime.prepare(settings.policy, engine: engine)
            settings.errorMessageFunction = try CallerRuntime.errorMessageFunction(engine: engine)
            engine.resetSessionState()
        } catch {
            WorkerLog.error("cannot load the security policy: \(error)")
            exit(78)
        }
        if let hex = getenv("RGATE_RSA_PUBLIC_KEY").map({ String(cString: $0) }) {
            settings.rsaPublicKeyDER = decodeHex(hex)
        }
        warmUp(engine, settings: settings)
        let startup = clock.now - start
        let threads = rgs_thread_count()
        guard threads == 1 else {
            WorkerLog.error("the zygote must be single-threaded to fork safely, but it has \(threads) threads")
            exit(70)
        }
        if getuid() == 0, getenv("RGATE_SESSION_UIDS").map({ String(cString: $0) }) != "off" {
            settings.uidBase = 100_000
        }
        // A network namespace with nothing in it, for sessions whose role has no network.
        let isolated = rgs_netns_prepare()
        if isolated == -2 {
            WorkerLog.error("lost the network namespace while preparing isolation")
            exit(70)
        }
        if isolated >= 0 { settings.isolatedNetwork = isolated }
        WorkerLog.info(
            "sandbox: per-session users \(settings.uidBase != nil ? "on" : "off (not root, or session_uids: off)"); "
                + "network isolation \(isolated >= 0 ? "on" : "off (needs root: errno \(errno))")")
        if let limit = getenv("RGATE_MAX_PROCESSES").flatMap({ UInt32(String(cString: $0)) }) {
            settings.maxProcesses = limit
        }
        let sigchld = rgs_sigchld_fd()
        guard sigchld >= 0 else {
            WorkerLog.error("signalfd failed: errno \(errno)")
            exit(70)
        }
        let me = getpid()
        let micros = UInt64(startup.components.seconds) * 1_000_000 + UInt64(startup.components.attoseconds / 1_000_000_000_000)
        do {
            try control.send(.zygoteReady(pid: me, startupMicroseconds: micros))
        } catch {
            exit(0)
        }

        var children = Set<pid_t>(minimumCapacity: 256)
        var deadlines = SessionDeadlines()
        // The loop allocates nothing and writes as little memory as it can: every page the
        // zygote writes after a fork is one more page copied (the child keeps the old one), so
        // it costs each session a page. The poll set and the message buffer live on the stack,
        // messages are read and written in place. The buffer is small (the zygote receives
        // nothing but 5-byte spawn requests; a longer message arrives cut short, is no spawn
        // request and is ignored), so the loop's frames span fewer stack pages.
        withUnsafeTemporaryAllocation(of: pollfd.self, capacity: 2) { fds in
            withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { buffer in
                fds[0] = pollfd(fd: control.descriptor, events: Int16(POLLIN), revents: 0)
                fds[1] = pollfd(fd: sigchld, events: Int16(POLLIN), revents: 0)
                prepareHeapForSessions()
                while true {
                    let n = poll(fds.baseAddress, 2, deadlines.pollTimeoutMilliseconds(sessions: children.count))
                    if n < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    deadlines.scan(children)
                    if n == 0 { continue }
                    if fds[1].revents != 0 {
                        rgs_drain_signalfd(sigchld)
                        reap(&children, deadlines: &deadlines, control: control)
                    }
                    if fds[0].revents != 0 {
                        let received: (bytes: UnsafeRawBufferPointer, descriptor: Int32?)?
                        do { received = try control.receiveRaw(into: buffer) } catch { received = nil }
                        guard let received else { return } // supervisor gone
                        if let fd = received.descriptor { close(fd) }
                        // The supervisor sends the zygote nothing but spawn requests.
                        guard let count = ControlMessage.spawnCount(in: received.bytes) else { continue }
                        for _ in 0..<count {
                            if let pid = fork(engine: engine, settings: settings, control: control, sigchld: sigchld, deadlinePage: deadlines.enabled) {
                                children.insert(pid)
                            }
                        }
                    }
                }
            }
        }
        // The supervisor is gone: no session may outlive it.
        for pid in children { kill(pid, SIGKILL) }
        for pid in children { var status: Int32 = 0; waitpid(pid, &status, 0) }
        engine.exitProcess(status: 0)
    }

    /// Runs what every session runs (the evaluator, printing, conditions) once, so R's JIT
    /// compiles it here instead of in every forked session (that costs ~40 ms per session). Once
    /// is enough (R compiles closures before their first use); more rounds only grow the heap
    /// every fork copies (3 rounds: 53 MB anonymous, 1 round: 43 MB; ~6% more sessions/s).
    static func warmUp(_ engine: REngine, settings: WorkerSettings) {
        let samples = [
            "1+1", "x <- c(a = 1.5, b = NA); x", "'text'", "list(1, 'a')", "summary(c(1, 2, 3))",
            "f <- function() { warning('w'); message('m'); invisible(1) }; f()", "stop('e')", "1 +", "x y",
            "data.frame(a = 1:2, b = c('x', 'y'))", "factor(c('u', 'v'))", "matrix(1:4, 2)",
            "rm(list = ls())",
        ]
        for code in samples {
            _ = engine.evaluate(code, options: EvaluationOptions(printVisible: true, convertValue: true))
        }
        TextSession.warmUp(engine: engine)
        QAP1Session.warmUp(engine: engine, settings: settings)
        BridgeSession.warmUp(engine: engine, settings: settings)
        SessionProcess.warmUpTypes()
        // Sessions start with an empty global environment, as a fresh R does.
        _ = engine.evaluate("rm(list = ls(all.names = TRUE))", options: EvaluationOptions(printVisible: false, convertValue: false))
        // Collect now: children then start far from a collection, which would touch (and so
        // copy-on-write) every page of the heap they share with the zygote.
        _ = engine.evaluate("invisible(gc(full = TRUE))", options: EvaluationOptions(printVisible: false, convertValue: false))
        // Sessions must not see the warm-up: no error message, no warnings, no last value.
        engine.resetSessionState()
        // Give freed heap back: every fork copies the page tables of what stays mapped.
        rgs_malloc_trim()
    }

    /// Readies malloc's heap for forking, as the zygote's last step before its loop (so that
    /// nothing it frees afterwards lands where sessions allocate first).
    static func prepareHeapForSessions() {
        // Take what stays on malloc's free lists out of use: sessions' allocations would
        // land in those scattered old chunks and copy a page each (an idle QAP1 session wrote
        // ~81 heap pages, ~37 with this; PSS per idle session 0.52 -> 0.35 MB, see
        // ARCHITECTURE.md).
        var chunks = 0
        let bytes = rgs_malloc_set_aside_free_chunks(&chunks)
        // Sessions allocate from the heap's untouched end: room for a session's first requests
        // without growing the heap, in 4 KiB pages, not 2 MiB ones (in ~1 zygote of 10, an idle
        // QAP1 session wrote ~575 pages instead of ~60: a whole huge page).
        let top = rgs_malloc_prepare_top(4 << 20)
        WorkerLog.info("malloc: \(bytes >> 10) KiB in \(chunks) free chunks set aside, so sessions allocate in fresh pages; \(top >> 10) KiB at the top in small pages")
    }

    private static func reap(_ children: inout Set<pid_t>, deadlines: inout SessionDeadlines, control: ControlSocket) {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            children.remove(pid)
            let reported = deadlines.reaped(pid, status: status)
            try? control.sendExited(pid: pid, waitStatus: reported)
        }
    }

    private static func fork(engine: REngine, settings: WorkerSettings, control: ControlSocket, sigchld: Int32, deadlinePage: Bool) -> pid_t? {
        let pair: (ControlSocket, ControlSocket)
        do { pair = try ControlSocket.pair() } catch {
            WorkerLog.error("cannot create a session socket: \(error)")
            return nil
        }
        let (supervisorEnd, sessionEnd) = pair
        let zygote = getpid()
        let pid = rgs_fork()
        if pid < 0 {
            WorkerLog.error("fork failed: errno \(errno)")
            supervisorEnd.close()
            sessionEnd.close()
            return nil
        }
        if pid == 0 {
            close(control.descriptor)
            close(sigchld)
            supervisorEnd.close()
            rgs_reset_signals()
            _ = rgs_set_parent_death_signal(SIGKILL)
            if getppid() != zygote { _exit(0) } // the zygote died between fork and prctl
            // Its own deadline page (the zygote enforces the hard time limit); without one, the
            // sandbox starts a watchdog thread.
            if deadlinePage, rgs_deadline_attach() != 0 {
                WorkerLog.error("cannot map the session's deadline page: errno \(errno)")
            }
            SessionProcess(engine: engine, settings: settings, control: sessionEnd).run()
        }
        sessionEnd.close()
        do {
            try control.sendSpawned(pid: pid, passing: supervisorEnd.descriptor)
        } catch {
            kill(pid, SIGKILL)
        }
        supervisorEnd.close()
        return pid
    }
}

/// Minimal logging for worker processes (they must not start logging threads): one line to stderr.
enum WorkerLog {
    static func error(_ message: String) { write("error", message) }
    static func info(_ message: String) { write("info", message) }

    private static func write(_ level: String, _ message: String) {
        let line = "rgate-worker[\(getpid())] \(level): \(message)\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// What every session process of this worker shares, loaded once in the zygote.
///
/// A class: sessions hold one reference to it, so passing it around retains one object rather
/// than each of its dictionaries and arrays (a retain writes the object's reference count, and
/// each page written in a forked session is a page copied). Set up by the zygote, then only read.
final class WorkerSettings {
    /// Roles and who may connect (no secrets: logins are checked by the supervisor).
    var policy = SecurityPolicy()
    /// Caller roles' resolved functions, by role name.
    var callers: [String: CallerRuntime] = [:]
    /// `base::geterrmessage`, which every caller may call (pyRserve asks for it after an error).
    var errorMessageFunction: RObject?
    /// When the worker runs as root: each session process becomes its own unprivileged user
    /// (`uidBase` + its pid), so sessions cannot signal or read each other or the server, and
    /// `maxProcesses` limits each one's processes. Nil: sessions keep the worker's user.
    var uidBase: UInt32?
    var maxProcesses: UInt32 = 256
    /// The public half of the RSA login key (DER), which sessions send in `keyReq` answers.
    var rsaPublicKeyDER: [UInt8]?
    /// A network namespace without network (as root), which sessions of roles without
    /// `network: true` enter.
    var isolatedNetwork: Int32?
}

func decodeHex(_ text: String) -> [UInt8]? {
    let digits = Array(text.utf8)
    guard digits.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count / 2)
    func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
    var i = 0
    while i < digits.count {
        guard let hi = value(digits[i]), let lo = value(digits[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
