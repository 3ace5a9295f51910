import CDepotCrypto
import Crypto
import Testing

/// Depot's own SHA-256 / HMAC-SHA256 (C, SHA extensions where available) against swift-crypto's,
/// for both code paths and every message length around the block and padding boundaries.
/// Serialized: the tests switch the process-wide code path.
@Suite("SHA-256 and HMAC", .serialized)
struct HMACTests {
    static func bytes(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    @Test(arguments: [false, true])
    func matchesSwiftCrypto(accelerated: Bool) {
        depot_sha256_set_accelerated(accelerated ? 1 : 0)
        defer { depot_sha256_set_accelerated(1) }
        for length in Array(0...200) + [1000, 4096, 65_537] {
            let message = Self.bytes(length, seed: 7)
            var ours = [UInt8](repeating: 0, count: 32)
            depot_sha256(message, message.count, &ours)
            #expect(ours == Array(SHA256.hash(data: message)), "SHA-256 of \(length) bytes")
        }
        for keyLength in [0, 1, 32, 63, 64, 65, 200] {
            let secret = Self.bytes(keyLength, seed: 99)
            var key = depot_hmac_sha256_key()
            depot_hmac_sha256_init(&key, secret, secret.count)
            for length in [0, 1, 55, 56, 63, 64, 119, 120, 300] {
                let message = Self.bytes(length, seed: 3)
                var ours = [UInt8](repeating: 0, count: 32)
                depot_hmac_sha256(&key, message, message.count, &ours)
                let theirs = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret))
                #expect(ours == Array(theirs), "HMAC, key \(keyLength) bytes, message \(length) bytes")
            }
        }
    }
}
