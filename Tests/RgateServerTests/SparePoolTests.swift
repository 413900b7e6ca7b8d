@testable import RgateServer
import Testing

/// The spare pool's transitions, with plain numbers for spare processes.
@Suite("Spare pool (no processes)")
struct SparePoolTests {
    static func names(_ actions: [SparePool<Int>.Action]) -> [String] {
        actions.map {
            switch $0 {
            case .spawn(let n): "spawn \(n)"
            case .hand(let spare, let id): "hand \(spare) to \(id)"
            case .discard(let spare): "discard \(spare)"
            case .fail(let id, let error): "fail \(id) \(error == .stopping ? "stopping" : "busy")"
            }
        }
    }

    @Test func fillsToTheTargetOnceRIsUpAndReplacesWhatIsTaken() {
        var p = SparePool<Int>(target: 2)
        let (generation, orphans) = p.zygoteStarting()
        #expect(orphans.isEmpty)
        #expect(Self.names(p.replenish()) == []) // no zygote up yet
        #expect(Self.names(p.zygoteReady(generation: generation)) == ["spawn 2"])
        #expect(Self.names(p.replenish()) == []) // two on their way
        #expect(p.arrived(1, generation: generation).isEmpty)
        #expect(p.arrived(2, generation: generation).isEmpty)
        #expect(p.tryCheckout() == 1)
        #expect(Self.names(p.replenish()) == ["spawn 1"])
        guard case .spare(2) = p.checkout(id: 7) else { Issue.record("no spare"); return }
        #expect(p.spares.isEmpty)
    }

    @Test func waitersGetTheNextSpareInOrderAndTheirOwnFork() {
        var p = SparePool<Int>(target: 1)
        let (g, _) = p.zygoteStarting()
        _ = p.zygoteReady(generation: g) // spawn 1
        guard case .wait(let a) = p.checkout(id: 1) else { Issue.record("no wait"); return }
        #expect(Self.names(a) == ["spawn 1"]) // target + one waiter - one pending
        guard case .wait(let b) = p.checkout(id: 2) else { Issue.record("no wait"); return }
        #expect(Self.names(b) == ["spawn 1"])
        #expect(Self.names(p.arrived(10, generation: g)) == ["hand 10 to 1"])
        #expect(p.withdraw(id: 2) == true) // timed out
        #expect(p.withdraw(id: 2) == false)
        #expect(Self.names(p.arrived(11, generation: g)) == [])
        #expect(p.spares == [11])
    }

    @Test func aDeadZygotesSparesAreDroppedAndLateOnesDiscarded() {
        var p = SparePool<Int>(target: 2)
        let (g1, _) = p.zygoteStarting()
        _ = p.zygoteReady(generation: g1)
        _ = p.arrived(1, generation: g1)
        _ = p.arrived(2, generation: g1)
        guard case .spare(1) = p.checkout(id: 4) else { Issue.record("expected spare 1"); return }
        let exited = p.zygoteExited(generation: g1)
        #expect(exited.current)
        #expect(Self.names(exited.actions) == ["discard 2"]) // it died with its zygote
        guard case .wait(let none) = p.checkout(id: 5) else { Issue.record("expected a wait"); return }
        #expect(none.isEmpty) // no zygote to ask
        let (g2, _) = p.zygoteStarting()
        #expect(g2 == g1 + 1)
        #expect(Self.names(p.arrived(9, generation: g1)) == ["discard 9"]) // from the dead zygote
        // The waiter keeps waiting for the new zygote, which is asked for it.
        #expect(Self.names(p.zygoteReady(generation: g2)) == ["spawn 3"])
        #expect(Self.names(p.arrived(20, generation: g2)) == ["hand 20 to 5"])
        #expect(p.zygoteExited(generation: g1).current == false)
    }

    @Test func stoppingFailsWaitersAndClosesSpares() {
        var p = SparePool<Int>(target: 1)
        let (g, _) = p.zygoteStarting()
        _ = p.zygoteReady(generation: g)
        guard case .wait = p.checkout(id: 1) else { Issue.record("no wait"); return }
        guard case .wait = p.checkout(id: 2) else { Issue.record("no wait"); return }
        #expect(Self.names(p.arrived(3, generation: g)) == ["hand 3 to 1"])
        #expect(Self.names(p.stop()) == ["fail 2 stopping"])
        guard case .refused(.stopping) = p.checkout(id: 4) else { Issue.record("checked out while stopping"); return }
        #expect(Self.names(p.arrived(5, generation: g)) == ["discard 5"])
        #expect(Self.names(p.replenish()) == [])
    }

    @Test func aZygoteThatCannotRestartFailsEveryWaiter() {
        var p = SparePool<Int>(target: 1)
        let (g, _) = p.zygoteStarting()
        _ = p.zygoteReady(generation: g)
        _ = p.checkout(id: 1)
        _ = p.checkout(id: 2)
        _ = p.zygoteExited(generation: g)
        #expect(Self.names(p.zygoteFailed()) == ["fail 1 stopping", "fail 2 stopping"])
    }
}
