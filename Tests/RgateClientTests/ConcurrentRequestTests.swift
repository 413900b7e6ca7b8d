import RgateClient
import Testing

/// One client connection shared by many tasks, against ``FakeServer`` (no R, no rgate).
@Suite("Clients shared by concurrent tasks", .timeLimit(.minutes(1)))
struct ConcurrentRequestTests {
    @Test("50 concurrent requests on one connection each get their own reply", arguments: Wire.allCases)
    func concurrentRequestsGetTheirOwnReplies(_ wire: Wire) async throws {
        try await FakeServer.with(wire) { server in
            let codes = (0..<50).map { "task-\($0)-\(UInt32.random(in: .min ... .max))" }
            try await withClient(to: server) { evaluate in
                let outcomes = await withTaskGroup(of: (String, Outcome).self) { group in
                    for code in codes {
                        group.addTask { (code, await Outcome { try await evaluate(code) }) }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                #expect(outcomes.count == codes.count)
                for (code, outcome) in outcomes {
                    #expect(outcome == .answer(code))
                }
            }
            #expect(server.received.sorted() == codes.sorted())
            #expect(server.overlaps == 0, "a request was sent before the previous one was answered")
        }
    }

    @Test("A request cancelled after it was sent: its reply is dropped, not read by the next request", arguments: Wire.allCases)
    func cancelledAfterSending(_ wire: Wire) async throws {
        try await FakeServer.with(wire) { server in
            try await withClient(to: server) { evaluate in
                // Cancelled while the server holds its answer: it returns without waiting.
                let held = await cancelling(evaluate, "hold-x", when: { await server.waitUntilReceived("hold-x") })
                #expect(held == .cancelled)
                async let next = Outcome { try await evaluate("y") }
                server.release("hold-x")
                #expect(await next == .answer("y"))
                #expect(await Outcome { try await evaluate("z") } == .answer("z"))
            }
            #expect(server.received == ["hold-x", "y", "z"])
            #expect(server.overlaps == 0, "the next request was sent before the cancelled one was answered")
        }
    }

    @Test("A request cancelled while waiting for its turn is never sent, and the queue goes on", arguments: Wire.allCases)
    func cancelledWhileWaiting(_ wire: Wire) async throws {
        try await FakeServer.with(wire) { server in
            try await withClient(to: server) { evaluate in
                async let first = Outcome { try await evaluate("hold-a") }
                await server.waitUntilReceived("hold-a")
                // hold-a has the connection until it is released, below: b can only be waiting.
                let waiting = await cancelling(evaluate, "b", when: { await Task.yield() })
                #expect(waiting == .cancelled)
                async let after = Outcome { try await evaluate("c") }
                server.release("hold-a")
                #expect(await first == .answer("hold-a"))
                #expect(await after == .answer("c"))
            }
            #expect(server.received == ["hold-a", "c"])
            #expect(server.overlaps == 0)
        }
    }

    @Test("Requests cancelled at random moments end cancelled or with their own reply, never another's", arguments: Wire.allCases)
    func randomCancellations(_ wire: Wire) async throws {
        try await FakeServer.with(wire, maximumDelay: .microseconds(500)) { server in
            try await withClient(to: server) { evaluate in
                let outcomes = await withTaskGroup(of: (code: String, cancelled: Bool, outcome: Outcome).self) { group in
                    for i in 0..<60 {
                        let code = "task-\(i)"
                        switch i % 4 {
                        case 1:
                            // In flight: sent, its answer due within the server's delay.
                            group.addTask { (code, true, await cancelling(evaluate, code, when: { await server.waitUntilReceived(code) })) }
                        case 3:
                            // Anywhere: waiting for its turn, in flight, or done.
                            let delay = Duration.microseconds(Int.random(in: 0...30_000))
                            group.addTask { (code, true, await cancelling(evaluate, code, when: { try? await Task.sleep(for: delay) })) }
                        default:
                            group.addTask { (code, false, await Outcome { try await evaluate(code) }) }
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                for (code, cancelled, outcome) in outcomes {
                    if cancelled {
                        #expect(outcome == .answer(code) || outcome == .cancelled, "\(code)")
                    } else {
                        #expect(outcome == .answer(code), "\(code)")
                    }
                }
                #expect(await Outcome { try await evaluate("last") } == .answer("last"))
            }
            let received = server.received
            #expect(Set(received).count == received.count, "a request was sent twice")
            #expect(received.last == "last")
            #expect(server.overlaps == 0)
        }
    }

    @Test("The server closing the connection fails the request in progress and every waiting one", arguments: Wire.allCases)
    func serverClosing(_ wire: Wire) async throws {
        try await FakeServer.with(wire) { server in
            try await withClient(to: server) { evaluate in
                let outcomes = await withTaskGroup(of: Outcome.self) { group in
                    group.addTask { await Outcome { try await evaluate("hold-close") } }
                    await server.waitUntilReceived("hold-close")
                    for i in 0..<10 {
                        group.addTask { await Outcome { try await evaluate("waiting-\(i)") } }
                    }
                    server.release("hold-close")
                    return await group.reduce(into: []) { $0.append($1) }
                }
                #expect(outcomes == Array(repeating: .connectionLost, count: 11))
                #expect(await Outcome { try await evaluate("after") } == .connectionLost)
            }
            #expect(server.received == ["hold-close"])
        }
    }

    @Test("QAP1: out-of-band messages are answered, also those of a request whose task was cancelled")
    func outOfBandOfACancelledRequest() async throws {
        let asked = Log()
        let handler: QAP1Client.OutOfBandHandler = { _, value, expectsReply in
            let text = (value.strings?.first ?? nil) ?? "<not a string>"
            asked.append(text)
            return expectsReply ? .character(["answered " + text]) : nil
        }
        try await FakeServer.with(.qap1) { server in
            try await withClient(to: server, outOfBand: handler) { evaluate in
                #expect(await Outcome { try await evaluate("oob-1") } == .answer("oob-1|answered oob-1"))
                let held = await cancelling(evaluate, "hold-oob-x", when: { await server.waitUntilReceived("hold-oob-x") })
                #expect(held == .cancelled)
                server.release("hold-oob-x")
                // y's turn first reads hold-oob-x's answer, answering its out-of-band message.
                #expect(await Outcome { try await evaluate("y") } == .answer("y"))
            }
            #expect(server.received == ["oob-1", "hold-oob-x", "y"])
            #expect(server.overlaps == 0)
        }
        #expect(asked.all == ["oob-1", "hold-oob-x"])
    }
}
