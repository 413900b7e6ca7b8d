extension Duration {
    /// Whole milliseconds (truncated; negative durations give 0).
    var wholeMilliseconds: UInt64 {
        let c = components
        return c.seconds < 0 ? 0 : UInt64(c.seconds) * 1000 + UInt64(max(0, c.attoseconds) / 1_000_000_000_000_000)
    }

    /// Whole microseconds (truncated; negative durations give 0).
    var wholeMicroseconds: UInt64 {
        let c = components
        return c.seconds < 0 ? 0 : UInt64(c.seconds) * 1_000_000 + UInt64(max(0, c.attoseconds) / 1_000_000_000_000)
    }
}
