internal import CRgateSystem
import Logging
import RgateIPC
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A session process forked by the zygote, waiting for a client.
struct SpareWorker: Sendable {
    let pid: Int32
    let control: ControlSocket
}

/// Owns the zygote process and the warm spare session processes it forks.
///
/// A dedicated thread reads the zygote's socket (spares arriving, exits being reported). A
/// checkout takes a spare at once when one is ready, otherwise waits for the next; every checkout
/// asks the zygote for a replacement, so the pool refills while the session runs. If the zygote
/// dies, it is started again (and its spares, which die with it, are dropped).
final class WorkerPool: Sendable {
    private struct State {
        var zygote: (pid: Int32, control: ControlSocket)?
        var pool: SparePool<SpareWorker>
        var nextWaiterID: UInt64 = 0
        /// Waiting for the zygote to exit (``waitForExit(timeout:)``).
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let waiters = Waiters<Result<SpareWorker, PoolError>>()
    private let configuration: ServerConfiguration
    private let executable: String
    private let logger: Logger
    /// Called with (pid, wait status) when the zygote reports a session process's exit.
    let onExit: @Sendable (Int32, Int32) -> Void
    /// Resumed once, when the first zygote is ready (true) or died before that (false).
    private let ready = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    private let rsaPublicKeyDER: [UInt8]?
    private let events: ServerEvents

    init(configuration: ServerConfiguration, logger: Logger, events: ServerEvents, rsaPublicKeyDER: [UInt8]?, onExit: @escaping @Sendable (Int32, Int32) -> Void) throws {
        self.events = events
        state = Mutex(State(pool: SparePool(target: configuration.warmWorkers)))
        self.rsaPublicKeyDER = rsaPublicKeyDER
        self.configuration = configuration
        self.logger = logger
        self.onExit = onExit
        if let path = configuration.workerExecutable {
            executable = path
        } else {
            executable = try Self.defaultWorkerExecutable()
        }
    }

    /// `rgate-worker` beside the running executable (how `swift build` and installs lay them out).
    static func defaultWorkerExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { throw SystemError("readlink /proc/self/exe") }
        let me = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = me.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let worker = directory + "/rgate-worker"
        guard access(worker, X_OK) == 0 else {
            throw SystemError("the worker executable \(worker) is missing (it is built with rgate: swift build; or set worker_executable)", errno: ENOENT)
        }
        return worker
    }

    /// Starts the zygote and waits until R is up in it.
    func start() async throws {
        let started = await withCheckedContinuation { continuation in
            ready.withLock { $0 = continuation }
            do { try startZygote() } catch { announce(false) }
        }
        guard started else { throw SystemError("the worker process did not start; see the log above", errno: ECHILD) }
    }

    private func announce(_ started: Bool) {
        ready.withLock { c in
            c?.resume(returning: started)
            c = nil
        }
    }

