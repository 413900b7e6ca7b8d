import Glibc
@testable import RgateServer
import RgateBridge
import RgateIPC
import Testing

/// The session table's transitions, with no processes and no sockets.
@Suite("Session table (no processes)")
struct SessionTableTests {
    static func client(_ id: UInt64, fd: Int32 = 100, bridge: Bool = false) -> SessionTable.Client {
        let wire: WireProtocol = bridge ? .bridge : .qap1
        var c = SessionTable.Client(sessionID: id, descriptor: bridge ? -1 : fd, wireProtocol: wire, peer: "127.0.0.1:1", role: "analyst")
        if bridge { c.onEnd = { @Sendable (_: SessionEnd) in } }
        return c
    }

    /// A compact name per action, to compare sequences.
    static func names(_ actions: [SessionTable.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .emit(.sessionStarted(let s)): "start \(s.id)"
            case .emit(.sessionEnded(let s, .ended(let reason), _)): "end \(s.id) \(reason)"
            case .emit(.sessionEnded(let s, .lost(_, let signal), _)): "lost \(s.id) \(signal.map(String.init) ?? "?")"
            case .emit(.limitHit(_, let limit)): "limit \(limit)"
            case .emit: "event"
            case .closeClient(let fd): "close \(fd)"
            case .closeControl(let c): "close control \(c.descriptor)"
            case .replyLost(let c, _, let cause): "reply lost \(c.sessionID): \(cause)"
            case .notifyEnd(let c, .ended(let reason)): "notify \(c.sessionID) \(reason)"
            case .notifyEnd(let c, .lost(let status)): "notify \(c.sessionID) lost \(status.map(String.init) ?? "?")"
            case .released(let c, let shared): "release \(c.sessionID)\(shared ? " shared" : "")"
            case .gone(let shared): "gone\(shared ? " shared" : "")"
            case .idle: "idle"
            }
        }
    }

    @Test func aSessionThatEndsOnPurpose() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        #expect(Self.names(t.confirm(sessionID: 1)) == ["start 1"])
        #expect(Self.names(t.confirm(sessionID: 1)) == []) // told once
        #expect(t.pollDescriptors == [3])
        #expect(Self.names(t.ended(control: 3, reason: .clientClosed)) == ["close 100", "end 1 client closed", "release 1"])
        // The process exits after saying so: its control socket closes with no client left.
        #expect(Self.names(t.controlClosed(3, now: .now)) == ["close control 3", "gone", "idle"])
        #expect(t.count == 0)
    }

    @Test func aCrashIsToldWithTheCauseOnceTheZygoteReportsIt() {
        var t = SessionTable(exitWait: .seconds(1))
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        _ = t.confirm(sessionID: 1)
        let now = ContinuousClock.now
        #expect(Self.names(t.controlClosed(3, now: now)).isEmpty) // the exit report is awaited
        #expect(t.pollDescriptors.isEmpty)
        #expect(t.nextDeadline == now + .seconds(1))
        #expect(Self.names(t.exitReported(pid: 10, status: SIGSEGV)) == [
            "close control 3", "reply lost 1: crashed (signal 11)", "lost 1 11", "release 1", "gone", "idle",
        ])
        #expect(t.nextDeadline == nil)
    }

    @Test func anExitReportedBeforeTheSocketClosesIsUsedAtOnce() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        _ = t.confirm(sessionID: 1)
        #expect(t.exitReported(pid: 10, status: SIGKILL).isEmpty)
        #expect(Self.names(t.controlClosed(3, now: .now)).contains("reply lost 1: was killed (SIGKILL: out of memory, or stopped from outside)"))
        // Reports for processes the table does not watch (spares) are not kept.
        #expect(t.exitReported(pid: 99, status: 0).isEmpty)
    }

    @Test func withoutAReportTheDeadlineTellsAnUnknownCause() {
        var t = SessionTable(exitWait: .milliseconds(200))
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        _ = t.confirm(sessionID: 1)
        let now = ContinuousClock.now
        _ = t.controlClosed(3, now: now)
        #expect(t.tick(now: now + .milliseconds(100)).isEmpty)
        let late = Self.names(t.tick(now: now + .milliseconds(200)))
        #expect(late.first == "close control 3")
        #expect(late.contains("reply lost 1: ended unexpectedly (crashed, ran out of memory or was killed)"))
        #expect(late.contains("lost 1 ?"))
        #expect(t.count == 0)
    }

    @Test func bridgedSessionsAreNotifiedInsteadOfWrittenTo() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1, bridge: true), shared: false)
        t.watch(pid: 11, control: ControlSocket(descriptor: 4), client: Self.client(2, bridge: true), shared: false)
        _ = t.confirm(sessionID: 1)
        _ = t.confirm(sessionID: 2)
        #expect(Self.names(t.ended(control: 3, reason: .idleTimeout)) == ["notify 1 idle timeout", "end 1 idle timeout", "release 1"])
        _ = t.exitReported(pid: 11, status: SIGALRM)
        #expect(Self.names(t.controlClosed(4, now: .now)) == [
            "close control 4", "notify 2 lost 14", "limit hard_time_limit", "lost 2 14", "release 2", "gone",
        ])
    }

    @Test func aFailedHandOffIsNeverTold() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        #expect(Self.names(t.unwatch(control: 3, sessionID: 1)) == ["idle"])
        #expect(t.count == 0)
    }

    @Test func anEndSeenBeforeTheConfirmationIsToldInOrder() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        #expect(Self.names(t.ended(control: 3, reason: .quit)) == ["start 1", "close 100", "end 1 q() called", "release 1"])
        #expect(t.confirm(sessionID: 1).isEmpty)
    }

    @Test func theSharedSessionServesClientsInTurn() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1, fd: 100), shared: true)
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(2, fd: 101), shared: true)
        _ = t.confirm(sessionID: 1)
        _ = t.confirm(sessionID: 2)
        #expect(Self.names(t.ended(control: 3, reason: .clientClosed)) == ["close 100", "end 1 client closed", "release 1 shared"])
        #expect(Self.names(t.unwatch(control: 3, sessionID: 2)).isEmpty) // the shared record stays
        #expect(t.count == 1)
        #expect(Self.names(t.controlClosed(3, now: .now)) == ["close control 3", "gone shared", "idle"])
    }

    @Test func oneLoginCheckAtATimeAndNoneAfterASuccess() {
        var t = SessionTable()
        t.watch(pid: 10, control: ControlSocket(descriptor: 3), client: Self.client(1), shared: false)
        _ = t.confirm(sessionID: 1)
        #expect(t.beginLogin(sessionID: 1) == true)
        #expect(t.beginLogin(sessionID: 1) == false)
        t.loginChecked(sessionID: 1, identity: nil) // refused: may try again
        #expect(t.beginLogin(sessionID: 1) == true)
        t.loginChecked(sessionID: 1, identity: .init(user: "alice", role: "admin"))
        #expect(t.beginLogin(sessionID: 1) == false)
        #expect(t.clientAndIdentity(3).1 == .init(user: "alice", role: "admin"))
        // Events name the logged-in user and role.
        let end = t.ended(control: 3, reason: .clientClosed)
        guard case .emit(.sessionEnded(let info, _, _))? = end.dropFirst().first else { Issue.record("\(Self.names(end))"); return }
        #expect(info.user == "alice")
        #expect(info.role == "admin")
        #expect(t.identities.isEmpty)
    }
}
