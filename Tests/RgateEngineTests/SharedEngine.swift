import RgateTestSupport

/// The process's one embedded R (shared with the other test targets that need R in-process).
typealias SharedEngine = RgateTestSupport.SharedEngine