    private func startZygote() throws {
        let (mine, theirs) = try ControlSocket.pair()
        var env: [String] = []
        var seen = Set<String>()
        let baseOverrides = [
            "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "SWIFT_BACKTRACE": "enable=no",
            // Resolve every symbol once in the zygote instead of lazily in each forked session.
            "LD_BIND_NOW": "1",
        ]
        var overrides = baseOverrides
        // Roles (no secrets: passwords and the RSA private key stay in the supervisor).
        overrides["RGATE_POLICY"] = configuration.policy.encoded()
        if let der = rsaPublicKeyDER {
            overrides["RGATE_RSA_PUBLIC_KEY"] = hexString(der)
        }
        overrides["RGATE_SESSION_UIDS"] = configuration.sessionUIDs ? "on" : "off"
        // Transparent huge pages for R's heap in the zygote: every fork copies (and every exit
        // frees) far fewer page-table entries; measured ~1.6-1.9x more fresh sessions per second.
        let tunables = getenv("GLIBC_TUNABLES").map { String(cString: $0) }
        if tunables?.contains("glibc.malloc.hugetlb") != true {
            overrides["GLIBC_TUNABLES"] = [tunables, "glibc.malloc.hugetlb=1"].compactMap { $0 }.joined(separator: ":")
        }
        overrides["RGATE_MAX_PROCESSES"] = String(configuration.maxProcesses)
        for (key, value) in overrides {
            env.append("\(key)=\(value)")
            seen.insert(key)
        }
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            let key = String(s.prefix { $0 != "=" })
            if !seen.contains(key) { env.append(s) }
            p += 1
        }
        if getenv("R_HOME") == nil, access("/usr/lib/R/bin/R", X_OK) == 0 {
            env.append("R_HOME=/usr/lib/R")
            // Debian splits R: what R.home("share"), R.home("doc") and R.home("include") name
            // lives under /usr/share/R (the R front-end script sets these; an embedding must too).
            for (key, path) in [("R_SHARE_DIR", "/usr/share/R/share"), ("R_DOC_DIR", "/usr/share/R/doc"), ("R_INCLUDE_DIR", "/usr/share/R/include")]
            where getenv(key) == nil && access(path, R_OK) == 0 {
                env.append("\(key)=\(path)")
            }
        }
        let argv = [executable]
        let pid = try withCStrings(argv) { cArgv in
            try withCStrings(env) { cEnv in
                let map: [Int32] = [-1, 2, 2, theirs.descriptor]
                let pid = rgs_spawn(executable, cArgv, cEnv, map, Int32(map.count))
                guard pid > 0 else { throw SystemError("spawn \(executable)") }
                return pid
            }
        }
        theirs.close()
        let (generation, orphans) = state.withLock { s -> (Int, [SparePool<SpareWorker>.Action]) in
            s.zygote = (pid, mine)
            return s.pool.zygoteStarting()
        }
        run(orphans)
        logger.info("worker process started", metadata: ["worker.pid": "\(pid)"])
        events.emit(.zygoteStarted(pid: pid, restart: generation > 1))
        Thread.detach(name: "rgate-zygote-reader") { [self] in readZygote(pid: pid, control: mine, generation: generation) }
    }

    private func readZygote(pid: Int32, control: ControlSocket, generation: Int) {
        var announced = false
        while true {
            let received: (message: ControlMessage, descriptor: Int32?)?
            do { received = try control.receive() } catch {
                logger.error("worker control socket failed: \(error)")
                received = nil
            }
            guard let received else { break }
            switch received.message {
            case .zygoteReady(_, let micros):
                logger.info("R is ready in the worker process", metadata: ["worker.pid": "\(pid)", "startup.ms": "\(micros / 1000)"])
                if !announced { announced = true; announce(true) }
                run(state.withLock { $0.pool.zygoteReady(generation: generation) })
            case .spawned(let child):
                guard let fd = received.descriptor else { continue }
                run(state.withLock { $0.pool.arrived(SpareWorker(pid: child, control: ControlSocket(descriptor: fd)), generation: generation) })
            case .exited(let child, let status):
                onExit(child, status)
            default:
                if let fd = received.descriptor { close(fd) }
            }
        }
        // The zygote is gone.
        control.close()
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let (stopping, current, orphans, exitWaiters) = state.withLock { s -> (Bool, Bool, [SparePool<SpareWorker>.Action], [CheckedContinuation<Void, Never>]) in
            let (current, orphans) = s.pool.zygoteExited(generation: generation)
            var waiters: [CheckedContinuation<Void, Never>] = []
            if current {
                s.zygote = nil
                if s.pool.stopping { waiters = s.exitWaiters; s.exitWaiters.removeAll() }
            }
            return (s.pool.stopping, current, orphans, waiters)
        }
        run(orphans)
        exitWaiters.forEach { $0.resume() }
        if !announced { announce(false) }
        guard current, !stopping, announced else { return }
        logger.error("the worker process exited unexpectedly; starting a new one", metadata: ["worker.pid": "\(pid)", "wait.status": "\(status)"])
        do {
            try startZygote()
        } catch {
            logger.critical("cannot restart the worker process: \(error)")
            run(state.withLock { $0.pool.zygoteFailed() })
        }
    }

    /// Runs what the spare pool decided, outside the lock.
    private func run(_ actions: [SparePool<SpareWorker>.Action]) {
        for action in actions {
            switch action {
            case .spawn(let count):
                guard let control = state.withLock({ $0.zygote?.control }) else { continue }
                do { try control.send(.spawn(count: count)) } catch {
                    logger.error("cannot ask the worker process for sessions: \(error)")
                }
            case .hand(let spare, let id):
                waiters.resume(id, with: .success(spare))
            case .discard(let spare):
                spare.control.close()
            case .fail(let id, let error):
                waiters.resume(id, with: .failure(error))
            }
        }
    }

    /// Asks the zygote for replacements; called after a hand-off, so the fork does not delay it.
    func replenish() { run(state.withLock { $0.pool.replenish() }) }

    /// A warm session process if one is ready now.
    func tryCheckout() -> SpareWorker? {
        state.withLock { $0.pool.tryCheckout() }
    }

    /// Takes a warm session process, waiting up to the configured time for one (the caller asks
    /// for a replacement after its hand-off: ``replenish()``).
    func checkout() async throws(PoolError) -> SpareWorker {
        let (id, result) = state.withLock { s -> (UInt64, SparePool<SpareWorker>.Checkout) in
            s.nextWaiterID += 1
            return (s.nextWaiterID, s.pool.checkout(id: s.nextWaiterID))
        }
        switch result {
        case .spare(let spare):
            return spare
        case .refused(let error):
            throw error
        case .wait(let actions):
            run(actions)
            let outcome = await waiters.wait(id, timeout: configuration.workerWaitTimeout, timedOut: .failure(.busy)) {
                self.state.withLock { $0.pool.withdraw(id: id) }
            }
            return try outcome.get()
        }
    }

    /// Stops the zygote; it kills every session process it forked before it exits.
    func stop() {
        let (zygote, actions) = state.withLock { s in (s.zygote, s.pool.stop()) }
        run(actions)
        if let zygote {
            shutdown(zygote.control.descriptor, Int32(SHUT_RDWR))
        }
    }

    /// Waits (bounded) until the zygote has exited after ``stop()``; kills it if it has not.
    func waitForExit(timeout: Duration) async {
        await awaitCondition(timeout: timeout) { continuation in
            self.state.withLock { s in
                if s.zygote == nil { return true }
                s.exitWaiters.append(continuation)
                return false
            }
        } unpark: {
            self.state.withLock { s in defer { s.exitWaiters.removeAll() }; return s.exitWaiters }
        }
        if let pid = state.withLock({ $0.zygote?.pid }) { kill(pid, SIGKILL) }
    }
}

/// Why no worker could be had.
enum PoolError: Error, Hashable, CustomStringConvertible {
    case busy
    case stopping

    var description: String {
        switch self {
        case .busy: "every R worker is busy; try again later"
        case .stopping: "the server is shutting down"
        }
    }
}

func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> T) rethrows -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
