import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The request context: Hummingbird's core storage plus the caller's verified identity, filled in
/// once by ``IdentityMiddleware``. Handlers never re-parse the Authorization header.
public struct DepotRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The verified caller; nil when the request presents no token or an invalid one.
    public var identity: Identity?
    /// Why the presented token was refused (expired, malformed, wrongly signed), for routes that
    /// need a caller.
    public var authError: StorageError?
    /// The peer (rate limits of `anon` callers).
    public let remoteAddress: SocketAddress?
    /// The peer's IP address.
    public var remoteIP: String? { remoteAddress?.ipAddress }
    /// What the middleware outside ``IdentityMiddleware`` logs about the request (contexts are
    /// values: the error middleware's copy never sees the identity set inside it).
    public let logFacts = RequestLogFacts()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.authError = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The caller; the token's error, or `.unauthenticated` when none was presented.
    public func requireIdentity() throws -> Identity {
        guard let identity else { throw authError ?? StorageError(.unauthenticated, "missing bearer token") }
        return identity
    }

    /// The caller, or `anon` when the request presents no valid token (routes open to anyone).
    public var caller: Identity { identity ?? Identity(subject: nil, role: .anon) }
}

/// Facts about one request learnt by an inner middleware, for the log lines of an outer one.
public final class RequestLogFacts: Sendable {
    private let tenantID = Mutex<String?>(nil)

    /// The caller's tenant (JWT `sub`), once verified.
    public var tenant: String? {
        get { tenantID.withLock { $0 } }
        set { tenantID.withLock { $0 = newValue } }
    }
}
