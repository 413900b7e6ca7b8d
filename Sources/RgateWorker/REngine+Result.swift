import RgateEngine
import RgateModel

extension REngine {
    /// ``makeObject(_:)`` as a `Result`, for chains of `case .success` bindings.
    func makeObjectResult(_ value: RValue) -> Result<RObject, EngineError> {
        do { return .success(try makeObject(value)) } catch { return .failure(error) }
    }
}
