import RgateJSON
import RgateModel
import Testing

/// Expects `body` to throw an ``RJSONError`` with `code` (and `path`, when given); returns it.
@discardableResult
func expectRJSONError(
    _ code: RJSONError.Code, path: String? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any
) -> RJSONError? {
    let error = #expect(throws: RJSONError.self, sourceLocation: sourceLocation) { _ = try body() }
    #expect(error?.code == code, "\(error.map(String.init(describing:)) ?? "no error")", sourceLocation: sourceLocation)
    if let path { #expect(error?.path == path, "\(error.map(String.init(describing:)) ?? "no error")", sourceLocation: sourceLocation) }
    return error
}
