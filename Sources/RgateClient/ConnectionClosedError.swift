/// The server closed the connection (or it was closed locally); clients map it to their
/// protocol's error.
struct ConnectionClosedError: Error, Sendable {}
