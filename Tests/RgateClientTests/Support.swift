import RgateClient
import RgateQAP1
import RgateText
import Synchronization

/// Evaluates code on a shared connection and returns the text the server answered.
typealias Evaluate = @Sendable (String) async throws -> String

/// Opens one connection of `wire`'s client to `server` and runs `body` with an evaluator bound to it.
func withClient<T: Sendable>(
    to server: FakeServer, outOfBand: QAP1Client.OutOfBandHandler? = nil, _ body: @Sendable (_ evaluate: @escaping Evaluate) async throws -> T
) async throws -> T {
    switch server.wire {
    case .qap1:
        return try await QAP1Client.withConnection(host: "127.0.0.1", port: server.port, outOfBand: outOfBand) { r in
            try await body { code in (try await r.eval(code).strings?.first ?? nil) ?? "<not a string>" }
        }
    case .text:
        return try await TextClient.withConnection(host: "127.0.0.1", port: server.port) { connection in
            try await body { code in
                let result = try await connection.evaluate(code)
                return result.succeeded ? result.text : "<\(result.status)>"
            }
        }
    }
}

/// How a request ended.
enum Outcome: Sendable, Equatable, CustomStringConvertible {
    case answer(String)
    case cancelled
    /// The connection failed: the client's error for a closed connection.
    case connectionLost
    case otherError(String)

    init(_ operation: () async throws -> String) async {
        do {
            self = .answer(try await operation())
        } catch is CancellationError {
            self = .cancelled
        } catch let failure as QAP1Client.Failure where failure.status == .connectionBroken {
            self = .connectionLost
        } catch let error as TextProtocolError where error.code == .truncated {
            self = .connectionLost
        } catch {
            self = .otherError(String(describing: error))
        }
    }

    var description: String {
        switch self {
        case .answer(let text): "answer \(text)"
        case .cancelled: "cancelled"
        case .connectionLost: "connection lost"
        case .otherError(let text): "error \(text)"
        }
    }
}

/// Runs `operation` in a child task, cancels that task once `trigger` returns, and returns how
/// the operation ended.
func cancelling(_ operation: @escaping Evaluate, _ code: String, when trigger: @Sendable () async -> Void) async -> Outcome {
    await withTaskGroup(of: Outcome.self) { group in
        group.addTask { await Outcome { try await operation(code) } }
        await trigger()
        group.cancelAll()
        return await group.next()!
    }
}

/// Waits, yielding, until `condition` holds (for states only the code under test can reach).
func until(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}

/// A list that tasks and handlers append to.
final class Log: Sendable {
    private let entries = Mutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}
