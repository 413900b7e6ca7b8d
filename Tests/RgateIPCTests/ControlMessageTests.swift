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
        .ended(reason: .quit),
        .shutdownRequested,
    ]

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
