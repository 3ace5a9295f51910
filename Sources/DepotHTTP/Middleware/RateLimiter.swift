import DepotCore
import Foundation
import Synchronization

/// Requests per second per caller, as token buckets: a caller may send `burst` requests at once
/// and `rate` per second after that. Over the limit → `.rateLimited` (429) with the seconds until
/// the next request would pass (`Retry-After`).
///
/// Callers are keyed by who they are: a user by its `sub`, an `anon` caller by its address. The
/// service role (the app's own backend) is not limited. At most `maxCallers` buckets are kept;
/// when full, the ones that have refilled completely (idle callers) are dropped first.
public final class RateLimiter: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Sustained requests per second per caller; 0 turns limiting off.
        public var rate: Double
        /// Requests a caller may send at once.
        public var burst: Double
        public init(rate: Double = 100, burst: Double = 200) {
            self.rate = rate
            self.burst = burst
        }
        public static let off = Limits(rate: 0, burst: 0)
    }

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    public let limits: Limits
    let maxCallers: Int
    private let now: @Sendable () -> Double
    private let buckets = Mutex<[String: Bucket]>([:])

    public init(_ limits: Limits, maxCallers: Int = 100_000, clock: @escaping @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }) {
        self.limits = limits
        self.maxCallers = maxCallers
        self.now = clock
    }

    public var isOn: Bool { limits.rate > 0 }

    /// Takes one request from `caller`'s bucket.
    /// - Throws: `.rateLimited` with `retryAfter` when the bucket is empty.
    public func admit(_ caller: String) throws(StorageError) {
        guard isOn else { return }
        let t = now()
        let wait: Double? = buckets.withLock { table in
            var b = table[caller] ?? Bucket(tokens: limits.burst, updated: t)
            b.tokens = min(limits.burst, b.tokens + (t - b.updated) * limits.rate)
            b.updated = t
            defer {
                if table.count >= maxCallers, table[caller] == nil { Self.dropIdle(&table, at: t, limits) }
                table[caller] = b
            }
            guard b.tokens >= 1 else { return (1 - b.tokens) / limits.rate }
            b.tokens -= 1
            return nil
        }
        if let wait {
            throw StorageError(.rateLimited, "too many requests from this caller; slow down", retryAfter: max(1, Int(wait.rounded(.up))))
        }
    }

    /// Removes callers whose bucket would be full by now (they lose nothing); if none, the oldest half.
    private static func dropIdle(_ table: inout [String: Bucket], at t: Double, _ limits: Limits) {
        let full = table.filter { $0.value.tokens + (t - $0.value.updated) * limits.rate >= limits.burst }.keys
        if !full.isEmpty {
            for k in full { table[k] = nil }
            return
        }
        for (k, _) in table.sorted(by: { $0.value.updated < $1.value.updated }).prefix(table.count / 2) { table[k] = nil }
    }
}
