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
        #expect(cache.count <= 100)
        #expect(cache.value(for: 0) == 0)
        #expect(cache.value(for: 149) == 149)
        cache.insert(7, for: 999, cost: 101, ifVersion: cache.version)  // larger than the whole cache: refused
        #expect(cache.value(for: 999) == nil)
    }
}
