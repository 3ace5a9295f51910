import Crypto
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
    private let secret: SymmetricKey

    public init(secret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.secret = SymmetricKey(data: Array(secret.utf8))
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

    /// Mints a token (for `depot token` and tests). `iat` and `exp` are whole seconds, as in
    /// every JWT Supabase issues.
    public func mint(subject: String?, role: Identity.Role, ttl: TimeInterval, issuer: String? = "depot", now: Date = Date()) async throws -> String {
        let issued = now.timeIntervalSince1970.rounded(.down)
        return try await sign(subject: subject, role: role, issuer: issuer, issuedAt: issued, expires: issued + ttl.rounded(.down))
    }

    /// The project's long-lived API key for `role` (`anon` or `service_role`), as Supabase issues
    /// them: fixed claims (`iss` supabase, `iat` 2026-01-01, `exp` 2036-01-01), so one secret
    /// always gives the same string — paste it into configuration once; it changes only with the
    /// secret.
    public func apiKey(role: Identity.Role) -> String {
        // Written by hand: jwt-kit's encoder orders the members differently from one process to
        // the next, and a key must be the same string every time.
        func part(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }
        let input = part(#"{"alg":"HS256","typ":"JWT"}"#) + "."
            + part(#"{"iss":"supabase","role":"\#(role.rawValue)","iat":1767225600,"exp":2082758400}"#)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: secret)
        return input + "." + Base64URL.encode(Array(mac))
    }

    private func sign(subject: String?, role: Identity.Role, issuer: String?, issuedAt: TimeInterval, expires: TimeInterval) async throws -> String {
        let claims = Claims(
            sub: subject.map { SubjectClaim(value: $0) }, role: role.rawValue,
            exp: ExpirationClaim(value: Date(timeIntervalSince1970: expires)),
            iat: IssuedAtClaim(value: Date(timeIntervalSince1970: issuedAt)),
            iss: issuer.map { IssuerClaim(value: $0) })
        return try await keys.sign(claims)
    }
}
