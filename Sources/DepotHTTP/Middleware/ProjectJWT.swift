import Crypto
import DepotCore
import Foundation
import JWTKit
import Synchronization

/// HS256 JWTs signed with the project secret, as Supabase issues them: `sub` (user id), `role`
/// (`anon`, `authenticated`, `service_role`), `exp` — and, once ``useSigningKeys(_:)`` has given it
/// a JWKS, user tokens signed with its asymmetric keys (`RS256`, `ES256`, `EdDSA`; Supabase Auth's
/// newer tokens), each checked against the key its `kid` names.
public struct ProjectJWT: Sendable, Redacted {
    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var role: String?
        var exp: ExpirationClaim?
        var iat: IssuedAtClaim?
        var iss: IssuerClaim?
        var nbf: NotBeforeClaim?

        // Expiry is checked by `verify(_:)` itself, to tell an expired token from a bad one.
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    let keys: JWTKeyCollection
    private let secret: SymmetricKey
    /// Tokens already verified, by their exact bytes: an app sends one token many times, and
    /// checking its signature and decoding its JSON again costs more than the rest of a small
    /// upload's request handling. A token's claims cannot change (they are signed), so only the
    /// times are checked again on a hit.
    private let verified = BoundedCache<String, Verified>(capacity: ProjectJWT.verifiedCapacity)

    /// What a verified token grants, and when.
    struct Verified: Sendable {
        let identity: Identity
        let expires: Date
        /// The later of `nbf` and `iat`, when either is present.
        let notBefore: Date?
    }

    /// How many verified tokens are kept (each at most ``cachedTokenLimit`` bytes: ≤ 8 MiB).
    static let verifiedCapacity = 4096
    /// Longer tokens are verified every time.
    static let cachedTokenLimit = 2048

    /// The JWKS's keys, once loaded (``useSigningKeys(_:)``), and what to call on an unknown `kid`.
    private let asymmetric = AsymmetricKeys()

    public init(secret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.secret = SymmetricKey(data: Array(secret.utf8))
    }

    /// Accepts tokens signed with `keys` from now on, instead of any set given before (a key
    /// taken out of the JWKS stops working at once: the tokens verified with it are forgotten).
    public func useSigningKeys(_ keys: SigningKeys) {
        asymmetric.keys.withLock { $0 = keys }
        verified.invalidateAll()
    }

    /// Called when a token names a `kid` the loaded JWKS does not have (a key Supabase Auth has
    /// just rotated in): it should fetch the JWKS again, at most so often, and return when done.
    /// The token is then checked once more.
    public func onUnknownKey(_ refresh: @escaping @Sendable () async -> Void) {
        asymmetric.refresh.withLock { $0 = refresh }
    }

    /// The `kid`s of the loaded JWKS (for the log and tests).
    public var signingKeyIDs: [String] { asymmetric.keys.withLock { $0?.kids ?? [] } }

    /// How far `nbf` and `iat` may lie in the future (clocks of two machines disagree a little).
    public static let clockLeeway: TimeInterval = 60

    /// Verifies a token and returns the caller:
    /// - three base64url parts, each in its one canonical spelling (no padding, no stray bits), so
    ///   that a token has one form;
    /// - the header's `alg` is HS256 (the project secret's), or RS256, ES256 or EdDSA with a `kid`
    ///   naming a key of the loaded JWKS that signs with exactly that algorithm; the header names
    ///   no `crit` extension (none is understood, RFC 7515 §4.1.11);
    /// - signature, then `exp` (required), `nbf` and `iat` (not in the future, with
    ///   ``clockLeeway``);
    /// - `role` is `anon`, `authenticated` or `service_role`; a token without one is `anon`, as
    ///   upstream Supabase treats it;
    /// - `sub`, when present, is the tenant: one valid path segment, in Unicode NFC (so two
    ///   spellings of one name can never be two tenants, nor one tenant two), compared as bytes.
    ///
    /// A verified token is kept (up to ``verifiedCapacity``, looked up by its exact bytes), so the
    /// next request with it checks only the times.
    /// - Throws: `.unauthenticated` for anything wrong, `.tokenExpired` when it has expired.
    public func verify(_ token: String, now: Date = Date()) async throws -> Identity {
        // Only ASCII tokens are looked up: between ASCII strings `String`'s equality is byte
        // equality, while a non-ASCII spelling could equal a cached token canonically (U+212A
        // and "K"). Every valid token is ASCII.
        let cacheable = token.utf8.count <= Self.cachedTokenLimit && token.utf8.allSatisfy { $0 < 0x80 }
        if cacheable, let hit = verified.value(for: token) { return try Self.checkTimes(hit, now: now) }
        let version = verified.version
        let result = try await verifyUncached(token)
        if cacheable { verified.insert(result, for: token, ifVersion: version) }
        return try Self.checkTimes(result, now: now)
    }

    /// `exp` (required), then `nbf` and `iat` not in the future (with ``clockLeeway``).
    private static func checkTimes(_ v: Verified, now: Date) throws -> Identity {
        guard v.expires > now else { throw StorageError(.tokenExpired, "the bearer token has expired") }
        if let notBefore = v.notBefore, notBefore > now.addingTimeInterval(clockLeeway) {
            throw StorageError(.unauthenticated, "the bearer token is not valid yet (nbf or iat in the future)")
        }
        return v.identity
    }

