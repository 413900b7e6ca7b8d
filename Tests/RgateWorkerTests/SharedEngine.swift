import RgateTestSupport

/// The process's one embedded R (shared with the engine's tests).
typealias SharedEngine = RgateTestSupport.SharedEngine
