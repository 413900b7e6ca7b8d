/// The sizes of a character vector's strings as UTF-8.
public struct RStringSizes: Sendable, Hashable {
    /// UTF-8 bytes of all non-NA strings together.
    public var bytes: Int
    /// How many elements are NA.
    public var missing: Int
    /// How many strings start with byte 0xFF (which some wire formats escape).
    public var startingWith0xFF: Int
    public init(bytes: Int, missing: Int, startingWith0xFF: Int) {
        self.bytes = bytes
        self.missing = missing
        self.startingWith0xFF = startingWith0xFF
    }
}
