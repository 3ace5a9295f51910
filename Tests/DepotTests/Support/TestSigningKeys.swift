import Crypto
import DepotCore
import DepotHTTP
import Foundation
import JWTKit

/// Asymmetric keys made for a test, as Supabase Auth's would be: an ES256 (P-256) key and an
/// EdDSA (Ed25519) key, their JWKS (public parts only), and tokens they sign.
struct TestSigningKeys: Sendable {
    let es256 = P256.Signing.PrivateKey()
    let ed25519 = Curve25519.Signing.PrivateKey()
    let esKid: String
    let edKid: String

    init(esKid: String = "es-\(UUID().uuidString.prefix(8))", edKid: String = "ed-\(UUID().uuidString.prefix(8))") {
        self.esKid = esKid
        self.edKid = edKid
    }

    /// The P-256 key's public JWK.
    var esJWK: [String: String] {
        let point = Array(es256.publicKey.x963Representation)  // 0x04 ‖ X ‖ Y
        return [
            "kty": "EC", "crv": "P-256", "kid": esKid, "alg": "ES256", "use": "sig",
            "x": Base64URL.encode(Array(point[1...32])), "y": Base64URL.encode(Array(point[33...64])),
        ]
    }

    /// The Ed25519 key's public JWK (no `alg`: the type says it).
    var edJWK: [String: String] {
        ["kty": "OKP", "crv": "Ed25519", "kid": edKid, "x": Base64URL.encode(Array(ed25519.publicKey.rawRepresentation))]
    }

    static func jwks(_ keys: [[String: String]]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: ["keys": keys]))
    }

    var jwks: [UInt8] { Self.jwks([esJWK, edJWK]) }

    func signingKeys() async throws -> SigningKeys { try await SigningKeys.parse(jwks) }

    /// A token signed with the P-256 key, its header naming `kid` (default: the key's own).
    func es256Token(_ sub: String?, role: Identity.Role = .authenticated, ttl: TimeInterval = 3600, kid: String? = nil) async throws -> String {
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: try ES256PrivateKey(backing: es256), kid: JWKIdentifier(string: kid ?? esKid))
        return try await ProjectJWT.mint(subject: sub, role: role, ttl: ttl, kid: kid ?? esKid, signer: signer)
    }

    /// A token signed with the Ed25519 key.
    func edToken(_ sub: String?, role: Identity.Role = .authenticated, kid: String? = nil) async throws -> String {
        let signer = JWTKeyCollection()
        await signer.add(eddsa: EdDSA.PrivateKey(backing: ed25519), kid: JWKIdentifier(string: kid ?? edKid))
        return try await ProjectJWT.mint(subject: sub, role: role, ttl: 3600, kid: kid ?? edKid, signer: signer)
    }
}
