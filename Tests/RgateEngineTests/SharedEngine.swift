import RgateEngine
import RgateModel

/// One embedded R for the whole test process (R can start only once per process), on its own thread.
enum SharedEngine {
    static let thread = RThread()
    // Safe: only touched from `thread`, which runs one job at a time.
    nonisolated(unsafe) private static var engine: REngine?

    static func run<T: Sendable>(_ body: @escaping @Sendable (REngine) -> T) async -> T {
        await thread.perform {
            if engine == nil { engine = try! REngine.start() }
            return body(engine!)
        }
    }
}
