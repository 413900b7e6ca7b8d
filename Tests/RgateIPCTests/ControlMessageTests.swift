import Glibc
import RgateIPC
import Testing

@Suite struct ControlMessageTests {
    static let samples: [ControlMessage] = [
        .spawn(count: 3),
        .zygoteReady(pid: 42, startupMicroseconds: 123_456),
        .spawned(pid: 7),
        .exited(pid: 7, waitStatus: 9),
        .assign(SessionAssignment(
            sessionID: .max, wireProtocol: .text, evalTimeoutMilliseconds: 1500, killGraceMilliseconds: 2000,
            idleTimeoutMilliseconds: 0, maxRequestBytes: 64 << 20, maxOutputBytes: 1 << 20, sharedSession: true,
            allowShutdown: true, memoryLimitBytes: 1 << 30, fileSizeLimitBytes: 1 << 20, openFilesLimit: 256)),
        .assign({
            var a = SessionAssignment(
                sessionID: 9, wireProtocol: .bridge, evalTimeoutMilliseconds: 0, killGraceMilliseconds: 1,
                idleTimeoutMilliseconds: 5, maxRequestBytes: 1, maxOutputBytes: 2, sharedSession: false)
            a.anonymousRole = "scorer"
            a.user = "alice"
            a.peer = "[::1]:5"
            return a
        }()),
        .ended(reason: .quit),
        .shutdownRequested,
        .requestTally({
            var t = RequestTally()
            t.add(.ok, microseconds: 50)
            t.add(.error, microseconds: 5_000)
            t.add(.timeout, microseconds: 60_000_000)
            t.add(.refused, microseconds: 100)
            t.add(.cancelled, microseconds: 101)
            return t
        }()),
    ]

    @Test func requestTallyCountsOutcomesAndBuckets() {
        var t = RequestTally()
        t.add(.ok, microseconds: 100) // on a bound: that bucket
        t.add(.ok, microseconds: 101)
        t.add(.timeout, microseconds: 99_000_000)
        #expect(t.requests == 3)
        #expect(t.timeouts == 1)
        #expect(t.errors == 0)
        #expect(t.totalMicroseconds == 99_000_201)
        #expect(t.buckets == [1, 1, 0, 0, 0, 0, 1])
        var u = RequestTally()
        u.add(.refused, microseconds: 1)
        u.merge(t)
        #expect(u.requests == 4)
        #expect(u.refused == 1)
        #expect(u.buckets == [2, 1, 0, 0, 0, 0, 1])
    }

    @Test func aTallyWithTheWrongBucketCountIsAnError() {
        var bytes = ControlMessage.requestTally(RequestTally()).encoded()
        bytes[1 + 20 + 8] = 3
        #expect(throws: ControlMessageError.self) { try ControlMessage(decoding: bytes) }
    }

    @Test(arguments: samples) func roundTrips(_ message: ControlMessage) throws {
        #expect(try ControlMessage(decoding: message.encoded()) == message)
    }

    @Test(arguments: samples) func truncationIsAnError(_ message: ControlMessage) {
        let bytes = message.encoded()
        for cut in 0..<bytes.count {
            #expect(throws: ControlMessageError.self) { try ControlMessage(decoding: Array(bytes[0..<cut])) }
        }
        #expect(throws: ControlMessageError.self) { try ControlMessage(decoding: bytes + [0]) }
    }

    @Test func unknownTagIsAnError() {
        #expect(throws: ControlMessageError.self) { try ControlMessage(decoding: [0xEE, 1, 2]) }
    }

    /// The zygote's allocation-free paths write and read the same bytes as the general codec.
    @Test(arguments: [Int32(1), 99, 4_194_303, -1, .min, .max])
    func inPlaceMessagesEqualTheCodec(_ pid: Int32) throws {
        let (a, b) = try ControlSocket.pair()
        defer { a.close(); b.close() }
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]) }
        try a.sendSpawned(pid: pid, passing: pipeFDs[1])
        close(pipeFDs[1])
        let spawned = try #require(try b.receive())
        #expect(spawned.message == .spawned(pid: pid))
        let fd = try #require(spawned.descriptor)
        close(fd)
        try a.sendExited(pid: pid, waitStatus: pid &+ 7)
        let exited = try #require(try b.receive())
        #expect(exited.message == .exited(pid: pid, waitStatus: pid &+ 7))
        #expect(exited.descriptor == nil)
    }

    @Test func spawnCountsAreReadInPlaceAndOnlyFromSpawnMessages() throws {
        let (a, b) = try ControlSocket.pair()
        defer { b.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ControlMessage.maximumSize, alignment: 8)
        defer { buffer.deallocate() }
        for count: UInt32 in [0, 1, 4, 0x0102_0304, .max] {
            try a.send(.spawn(count: count))
            let raw = try #require(try b.receiveRaw(into: buffer))
            #expect(raw.descriptor == nil)
            #expect(ControlMessage.spawnCount(in: raw.bytes) == count)
            #expect(try ControlMessage(decoding: Array(raw.bytes)) == .spawn(count: count))
        }
        for other in Self.samples where other != .spawn(count: 3) {
            try a.send(other)
            let raw = try #require(try b.receiveRaw(into: buffer))
            #expect(ControlMessage.spawnCount(in: raw.bytes) == nil)
        }
        a.close()
        #expect(try b.receiveRaw(into: buffer) == nil)
    }

    /// The zygote reads into a 64-byte buffer: a longer message arrives cut to the buffer, is
    /// no spawn request, and the next message is read whole (message boundaries hold).
    @Test func aLongMessageIntoASmallBufferIsCutAndIgnored() throws {
        let (a, b) = try ControlSocket.pair()
        defer { b.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let long = try #require(Self.samples.first { $0.encoded().count > 64 })
        try a.send(long)
        try a.send(.spawn(count: 2))
        let cut = try #require(try b.receiveRaw(into: buffer))
        #expect(cut.bytes.count == 64)
        #expect(ControlMessage.spawnCount(in: cut.bytes) == nil)
        let next = try #require(try b.receiveRaw(into: buffer))
        #expect(ControlMessage.spawnCount(in: next.bytes) == 2)
        a.close()
        #expect(try b.receiveRaw(into: buffer) == nil)
    }

    @Test func descriptorsTravelWithMessages() throws {
        let (a, b) = try ControlSocket.pair()
        defer { b.close() }
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        try a.send(.spawned(pid: 99), passing: pipeFDs[1])
        close(pipeFDs[1])
        let received = try #require(try b.receive())
        #expect(received.message == .spawned(pid: 99))
        let fd = try #require(received.descriptor)
        #expect(write(fd, "x", 1) == 1)
        close(fd)
        var byte: UInt8 = 0
        #expect(read(pipeFDs[0], &byte, 1) == 1)
        #expect(byte == UInt8(ascii: "x"))
        close(pipeFDs[0])
        a.close()
        #expect(try b.receive() == nil)
    }
}
