import DepotCore
import Hummingbird

/// The caller of a Storage API request: the JWT in `Authorization` (the `Bearer` prefix may be
/// left out), else in `apikey` — the fallback Supabase's gateway applies.
struct SupabaseAuth: Sendable {
    let jwt: ProjectJWT

    /// For routes that need a valid JWT: `.unauthenticated`/`.tokenExpired` otherwise.
    func required(_ request: Request) async throws -> Identity {
        try await jwt.verify(try AuthMiddleware.token(in: request))
    }

    /// For routes where a missing or invalid JWT means `anon`.
    func optional(_ request: Request) async -> Identity {
        (try? await required(request)) ?? Identity(subject: nil, role: .anon)
    }
}

extension Request {
    /// The raw URI path after `prefix` (not yet percent-decoded).
    func rawRest(after prefix: String) throws(StorageError) -> Substring {
        let raw = uri.path
        guard raw.hasPrefix(prefix) else { throw .invalidPath("the path is missing") }
        return raw.dropFirst(prefix.count)
    }

    /// A single percent-encoded segment after `prefix`, e.g. a bucket id.
    func segment(after prefix: String) throws(StorageError) -> String {
        let rest = try rawRest(after: prefix)
        let segment = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard let decoded = PercentEncoding.decode(segment), !decoded.isEmpty else { throw .invalidRequest("the bucket id is missing") }
        return decoded
    }
}
