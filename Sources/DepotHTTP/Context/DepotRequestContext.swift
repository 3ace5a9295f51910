import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's core storage plus the caller's verified identity, filled in
/// by ``AuthMiddleware``. Handlers never re-parse the Authorization header.
public struct DepotRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The verified caller, once ``AuthMiddleware`` ran.
    public var identity: Identity?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
    }

    /// The caller; `.unauthenticated` when no middleware set it (a wiring mistake).
    public func requireIdentity() throws -> Identity {
        guard let identity else { throw StorageError(.unauthenticated, "missing bearer token") }
        return identity
    }
}
