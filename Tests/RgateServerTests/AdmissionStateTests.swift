@testable import RgateServer
import RgateBridge
import Testing

@Suite("Admission rules (no processes)")
struct AdmissionStateTests {
    @Test func admitsUpToCapacityThenQueuesThenRefuses() {
        var s = AdmissionState(capacity: 2, batchLimit: 1, queueLimit: 1)
        #expect(s.acquire(id: 1, workload: .interactive) == .admitted)
        #expect(s.acquire(id: 2, workload: .interactive) == .admitted)
        #expect(s.acquire(id: 3, workload: .interactive) == .wait)
        #expect(s.acquire(id: 4, workload: .interactive) == .refused)
        #expect(s.release(.interactive) == [3]) // the slot passes on
        #expect(s.active == 2)
        #expect(s.release(.interactive) == [])
        #expect(s.active == 1)
    }

    @Test func batchHoldsAtMostItsShare() {
        var s = AdmissionState(capacity: 3, batchLimit: 1, queueLimit: 10)
        #expect(s.acquire(id: 1, workload: .batch) == .admitted)
        #expect(s.acquire(id: 2, workload: .batch) == .wait) // share full, slots free
        #expect(s.tryAcquire(.batch) == false)
        #expect(s.acquire(id: 3, workload: .interactive) == .admitted) // not behind the batch waiter
        #expect(s.tryAcquire(.interactive) == true)
        #expect(s.active == 3)
        // An interactive slot freed does not go to the batch waiter (its share is still full).
        #expect(s.release(.interactive) == [])
        #expect(s.release(.batch) == [2])
        #expect(s.batch == 1)
    }

    @Test func interactiveWaitersComeFirstAndBatchWaitsBehindEveryone() {
        var s = AdmissionState(capacity: 1, batchLimit: 1, queueLimit: 10)
        #expect(s.acquire(id: 1, workload: .interactive) == .admitted)
        #expect(s.acquire(id: 2, workload: .batch) == .wait)
        #expect(s.acquire(id: 3, workload: .interactive) == .wait)
        #expect(s.tryAcquire(.interactive) == false) // someone waits ahead
        #expect(s.release(.interactive) == [2]) // first come, first served while eligible
        #expect(s.release(.batch) == [3])
    }

    @Test func withdrawingAWaiterOnlyWhileItWaits() {
        var s = AdmissionState(capacity: 1, batchLimit: 1, queueLimit: 10)
        #expect(s.acquire(id: 1, workload: .interactive) == .admitted)
        #expect(s.acquire(id: 2, workload: .interactive) == .wait)
        #expect(s.acquire(id: 3, workload: .interactive) == .wait)
        #expect(s.withdraw(id: 2) == true)
        #expect(s.release(.interactive) == [3])
        #expect(s.withdraw(id: 3) == false) // admitted already: it holds the slot
        #expect(s.active == 1)
    }

    @Test func limitsAreClamped() {
        let s = AdmissionState(capacity: 4, batchLimit: 99, queueLimit: 1)
        #expect(s.batchLimit == 4)
        #expect(AdmissionState.defaultBatchLimit(capacity: 1) == 1)
        #expect(AdmissionState.defaultBatchLimit(capacity: 64) == 32)
    }

    @Test func theGateResumesWaitersAndTimesOut() async {
        let gate = AdmissionGate(capacity: 1, queueLimit: 4)
        #expect(gate.tryAcquire())
        #expect(await gate.acquire(timeout: .milliseconds(50)) == false)
        async let waiting = gate.acquire(timeout: .seconds(5))
        try? await Task.sleep(for: .milliseconds(50))
        gate.release()
        #expect(await waiting)
        #expect(gate.active == 1)
    }
}
