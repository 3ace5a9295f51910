import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Reads the caller once per request, for every route: the JWT in `Authorization: Bearer` (the
/// prefix may be left out, as Supabase's gateway allows), else in `apikey`. A valid token sets
/// `context.identity` (and the `tenant` of every log line); an invalid one is kept as
/// `context.authError` for the routes that need a caller (``RequireIdentity``) — routes where a
/// caller is optional treat it as `anon`. Handlers never read the header themselves.
///
/// Callers presenting a token are rate limited here (``RateLimiter``): a user by its `sub`, `anon`
/// by its address; the service role is not. Requests without a token (signed and public object
/// URLs) are not limited.
public struct IdentityMiddleware: RouterMiddleware {
    public typealias Context = DepotRequestContext
    let jwt: ProjectJWT
    let limiter: RateLimiter

    public init(jwt: ProjectJWT, limiter: RateLimiter) {
        self.jwt = jwt
        self.limiter = limiter
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.presentedToken(in: request) else { return try await next(request, context) }
        var context = context
        do {
            let identity = try await jwt.verify(try token.get())
            context.identity = identity
            if let sub = identity.subject {
                context.logger[metadataKey: "tenant"] = "\(sub)"
                context.logFacts.tenant = sub
            }
            switch identity.role {
            case .serviceRole: break
            case .authenticated: try limiter.admit("u:" + (identity.subject ?? ""))
            case .anon: try limiter.admit("a:" + (context.remoteIP ?? "?"))
            }
        } catch let e as StorageError where e.code != .rateLimited {
            context.authError = e
        }
        return try await next(request, context)
    }

    /// The token the request presents, a malformed header as an error, or nil when it presents none.
    static func presentedToken(in request: Request) -> Result<String, StorageError>? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 1, parts[0].contains(".") { return .success(String(parts[0])) }
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
                return .failure(StorageError(.unauthenticated, "the Authorization header must be 'Bearer <token>'"))
            }
            return .success(String(parts[1].trimmingSpaces()))
        }
        if let key = request.headers[HTTPField.Name("apikey")!], !key.isEmpty { return .success(key) }
        return nil
    }
}

/// For route groups that need a caller: missing or invalid token → 401 (`.unauthenticated` or
/// `.tokenExpired`), before the handler or its body is touched.
public struct RequireIdentity: RouterMiddleware {
    public typealias Context = DepotRequestContext
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        _ = try context.requireIdentity()
        return try await next(request, context)
    }
}
