@testable import RgateClient
import Testing

@Suite("FIFOLock", .timeLimit(.minutes(1)))
struct FIFOLockTests {
    @Test("Waiters get the lock in the order they asked for it")
    func arrivalOrder() async throws {
        let lock = FIFOLock<[Int]>([])
        let gate = Signals()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await lock.withLock { _ in gate.fire("held"); await gate.wait("open") } }
            await gate.wait("held")
            for i in 0..<20 {
                group.addTask { try await lock.withLock { $0.append(i) } }
                await until { lock.waiting == i + 1 }
            }
            gate.fire("open")
            try await group.waitForAll()
        }
        #expect(try await lock.withLock { $0 } == Array(0..<20))
        #expect(lock.waiting == 0)
    }

    @Test("A waiter cancelled in the queue leaves it at once and never runs; the others keep their turn")
    func cancelledWaiter() async throws {
        let lock = FIFOLock<[String]>([])
        let gate = Signals()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await lock.withLock { _ in gate.fire("held"); await gate.wait("open") } }
            await gate.wait("held")
            let outcome = await withTaskGroup(of: String.self) { cancelled in
                cancelled.addTask {
                    do {
                        try await lock.withLock { $0.append("b") }
                        return "ran"
                    } catch {
                        return error is CancellationError ? "cancelled" : "\(error)"
                    }
                }
                await until { lock.waiting == 1 }
                group.addTask { try await lock.withLock { $0.append("c") } }
                await until { lock.waiting == 2 }
                cancelled.cancelAll()
                return await cancelled.next()!
            }
            // The holder still holds the lock: "b" left without waiting for it.
            #expect(outcome == "cancelled")
            #expect(lock.waiting == 1)
            gate.fire("open")
            try await group.waitForAll()
        }
        #expect(try await lock.withLock { $0 } == ["c"])
    }

    @Test("A body that throws releases the lock and keeps its changes")
    func throwingBody() async throws {
        struct Oops: Error {}
        let lock = FIFOLock(0)
        await #expect(throws: Oops.self) {
            try await lock.withLock { value in
                value = 1
                throw Oops()
            }
        }
        #expect(try await lock.withLock { $0 } == 1)
    }
}
