import DepotCore
@testable import DepotHTTP
import Foundation

/// Bearer tokens: `ProjectJWT.verify` (header `alg` and `kid`, signature, `exp`/`nbf`/`iat`,
/// `role`, `sub`) with jwt-kit underneath, HS256 and a JWKS's ES256 key. Input: a token; an input without a `.` is a subject instead, for which
/// a token is minted and must verify to that caller.
enum JWTTarget {
    /// The secret of the seed tokens in fuzz/corpus/jwt (made by fuzz/make-seeds).
    static let secret = "depot-fuzz-jwt-secret-0123456789abcdef"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    /// A JWKS with one ES256 key (`kid` fuzz-es, a fixed P-256 point), so that tokens naming
    /// ES256, RS256 or EdDSA reach the asymmetric path's checks.
    static let jwks =
        #"{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz-es","alg":"ES256","x":"#
        + #""asCSLuHcruILXUXPCKzXMT2OLlkW2HQKjL14exSDA-o","y":"Z1k8__8rR8YhP_htMzrl0M5SIqryqK3cFhhEoqa3iZo"}]}"#
    static let jwt: ProjectJWT = {
        let made = Box<ProjectJWT?>(nil)
        runToCompletion {
            let jwt = await ProjectJWT(secret: secret)
            jwt.useSigningKeys(try! await SigningKeys.parse(Array(jwks.utf8)))
            made.value = jwt
        }
        return made.value!
    }()

    static func run(_ input: FuzzInput) {
        let text = input.text
        let jwt = Self.jwt
        if !text.contains(".") {
            let roles: [Identity.Role] = [.anon, .authenticated, .serviceRole]
            let role = roles[Int(input.hash % 3)]
            let subject: String? = text.isEmpty ? nil : text
            runToCompletion {
                guard let token = try? await jwt.mint(subject: subject, role: role, ttl: 3600, now: now) else { return }
                let identity = try? await jwt.verify(token, now: now)
                let usable = subject.map(ProjectJWT.isTenantID) ?? (role != .authenticated)
                if usable {
                    check(
                        identity == Identity(subject: subject, role: role),
                        "a minted token for \(subject.debugDescription) verifies as \(identity.debugDescription)")
                } else {
                    check(identity == nil, "a token for \(subject.debugDescription) was accepted")
                }
            }
            return
        }
        runToCompletion {
            do {
                let identity = try await jwt.verify(text, now: now)
                if let sub = identity.subject { check(ProjectJWT.isTenantID(sub), "sub \(sub.debugDescription) accepted") }
                check(identity.role != .authenticated || identity.subject != nil, "authenticated without sub")
                check(identity.claims.count <= ProjectJWT.maxClaims, "more than \(ProjectJWT.maxClaims) claims kept")
                check(
                    identity.claims.allSatisfy { $0.value.utf8.count <= ProjectJWT.maxClaimBytes && !ProjectJWT.registeredClaims.contains($0.key) },
                    "a registered or too long claim kept: \(identity.claims)")
            } catch let e as StorageError {
                check(e.code == .unauthenticated || e.code == .tokenExpired, "verify threw \(e.code)")
            } catch {
                check(false, "verify threw \(error)")
            }
        }
    }
}
