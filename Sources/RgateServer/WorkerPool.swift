internal import CRgateSystem
import Logging
public import RgateIPC
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
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<SpareWorker, any Error>
    }

    private struct State {
        var zygote: (pid: Int32, control: ControlSocket)?
        var spares: [SpareWorker] = []
        var pendingSpawns = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var stopping = false
        var generation = 0
    }

    private let state = Mutex(State())
    private let configuration: ServerConfiguration
    private let executable: String
    private let logger: Logger
    /// Called with (pid, wait status) when the zygote reports a session process's exit.
    let onExit: @Sendable (Int32, Int32) -> Void
    /// Resumed once, when the first zygote is ready (true) or died before that (false).
    private let ready = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    private let rsaPublicKeyDER: [UInt8]?

    init(configuration: ServerConfiguration, logger: Logger, rsaPublicKeyDER: [UInt8]?, onExit: @escaping @Sendable (Int32, Int32) -> Void) throws {
        self.rsaPublicKeyDER = rsaPublicKeyDER
        self.configuration = configuration
        self.logger = logger
        self.onExit = onExit
        if let path = configuration.workerExecutable {
            executable = path
        } else {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
            guard n > 0 else { throw SystemError("readlink /proc/self/exe") }
            executable = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
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
        let argv = [executable, "worker"]
        let pid = try withCStrings(argv) { cArgv in
            try withCStrings(env) { cEnv in
                let map: [Int32] = [-1, 2, 2, theirs.descriptor]
                let pid = rgs_spawn(executable, cArgv, cEnv, map, Int32(map.count))
                guard pid > 0 else { throw SystemError("spawn \(executable) worker") }
                return pid
            }
        }
        theirs.close()
        let generation = state.withLock { s -> Int in
            s.zygote = (pid, mine)
            s.generation += 1
            s.spares.removeAll()
            s.pendingSpawns = 0
            return s.generation
        }
        logger.info("worker process started", metadata: ["worker.pid": "\(pid)"])
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
                refill()
            case .spawned(let child):
                guard let fd = received.descriptor else { continue }
                arrived(SpareWorker(pid: child, control: ControlSocket(descriptor: fd)))
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
        let (stopping, current, orphans) = state.withLock { s -> (Bool, Bool, [SpareWorker]) in
            let current = s.generation == generation
            var orphans: [SpareWorker] = []
            if current {
                s.zygote = nil
                orphans = s.spares
                s.spares.removeAll()
                s.pendingSpawns = 0
            }
            return (s.stopping, current, orphans)
        }
        orphans.forEach { $0.control.close() }
        if !announced { announce(false) }
        guard current, !stopping, announced else { return }
        logger.error("the worker process exited unexpectedly; starting a new one", metadata: ["worker.pid": "\(pid)", "wait.status": "\(status)"])
        do {
            try startZygote()
        } catch {
            logger.critical("cannot restart the worker process: \(error)")
            failWaiters(error)
        }
    }

    private func arrived(_ spare: SpareWorker) {
        let waiter = state.withLock { s -> Waiter? in
            s.pendingSpawns = max(0, s.pendingSpawns - 1)
            if s.stopping { return nil }
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.spares.append(spare)
            return nil
        }
        if let waiter {
            waiter.continuation.resume(returning: spare)
        } else if state.withLock({ $0.stopping }) {
            spare.control.close()
        }
    }

    /// Asks the zygote for replacements; called after a hand-off, so the fork does not delay it.
    func replenish() { refill() }

    /// Asks the zygote for enough spares to cover the target plus everyone waiting.
    private func refill() {
        let request = state.withLock { s -> (ControlSocket, UInt32)? in
            guard let zygote = s.zygote, !s.stopping else { return nil }
            let wanted = configuration.warmWorkers + s.waiters.count - s.spares.count - s.pendingSpawns
            guard wanted > 0 else { return nil }
            s.pendingSpawns += wanted
            return (zygote.control, UInt32(wanted))
        }
        if let (control, count) = request {
            do { try control.send(.spawn(count: count)) } catch {
                logger.error("cannot ask the worker process for sessions: \(error)")
            }
        }
    }

    /// A warm session process if one is ready now.
    func tryCheckout() -> SpareWorker? {
        state.withLock { s in s.spares.isEmpty ? nil : s.spares.removeFirst() }
    }

    /// Takes a warm session process, waiting up to the configured time for one.
    func checkout() async throws -> SpareWorker {
        let immediate = state.withLock { s -> SpareWorker? in s.spares.isEmpty ? nil : s.spares.removeFirst() }
        if let immediate { return immediate } // the caller refills after the hand-off (``replenish()``)
        let id = state.withLock { s -> UInt64 in s.nextWaiterID += 1; return s.nextWaiterID }
        let timeout = configuration.workerWaitTimeout
        return try await withThrowingTaskGroup(of: SpareWorker?.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        let stopping = self.state.withLock { s -> Bool in
                            if s.stopping { return true }
                            s.waiters.append(Waiter(id: id, continuation: continuation))
                            return false
                        }
                        if stopping { continuation.resume(throwing: PoolError.stopping) } else { self.refill() }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { s -> Waiter? in
                        guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        return s.waiters.remove(at: i)
                    }
                    waiter?.continuation.resume(throwing: PoolError.busy)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let spare = result { return spare }
                throw PoolError.busy
            }
            throw PoolError.busy
        }
    }

    private func failWaiters(_ error: any Error) {
        let waiters = state.withLock { s -> [Waiter] in defer { s.waiters.removeAll() }; return s.waiters }
        waiters.forEach { $0.continuation.resume(throwing: error) }
    }

    /// Stops the zygote; it kills every session process it forked before it exits.
    func stop() {
        let (zygote, spares, waiters) = state.withLock { s in
            s.stopping = true
            defer { s.spares.removeAll(); s.waiters.removeAll() }
            return (s.zygote, s.spares, s.waiters)
        }
        waiters.forEach { $0.continuation.resume(throwing: PoolError.stopping) }
        spares.forEach { $0.control.close() }
        if let zygote {
            shutdown(zygote.control.descriptor, Int32(SHUT_RDWR))
        }
    }

    /// Waits (bounded) until the zygote has exited.
    func waitForExit(timeout: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if state.withLock({ $0.zygote == nil }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if let pid = state.withLock({ $0.zygote?.pid }) { kill(pid, SIGKILL) }
    }
}

/// Why no worker could be had.
enum PoolError: Error, CustomStringConvertible {
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
