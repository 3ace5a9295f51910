import DepotCore
import Foundation

extension ProjectJWT {
    /// Claims every token has a meaning for already (kept out of ``Identity/claims``).
    static let registeredClaims: Set<String> = ["sub", "role", "exp", "iat", "nbf", "iss", "aud", "jti"]
    /// Most claims kept of one token, deepest nesting, longest value.
    static let maxClaims = 64
    static let maxClaimDepth = 4
    static let maxClaimBytes = 256

    /// The claims of a verified token's payload that access rules may test or name
    /// (``Identity/claims``), by dotted name (`app_metadata.team_id`), as text: strings as they
    /// are, whole numbers and booleans as JSON spells them. Registered claims, other values
    /// (fractions, arrays, null), values over 256 bytes, nesting past 4 levels and claims past
    /// the 64th (in name order) are left out, so no rule matches them.
    static func claims(of token: String) -> [String: String] {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(Substring(parts[1])),
            let top = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(payload))
        else { return [:] }
        var out: [String: String] = [:]
        func walk(_ level: [String: ClaimValue], prefix: String, depth: Int) {
            for key in level.keys.sorted() where out.count < maxClaims {
                guard let value = level[key], depth > 1 || !registeredClaims.contains(key) else { continue }
                let name = prefix + key
                switch value {
                case .text(let text) where text.utf8.count <= maxClaimBytes: out[name] = text
                case .object(let inner) where depth < maxClaimDepth: walk(inner, prefix: name + ".", depth: depth + 1)
                default: break
                }
            }
        }
        walk(top, prefix: "", depth: 1)
        return out
    }
}

/// A claim's value as far as the access rules care.
enum ClaimValue: Decodable {
    case text(String)
    case object([String: ClaimValue])
    case other

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .text(s)
        } else if let b = try? c.decode(Bool.self) {
            self = .text(b ? "true" : "false")
        } else if let i = try? c.decode(Int64.self) {
            self = .text(String(i))
        } else if let o = try? c.decode([String: ClaimValue].self) {
            self = .object(o)
        } else {
            self = .other
        }
    }
}
