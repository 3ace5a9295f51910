import DepotCore
import Foundation
import JWTKit

/// HS256 JWTs signed with the project secret, as Supabase issues them: `sub` (user id), `role`
/// (`anon`, `authenticated`, `service_role`), `exp`.
public struct ProjectJWT: Sendable {
    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var role: String?
        var exp: ExpirationClaim?
        var iat: IssuedAtClaim?
        var iss: IssuerClaim?

        // Expiry is checked by `verify(_:)` itself, to tell an expired token from a bad one.
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    let keys: JWTKeyCollection

    public init(secret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    /// Verifies a token's signature and expiry and returns the caller.
    /// - Throws: `.unauthenticated` for a malformed or wrongly signed token or an unknown role,
    ///   `.tokenExpired` when it has expired.
    public func verify(_ token: String, now: Date = Date()) async throws -> Identity {
        guard token.utf8.count <= 8192 else { throw StorageError(.unauthenticated, "invalid bearer token") }
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
        } catch {
            throw StorageError(.unauthenticated, "invalid bearer token")
        }
        guard let exp = claims.exp else { throw StorageError(.unauthenticated, "the bearer token has no expiry (exp)") }
        guard exp.value > now else { throw StorageError(.tokenExpired, "the bearer token has expired") }
        guard let role = Identity.Role(rawValue: claims.role ?? "authenticated") else {
            throw StorageError(.unauthenticated, "unknown role in bearer token")
        }
        let sub = claims.sub?.value
        if role == .authenticated, sub?.isEmpty ?? true {
            throw StorageError(.unauthenticated, "the bearer token has no subject (sub)")
        }
        return Identity(subject: sub, role: role)
    }

    /// Mints a token (for `depot token`, `depot keys` and tests).
    public func mint(subject: String?, role: Identity.Role, ttl: TimeInterval, issuer: String? = "depot", now: Date = Date()) async throws -> String {
        let claims = Claims(
            sub: subject.map { SubjectClaim(value: $0) }, role: role.rawValue,
            exp: ExpirationClaim(value: now.addingTimeInterval(ttl)), iat: IssuedAtClaim(value: now),
            iss: issuer.map { IssuerClaim(value: $0) })
        return try await keys.sign(claims)
    }
}
