import DepotCore
import Foundation

extension ProjectJWT {
    /// The values of `names` (dotted for nested objects: `app_metadata.team_id`) in a verified
    /// token's payload, as text: strings as they are, whole numbers and booleans as JSON spells
    /// them. Other values (fractions, arrays, null) and missing claims are left out, so no test
    /// or path of a rule matches them.
    static func claims(_ names: [String], of token: String) -> [String: String] {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(Substring(parts[1])),
            let top = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(payload))
        else { return [:] }
        var out: [String: String] = [:]
        for name in names {
            var level = top
            let words = name.split(separator: ".")
            walk: for (i, word) in words.enumerated() {
                switch level[String(word)] {
                case .text(let text) where i == words.count - 1: out[name] = text
                case .object(let inner) where i < words.count - 1: level = inner
                default: break walk
                }
            }
        }
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
