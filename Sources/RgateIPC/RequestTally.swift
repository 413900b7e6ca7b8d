/// Counters of the requests a session served since its last report: sessions add every request
/// and send a tally to the supervisor at most about once a second (and when they end), so that
/// request counts, outcomes and latencies reach the server's event stream with no message per
/// request on the hot path, audit log or not.
public struct RequestTally: Sendable, Hashable {
    /// Upper bounds (µs) of the latency buckets; the last bucket counts everything slower.
    public static let bucketBounds: [UInt64] = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]

    /// Requests served.
    public var requests: UInt32 = 0
    /// Of those: failed with an R error (incl. parse errors).
    public var errors: UInt32 = 0
    /// Stopped at their time limit.
    public var timeouts: UInt32 = 0
    /// Refused by the role's gate.
    public var refused: UInt32 = 0
    /// Cancelled (the client hung up, or asked).
    public var cancelled: UInt32 = 0
    /// Wall-clock time spent on them, in microseconds.
    public var totalMicroseconds: UInt64 = 0
    /// Requests per latency bucket (``bucketBounds``, then the overflow bucket).
    public var buckets: [UInt32] = Array(repeating: 0, count: RequestTally.bucketBounds.count + 1)

    public init() {}

    /// Whether nothing was counted.
    public var isEmpty: Bool { requests == 0 }

    /// The outcome of one request, as the tally counts it.
    public enum Outcome: Sendable, Hashable {
        case ok, error, timeout, refused, cancelled
    }

    /// Counts one request.
    public mutating func add(_ outcome: Outcome, microseconds: UInt64) {
        requests &+= 1
        switch outcome {
        case .ok: break
        case .error: errors &+= 1
        case .timeout: timeouts &+= 1
        case .refused: refused &+= 1
        case .cancelled: cancelled &+= 1
        }
        totalMicroseconds &+= microseconds
        var i = 0
        while i < Self.bucketBounds.count, microseconds > Self.bucketBounds[i] { i += 1 }
        buckets[i] &+= 1
    }

    /// Adds another tally's counts.
    public mutating func merge(_ other: RequestTally) {
        requests &+= other.requests
        errors &+= other.errors
        timeouts &+= other.timeouts
        refused &+= other.refused
        cancelled &+= other.cancelled
        totalMicroseconds &+= other.totalMicroseconds
        for i in buckets.indices where i < other.buckets.count { buckets[i] &+= other.buckets[i] }
    }
}
