import CDepotCrypto
import Crypto
import Foundation

/// HMAC-SHA256 (RFC 2104) keyed once: the inner and outer hashes start from states that have
/// already absorbed the padded key. Computed by `CDepotCrypto` (SHA extensions where the CPU has
/// them) — the one use left of the hand-written C; bulk data is hashed by swift-crypto. Measured
/// side by side (release, a 110-byte token message, 5 × 2 M MACs, medians of 3 runs, 2026-12-01 on
/// the 2-core dev machine): this C 0.88–1.11 M MACs/s; swift-crypto's `HMAC<SHA256>` keyed once and
/// copied per message 0.36–0.74 M/s; `HMAC.authenticationCode(for:using:)` 0.15–0.26 M/s (that
/// loop timed the MAC with its message building, on a loaded machine; the micro-benchmark of a
/// whole mint, one quiet core, measures 1.2–1.8 M/s: benchmarks/RESULTS.md). Only the C meets the
/// 1 M tokens/s mint target, so it stays. Tests check it against swift-crypto's HMAC
/// for many keys and lengths.
struct KeyedHMACSHA256: Sendable, Redacted {
    private let key: depot_hmac_sha256_key

    init(key secret: [UInt8]) {
        var key = depot_hmac_sha256_key()
        secret.withUnsafeBufferPointer { depot_hmac_sha256_init(&key, $0.baseAddress, $0.count) }
        self.key = key
    }

    /// Writes the 32-byte MAC of `message` to `out`.
    func authenticate(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) {
        precondition(out.count >= 32)
        withUnsafePointer(to: key) { k in
            depot_hmac_sha256(k, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, out.baseAddress)
        }
    }
}
