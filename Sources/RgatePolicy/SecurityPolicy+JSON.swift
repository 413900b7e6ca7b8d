import FoundationEssentials

extension SecurityPolicy {
    /// The policy as JSON, as the supervisor passes it to worker processes.
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding plain structs of strings and numbers cannot fail.
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Decodes ``encoded()``.
    public init(json: String) throws {
        self = try JSONDecoder().decode(SecurityPolicy.self, from: Data(json.utf8))
    }
}
