import DepotCore
import Testing

@Suite("Bounded cache")
struct BoundedCacheTests {
    @Test func aLoadThatRacedAWriteIsNotInserted() {
        let cache = BoundedCache<String, Int>(capacity: 10)
        let version = cache.version  // a load starts…
        cache.invalidate(["a"])  // …a write commits and invalidates…
        cache.insert(1, for: "a", ifVersion: version)  // …the stale load must not land
        #expect(cache.value(for: "a") == nil)
        cache.insert(2, for: "a", ifVersion: cache.version)
        #expect(cache.value(for: "a") == 2)
    }

    @Test func staysWithinCapacityAndKeepsRecentlyUsed() {
        let cache = BoundedCache<Int, Int>(capacity: 100)
        for i in 0..<100 { cache.insert(i, for: i, cost: 1, ifVersion: cache.version) }
        for _ in 0..<3 { _ = cache.value(for: 0) }
        for i in 100..<150 { cache.insert(i, for: i, cost: 1, ifVersion: cache.version) }
        #expect(cache.count <= 100 && cache.cost == cache.count)
        #expect(cache.value(for: 0) == 0)
        #expect(cache.value(for: 1) == nil)  // the least recently used went first
        #expect(cache.value(for: 149) == 149)
        // A working set far larger than the cache (a gallery): always within it, the newest kept.
        for i in 150..<10_000 { cache.insert(i, for: i, cost: 1, ifVersion: cache.version) }
        #expect(cache.count <= 100 && cache.cost == cache.count)
        #expect(cache.value(for: 9_999) == 9_999)
        cache.insert(7, for: 999, cost: 101, ifVersion: cache.version)  // larger than the whole cache: refused
        #expect(cache.value(for: 999) == nil)
    }

    @Test func costsAreCountedOnceWhenAKeyIsReplacedOrInvalidated() {
        let cache = BoundedCache<String, Int>(capacity: 100)
        cache.insert(1, for: "a", cost: 30, ifVersion: cache.version)
        cache.insert(2, for: "a", cost: 10, ifVersion: cache.version)
        #expect(cache.cost == 10 && cache.value(for: "a") == 2)
        cache.insert(3, for: "b", cost: 45, ifVersion: cache.version)
        cache.insert(4, for: "c", cost: 50, ifVersion: cache.version)  // over: the oldest go, down to 3/4
        #expect(cache.value(for: "a") == nil && cache.value(for: "b") == nil)
        #expect(cache.cost == 50 && cache.value(for: "c") == 4)
        cache.invalidate(["c"])
        #expect(cache.cost == 0 && cache.count == 0)
    }

    /// A full cache with second-miss admission, read in cycles over 2.5 times what it holds: a
    /// stable part is found in it on every later cycle (plain LRU finds nothing), and a key asked
    /// for again soon still gets in.
    @Test func aCycleLargerThanTheCacheKeepsAStablePart() {
        func hits(_ cache: BoundedCache<Int, Int>) -> Int {
            var hits = 0
            for _ in 0..<3 {
                for i in 0..<250 {
                    if cache.value(for: i) != nil { hits += 1 } else { cache.insert(i, for: i, ifVersion: cache.version) }
                }
            }
            return hits
        }
        let lru = BoundedCache<Int, Int>(capacity: 100)
        #expect(hits(lru) == 0)
        let admitting = BoundedCache<Int, Int>(capacity: 100, admission: .secondMissWhenFull(window: 50))
        #expect(hits(admitting) >= 2 * 90)
        #expect(admitting.count <= 100)
        // Refused once, then asked for again within the window: taken in.
        admitting.insert(-1, for: 1000, ifVersion: admitting.version)
        #expect(admitting.value(for: 1000) == nil)
        admitting.insert(-1, for: 1000, ifVersion: admitting.version)
        #expect(admitting.value(for: 1000) == -1)
        // An invalidated key comes back in without waiting (there is room).
        admitting.invalidate([1000])
        admitting.insert(-2, for: 1000, ifVersion: admitting.version)
        #expect(admitting.value(for: 1000) == -2)
    }

    /// A key whose hash is chosen: `bucket` of them share one.
    struct Colliding: Hashable, Sendable {
        let id: Int
        let bucket: Int
        func hash(into hasher: inout Hasher) { hasher.combine(bucket) }
        static func == (a: Colliding, b: Colliding) -> Bool { a.id == b.id }
    }

    /// The table compares stored hashes before keys: keys that share a hash are still told apart
    /// by the keys themselves, when read, replaced and invalidated.
    @Test func keysSharingAHashAreKeptApart() {
        let cache = BoundedCache<Colliding, Int>(capacity: 100)
        let keys = (0..<10).map { Colliding(id: $0, bucket: 7) }
        for key in keys { cache.insert(key.id * 10, for: key, ifVersion: cache.version) }
        #expect(keys.map { cache.value(for: $0) } == keys.map { $0.id * 10 })
        cache.insert(-3, for: keys[3], ifVersion: cache.version)
        cache.invalidate([keys[5]])
        #expect(cache.value(for: keys[3]) == -3 && cache.value(for: keys[5]) == nil && cache.value(for: keys[6]) == 60)
        #expect(cache.count == 9 && cache.cost == 9)
        #expect(cache.value(for: Colliding(id: 42, bucket: 7)) == nil)
    }

    /// A full cache with second-miss admission remembers refused keys by hash alone: a key
    /// sharing a refused key's hash is taken in on its first miss (one miss early, by design), the
    /// refused key is not, and cost and count stay right.
    @Test func aRefusalIsRememberedByHash() {
        let cache = BoundedCache<Colliding, Int>(capacity: 4, admission: .secondMissWhenFull(window: 8))
        for bucket in 0..<4 { cache.insert(bucket, for: Colliding(id: 100 + bucket, bucket: bucket), ifVersion: cache.version) }
        #expect(cache.count == 4 && cache.cost == 4)
        let a = Colliding(id: 1, bucket: 9)
        let b = Colliding(id: 2, bucket: 9)
        let c = Colliding(id: 3, bucket: 10)
        cache.insert(10, for: a, ifVersion: cache.version)
        #expect(cache.value(for: a) == nil && cache.count == 4 && cache.cost == 4)
        cache.insert(30, for: c, ifVersion: cache.version)  // another hash: refused too
        #expect(cache.value(for: c) == nil)
        cache.insert(20, for: b, ifVersion: cache.version)  // a's hash: taken in
        #expect(cache.value(for: b) == 20 && cache.value(for: a) == nil)
        #expect(cache.count == cache.cost && cache.count <= 4)
        // Full again (taking b in evicted down to three quarters, so one more fits).
        #expect(cache.count == 3)
        cache.insert(40, for: Colliding(id: 4, bucket: 11), ifVersion: cache.version)
        #expect(cache.count == 4 && cache.cost == 4)
        let e = Colliding(id: 5, bucket: 12)
        cache.insert(50, for: e, ifVersion: cache.version)  // first miss, full: refused
        #expect(cache.value(for: e) == nil)
        cache.insert(31, for: c, ifVersion: cache.version)  // c's second miss, full: taken in
        #expect(cache.value(for: c) == 31 && cache.value(for: b) == 20)
        #expect(cache.count == cache.cost && cache.count <= 4)
    }
}
