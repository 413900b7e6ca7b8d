/// A QAP1 message or value that cannot be decoded.
public struct QAP1Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status a server answers with for this error.
    public var status: QAP1Status
    /// What is wrong.
    public var message: String
    /// The byte offset (within the payload) where it was found.
    public var offset: Int?

    /// Creates an error.
    public init(_ status: QAP1Status, _ message: String, offset: Int? = nil) {
        self.status = status
        self.message = message
        self.offset = offset
    }

    public var description: String {
        offset.map { "\(message) (at byte \($0))" } ?? message
    }
}
