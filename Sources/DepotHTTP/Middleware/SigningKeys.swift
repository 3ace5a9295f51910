import DepotCore
import Foundation
import JWTKit

/// Public keys that sign user tokens asymmetrically, read from a JWKS (RFC 7517), as Supabase Auth
/// publishes them: RSA (`RS256`), P-256 (`ES256`) and Ed25519 (`EdDSA`) keys, each with a `kid`.
/// A token is checked against the key its header's `kid` names, and only with that key's one
/// algorithm: an unknown `kid`, or an `alg` other than the key's, is refused (jwt-kit alone would
/// fall back to a default key).
public struct SigningKeys: Sendable {
    /// The algorithm of each key, by `kid`.
    let algorithms: [String: String]
    let collection: JWTKeyCollection
    /// Keys of the set not used, with why (for the log).
    public let skipped: [String]

    public var count: Int { algorithms.count }
    public var kids: [String] { algorithms.keys.sorted() }

    /// The algorithms tokens may name with a key of the set.
    static let asymmetric: Set<String> = ["RS256", "ES256", "EdDSA"]
    /// A JWKS larger than this is refused.
    public static let maxBytes = 1 << 20

    /// Reads a JWKS document. Keys that are not for signing (`use` other than `sig`), of other
    /// types or curves, without a `kid`, whose `alg` disagrees with their type, or whose numbers do
    /// not make a key are skipped (and listed in ``skipped``); the others are usable.
    /// - Throws: `.invalidRequest` when the document is not a JWKS or has no usable key.
    public static func parse(_ json: [UInt8]) async throws(StorageError) -> SigningKeys {
        guard json.count <= maxBytes else { throw .invalidRequest("the JWKS is larger than \(maxBytes) bytes") }
        guard let document = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
            let list = document["keys"] as? [Any]
        else {
            throw .invalidRequest("not a JWKS (a JSON object with a \"keys\" array of JWKs)")
        }
        let collection = JWTKeyCollection()
        var algorithms: [String: String] = [:]
        var skipped: [String] = []
        for (i, entry) in list.enumerated() {
            let jwk = entry as? [String: Any] ?? [:]
            let kid = jwk["kid"] as? String ?? ""
            let label = kid.isEmpty ? "key \(i)" : "kid \(kid.prefix(64))"
            guard !kid.isEmpty, kid.utf8.count <= 256 else {
                skipped.append("\(label): no kid")
                continue
            }
            let kty = jwk["kty"] as? String ?? "?"
            let crv = jwk["crv"] as? String
            guard let alg = algorithm(kty: kty, crv: crv) else {
                skipped.append("\(label): a \(kty) key\(crv.map { " on \($0)" } ?? "") is not RS256, ES256 (P-256) or EdDSA (Ed25519)")
                continue
            }
            if let declared = jwk["alg"] as? String, declared != alg {
                skipped.append("\(label): alg \(declared) does not fit a key for \(alg)")
                continue
            }
            if let use = jwk["use"] as? String, use != "sig" {
                skipped.append("\(label): use \(use), not sig")
                continue
            }
            guard algorithms[kid] == nil else {
                skipped.append("\(label): the kid is used twice")
                continue
            }
            // Added as plain signers (never as JWKs, which jwt-kit would also try for other `alg`s).
            let id = JWKIdentifier(string: kid)
            do {
                switch alg {
                case "ES256":
                    guard let x = jwk["x"] as? String, let y = jwk["y"] as? String else { throw StorageError.invalidRequest("no x or y") }
                    await collection.add(ecdsa: try ES256PublicKey(parameters: (x: x, y: y)), kid: id)
                case "EdDSA":
                    guard let x = jwk["x"] as? String else { throw StorageError.invalidRequest("no x") }
                    await collection.add(eddsa: try EdDSA.PublicKey(x: x, curve: .ed25519), kid: id)
                default:
                    guard let n = jwk["n"] as? String, let e = jwk["e"] as? String else { throw StorageError.invalidRequest("no n or e") }
                    await collection.add(rsa: try Insecure.RSA.PublicKey(modulus: n, exponent: e), digestAlgorithm: .sha256, kid: id)
                }
            } catch {
                skipped.append("\(label): not a usable \(alg) key (\(error))")
                continue
            }
            algorithms[kid] = alg
        }
        guard !algorithms.isEmpty else {
            throw .invalidRequest("the JWKS has no usable signing key" + (skipped.isEmpty ? "" : " (\(skipped.joined(separator: "; ")))"))
        }
        return SigningKeys(algorithms: algorithms, collection: collection, skipped: skipped)
    }

    /// The one algorithm a key signs with, from its type and curve.
    static func algorithm(kty: String, crv: String?) -> String? {
        switch kty {
        case "RSA": return "RS256"
        case "EC": return crv == "P-256" ? "ES256" : nil
        case "OKP": return crv == "Ed25519" ? "EdDSA" : nil
        default: return nil
        }
    }
}
