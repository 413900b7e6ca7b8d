/// The warm spare session processes, as a pure value: which spares are ready, how many forks
/// are on their way, who waits for one, and what to ask the zygote for. Transitions return the
/// actions for ``WorkerPool`` to run; tests drive it with no processes.
///
/// Every checkout asks for a replacement (after the hand-off, so the fork never delays it), and
/// the zygote is asked for enough spares to cover the target plus every waiter. When the zygote
/// dies, its spares die with it and are dropped; waiters keep waiting for the next zygote.
struct SparePool<Spare: Sendable> {
    /// What the pool's owner does.
    enum Action {
        /// Ask the zygote to fork this many more spares.
        case spawn(UInt32)
        /// Give `spare` to waiter `id`.
        case hand(Spare, to: UInt64)
        /// Close a spare nobody will use (it exits).
        case discard(Spare)
        /// Fail waiter `id`.
        case fail(UInt64, PoolError)
    }

    /// What a checkout gets.
    enum Checkout {
        case spare(Spare)
        case wait([Action])
        case refused(PoolError)
    }

    /// Spares kept warm.
    let target: Int
    private(set) var spares: [Spare] = []
    private(set) var pendingSpawns = 0
    private(set) var waiters: [UInt64] = []
    private(set) var stopping = false
    /// Whether a zygote is up and can fork.
    private(set) var zygoteUp = false
    /// Increases with every zygote started.
    private(set) var generation = 0

    init(target: Int) { self.target = target }

    /// A new zygote is starting (R not up yet): spares of the old one are gone.
    mutating func zygoteStarting() -> (generation: Int, actions: [Action]) {
        generation += 1
        zygoteUp = false
        let orphans = spares.map { Action.discard($0) }
        spares.removeAll()
        pendingSpawns = 0
        return (generation, orphans)
    }

    /// R is up in zygote `generation`: fill the pool.
    mutating func zygoteReady(generation: Int) -> [Action] {
        guard generation == self.generation, !stopping else { return [] }
        zygoteUp = true
        return refill()
    }

    /// Zygote `generation` exited: its spares are gone. Whether it was the current one.
    mutating func zygoteExited(generation: Int) -> (current: Bool, actions: [Action]) {
        guard generation == self.generation else { return (false, []) }
        zygoteUp = false
        let orphans = spares.map { Action.discard($0) }
        spares.removeAll()
        pendingSpawns = 0
        return (true, orphans)
    }

    /// No zygote can be started: every waiter fails.
    mutating func zygoteFailed() -> [Action] {
        defer { waiters.removeAll() }
        return waiters.map { .fail($0, .stopping) }
    }

    /// A spare arrived from zygote `generation`.
    mutating func arrived(_ spare: Spare, generation: Int) -> [Action] {
        guard generation == self.generation, !stopping else { return [.discard(spare)] }
        pendingSpawns = max(0, pendingSpawns - 1)
        if !waiters.isEmpty { return [.hand(spare, to: waiters.removeFirst())] }
        spares.append(spare)
        return []
    }

    /// A spare if one is ready now (the caller asks for a replacement after its hand-off).
    mutating func tryCheckout() -> Spare? {
        spares.isEmpty ? nil : spares.removeFirst()
    }

    /// A spare now, or a place in the queue for waiter `id`.
    mutating func checkout(id: UInt64) -> Checkout {
        if stopping { return .refused(.stopping) }
        if !spares.isEmpty { return .spare(spares.removeFirst()) }
        waiters.append(id)
        return .wait(refill())
    }

    /// Waiter `id` gives up: true when it was still waiting.
    mutating func withdraw(id: UInt64) -> Bool {
        guard let i = waiters.firstIndex(of: id) else { return false }
        waiters.remove(at: i)
        return true
    }

    /// Asks for replacements (after a hand-off).
    mutating func replenish() -> [Action] { refill() }

    /// The server stops: waiters fail, spares close, nothing more is asked for.
    mutating func stop() -> [Action] {
        stopping = true
        defer {
            waiters.removeAll()
            spares.removeAll()
        }
        return waiters.map { .fail($0, .stopping) } + spares.map { .discard($0) }
    }

    private mutating func refill() -> [Action] {
        guard zygoteUp, !stopping else { return [] }
        let wanted = target + waiters.count - spares.count - pendingSpawns
        guard wanted > 0 else { return [] }
        pendingSpawns += wanted
        return [.spawn(UInt32(wanted))]
    }
}
