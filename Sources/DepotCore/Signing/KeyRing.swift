import CDepotCrypto
import Crypto
import Foundation

/// Signing keys by key id. The first key signs; every key verifies, so rotating means putting a new
/// key first and, once old links may die, removing the retired one.
public struct KeyRing: Sendable, Redacted {
    public struct Key: Sendable, Redacted {
        public let id: String
        /// HMAC-SHA256 already keyed; each MAC starts from a copy.
        let prototype: KeyedHMACSHA256
        /// The id's UTF-8, laid out once.
        let idBytes: [UInt8]
        public init(id: String, secret: [UInt8]) {
            self.id = id
            self.idBytes = Array(id.utf8)
            self.prototype = KeyedHMACSHA256(key: secret)
        }

        public var redactedDescription: String { "KeyRing.Key(id: \(id))" }
    }

    public let active: Key
    private let byID: [String: Key]

    public var redactedDescription: String { "KeyRing(active: \(active.id), keys: \(byID.count))" }

    public init(keys: [Key]) throws(StorageError) {
        guard let first = keys.first else { throw .internal("a key ring needs at least one key") }
        for k in keys where k.id.isEmpty || k.id.contains(".") {
            throw .internal("key id '\(k.id)' must be non-empty and contain no '.'")
        }
        active = first
        byID = Dictionary(keys.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// A ring with one key derived from the project secret (so URL signing keys are never the JWT
    /// secret itself).
    public static func derived(fromProjectSecret secret: String, keyID: String = "k1") -> KeyRing {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("depot url signing v1".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        // A single derived key cannot fail validation.
        return try! KeyRing(keys: [Key(id: keyID, secret: Array(mac))])
    }

    func key(id: Substring) -> Key? { byID[String(id)] }
}
