public import RgateEngine

/// One embedded R for the whole test process (R can start only once per process, and every
/// test target links into one test binary), on its own thread.
public enum SharedEngine {
    public static let thread = RThread()
    // Safe: only touched from `thread`, which runs one job at a time.
    nonisolated(unsafe) private static var engine: REngine?

    /// Runs `body` on R's thread with the process's engine (started on first use).
    public static func run<T: Sendable>(_ body: @escaping @Sendable (REngine) -> T) async -> T {
        await thread.perform {
            if engine == nil { engine = try! REngine.start() }
            return body(engine!)
        }
    }
}