    /// Everything of ``verify(_:now:)`` but the times.
    private func verifyUncached(_ token: String) async throws -> Verified {
        guard token.utf8.count <= 8192, Self.isCanonical(token), let header = Self.header(of: token), header["crit"] == nil,
            let alg = header["alg"] as? String
        else {
            throw StorageError(.unauthenticated, "invalid bearer token")
        }
        guard alg == "HS256" || SigningKeys.asymmetric.contains(alg) else {
            throw StorageError(
                .unauthenticated,
                "the bearer token's alg \(alg.prefix(16)) is not accepted: HS256 (the project secret) or RS256, ES256, EdDSA (--jwks)")
        }
        let claims: Claims
        if alg == "HS256" {
            do {
                claims = try await keys.verify(token, as: Claims.self)
            } catch {
                throw StorageError(.unauthenticated, "invalid bearer token")
            }
        } else {
            claims = try await verifyAsymmetric(token, alg: alg, kid: header["kid"])
        }
        guard let exp = claims.exp else { throw StorageError(.unauthenticated, "the bearer token has no expiry (exp)") }
        let notBefore = [claims.nbf?.value, claims.iat?.value].compactMap { $0 }.max()
        guard let role = Identity.Role(rawValue: claims.role ?? "anon") else {
            throw StorageError(.unauthenticated, "unknown role in bearer token")
        }
        let sub = claims.sub?.value
        if let sub, !Self.isTenantID(sub) {
            throw StorageError(.unauthenticated, "the bearer token's sub is not usable as a user id (one path segment, Unicode NFC)")
        }
        if role == .authenticated, sub == nil {
            throw StorageError(.unauthenticated, "the bearer token has no subject (sub)")
        }
        return Verified(identity: Identity(subject: sub, role: role, claims: Self.claims(of: token)), expires: exp.value, notBefore: notBefore)
    }

    /// A token signed with a JWKS key: its `kid` must name a loaded key (an unknown one makes the
    /// JWKS be fetched again, once) and its `alg` must be that key's.
    private func verifyAsymmetric(_ token: String, alg: String, kid: Any?) async throws -> Claims {
        guard let kid = kid as? String, !kid.isEmpty else {
            throw StorageError(.unauthenticated, "the bearer token is signed with \(alg) but names no key (kid)")
        }
        var keys = asymmetric.keys.withLock { $0 }
        if keys?.algorithms[kid] == nil, let refresh = asymmetric.refresh.withLock({ $0 }) {
            await refresh()
            keys = asymmetric.keys.withLock { $0 }
        }
        guard let keys else {
            throw StorageError(.unauthenticated, "the bearer token is signed with \(alg), and no signing keys (--jwks) are loaded")
        }
        guard let expected = keys.algorithms[kid] else {
            throw StorageError(.unauthenticated, "the bearer token's key (kid \(kid.prefix(64))) is not in the JWKS")
        }
        guard expected == alg else {
            throw StorageError(.unauthenticated, "the bearer token says alg \(alg), but its key (kid \(kid.prefix(64))) signs with \(expected)")
        }
        do {
            return try await keys.collection.verify(token, as: Claims.self)
        } catch {
            throw StorageError(.unauthenticated, "invalid bearer token")
        }
    }

    /// Whether `sub` can name a tenant: a valid path segment, already in NFC (byte for byte).
    public static func isTenantID(_ sub: String) -> Bool {
        guard (try? ObjectPath.validate(segment: sub)) != nil else { return false }
        return sub.utf8.allSatisfy({ $0 < 0x80 }) || sub.bytesEqual(sub.precomposedStringWithCanonicalMapping)
    }

    /// A compact JWT's header, or nil when it does not decode to a JSON object.
    static func header(of token: String) -> [String: Any]? {
        guard let dot = token.utf8.firstIndex(of: UInt8(ascii: ".")), token.utf8.distance(from: token.utf8.startIndex, to: dot) <= 1024,
            let bytes = Base64URL.decode(Substring(token[..<dot]))
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
    }

    /// Three parts, each canonical base64url (``Base64URL/decode(_:)`` refuses padding, characters
    /// outside the alphabet and non-zero trailing bits).
    static func isCanonical(_ token: String) -> Bool {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && Base64URL.decode(Substring($0)) != nil }
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
        let input =
            part(#"{"alg":"HS256","typ":"JWT"}"#) + "."
            + part(#"{"iss":"supabase","role":"\#(role.rawValue)","iat":1767225600,"exp":2082758400}"#)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: secret)
        return input + "." + Base64URL.encode(Array(mac))
    }

    /// Mints a token signed with a key of a JWKS (`kid`), for tests; `key` is the private key.
    public static func mint(
        subject: String?, role: Identity.Role, ttl: TimeInterval, kid: String, signer: JWTKeyCollection, now: Date = Date()
    ) async throws -> String {
        let issued = now.timeIntervalSince1970.rounded(.down)
        let claims = Claims(
            sub: subject.map { SubjectClaim(value: $0) }, role: role.rawValue,
            exp: ExpirationClaim(value: Date(timeIntervalSince1970: issued + ttl.rounded(.down))),
            iat: IssuedAtClaim(value: Date(timeIntervalSince1970: issued)), iss: IssuerClaim(value: "supabase-auth"))
        return try await signer.sign(claims, kid: JWKIdentifier(string: kid))
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

/// The mutable part of ``ProjectJWT`` (a JWKS can change while the server runs).
private final class AsymmetricKeys: Sendable {
    let keys = Mutex<SigningKeys?>(nil)
    let refresh = Mutex<(@Sendable () async -> Void)?>(nil)
}
