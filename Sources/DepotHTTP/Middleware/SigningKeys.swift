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

    /// Reads a JWKS document. Keys are skipped (and listed in ``skipped``) when they are not for
    /// verifying signatures (`use` other than `sig`, `key_ops` without `verify`), hold private
    /// parts (a published private key lets anyone mint tokens), are of other types or curves,
    /// have no `kid` (or one with control characters), share their `kid` with another key (none
    /// of them is used: which one signed is ambiguous), have an `alg` that disagrees with their
    /// type, or whose numbers do not make a key; the others are usable.
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
        var uses: [String: Int] = [:]
        for entry in list { if let kid = (entry as? [String: Any])?["kid"] as? String { uses[kid, default: 0] += 1 } }
        for (i, entry) in list.enumerated() {
            let jwk = entry as? [String: Any] ?? [:]
            let kid = jwk["kid"] as? String ?? ""
            // Written escaped: a JWKS host must not be able to write lines into the log.
            let label = kid.isEmpty ? "key \(i)" : "kid \(String(kid.prefix(64)).debugDescription)"
            guard !kid.isEmpty, kid.utf8.count <= 256 else {
                skipped.append("\(label): no kid")
                continue
            }
            guard !kid.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || ObjectPath.isBidiControl($0) }) else {
                skipped.append("\(label): control characters in the kid")
                continue
            }
            guard uses[kid, default: 0] == 1 else {
                skipped.append("\(label): \(uses[kid, default: 0]) keys share this kid, so none of them is used")
                continue
            }
            guard ["d", "p", "q", "dp", "dq", "qi", "k"].allSatisfy({ jwk[$0] == nil }) else {
                skipped.append("\(label): a private key (publish only the public parts: anyone could sign with it)")
                continue
            }
            if let ops = jwk["key_ops"] {
                guard let list = ops as? [Any], list.contains(where: { $0 as? String == "verify" }) else {
                    skipped.append("\(label): key_ops without verify")
                    continue
                }
            }
            let kty = jwk["kty"] as? String ?? "?"
            let crv = jwk["crv"] as? String
            guard let alg = algorithm(kty: kty, crv: crv) else {
                let type = "kty \(String(kty.prefix(16)).debugDescription)" + (crv.map { ", crv \(String($0.prefix(16)).debugDescription)" } ?? "")
                skipped.append("\(label): \(type) is not a key for RS256, ES256 (P-256) or EdDSA (Ed25519)")
                continue
            }
            if let declared = jwk["alg"] as? String, declared != alg {
                skipped.append("\(label): alg \(String(declared.prefix(16)).debugDescription) does not fit a key for \(alg)")
                continue
            }
            if let use = jwk["use"], use as? String != "sig" {
                skipped.append("\(label): use is not sig")
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
