import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Verifies the caller's JWT (`Authorization: Bearer`, or the `apikey` header when no Authorization
/// is sent) and stores the identity in the context. Missing or invalid → 401.
public struct AuthMiddleware: RouterMiddleware {
    public typealias Context = DepotRequestContext
    let jwt: ProjectJWT

    public init(jwt: ProjectJWT) { self.jwt = jwt }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.identity = try await jwt.verify(try Self.token(in: request))
        if let sub = context.identity?.subject { context.logger[metadataKey: "tenant"] = "\(sub)" }
        return try await next(request, context)
    }

    static func token(in request: Request) throws -> String {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            // Supabase's server also takes a bare token (the `Bearer` prefix is optional).
            if parts.count == 1, parts[0].contains(".") { return String(parts[0]) }
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
                throw StorageError(.unauthenticated, "the Authorization header must be 'Bearer <token>'")
            }
            return String(parts[1].trimmingSpaces())
        }
        if let key = request.headers[HTTPField.Name("apikey")!], !key.isEmpty { return key }
        throw StorageError(.unauthenticated, "missing bearer token")
    }
}
