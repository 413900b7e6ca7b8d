/// A setting that cannot be used: where it came from and why.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// e.g. `rgate.yaml:7`, `RGATE_TEXT_PORT`, `--text-port`.
    public var origin: String
    /// What is wrong and what is expected.
    public var reason: String

    public init(origin: String, reason: String) {
        self.origin = origin
        self.reason = reason
    }

    public var description: String { "\(origin): \(reason)" }
}
