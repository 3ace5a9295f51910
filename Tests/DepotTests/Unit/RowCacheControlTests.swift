import DepotCore
import DepotTesting
import Foundation
import Testing

/// A row cache whose rows other servers write (``RowCacheControl``): served from memory only while
/// the lease runs, dropped row by row as writes are heard, whole when the listener is lost.
@Suite("Row cache under a control")
struct RowCacheControlTests {
    let now = Date()

    func setUp() async throws -> (InMemoryMetadataStore, CachedMetadataStore, RowCacheControl, ObjectKey) {
        let base = InMemoryMetadataStore()
        try await base.createBucket(BucketRecord(name: "assets", isPublic: false, createdAt: now))
        let record = ObjectRecord(
            bucket: "assets", path: try ObjectPath("alice/job/x.png"), owner: "alice", blobID: .random(), size: 1,
            contentType: "image/png", sha256: String(repeating: "0", count: 64), generation: 1, createdAt: now)
        _ = try await base.putObject(record, upsert: false)
        let control = RowCacheControl()
        return (base, CachedMetadataStore(base, control: control), control, record.key)
    }

    @Test func nothingIsServedOrKeptFromMemoryWithoutALease() async throws {
        let (base, cache, control, key) = try await setUp()
        #expect(!control.isTrusted)
        #expect(try await cache.object(at: key)?.generation == 1)  // from the store…
        control.renew(for: .seconds(60))
        #expect(cache.peekObject(at: key) == nil)  // …and nothing was kept
        #expect(try await cache.object(at: key)?.generation == 1)
        #expect(cache.peekObject(at: key)?.generation == 1)

        // Written behind the cache (another server): still the cached row until it is heard of.
        _ = try await base.setGeneration(2, at: key, date: now)
        #expect(cache.peekObject(at: key)?.generation == 1)
        control.invalidate(object: key)
        #expect(cache.peekObject(at: key) == nil)
        #expect(try await cache.object(at: key)?.generation == 2)

        // The lease lapses: lookups go to the store, peeks find nothing, the epoch never repeats.
        control.renew(for: .zero)
        _ = try await base.setGeneration(3, at: key, date: now)
        #expect(cache.peekObject(at: key) == nil)
        #expect(try await cache.object(at: key)?.generation == 3)
        #expect(cache.peekEpoch != cache.peekEpoch)
        // And only rises: lapsed, trusted again, lapsed (an answer kept under one epoch is never
        // refused for one kept under a lower, older one).
        var epochs = [cache.peekEpoch, cache.peekEpoch]
        control.renew(for: .seconds(60))
        epochs += [cache.peekEpoch, cache.peekEpoch]
        control.renew(for: .zero)
        epochs += [cache.peekEpoch, cache.peekEpoch]
        #expect(epochs == epochs.sorted() && Set(epochs).count == 5, "\(epochs)")
        #expect(epochs[2] == epochs[3])
    }

    @Test func distrustDropsEverythingAndBucketsAreHeardToo() async throws {
        let (base, cache, control, key) = try await setUp()
        control.renew(for: .seconds(60))
        _ = try await cache.object(at: key)
        #expect(try await cache.bucket(named: "assets")?.isPublic == false)
        let epoch = cache.peekEpoch
        #expect(cache.peekEpoch == epoch)

        try await base.updateBucket(BucketRecord(name: "assets", isPublic: true, createdAt: now), endingLinks: false)
        control.invalidate(bucket: "assets")
        #expect(cache.peekBucket(named: "assets") == nil)
        #expect(try await cache.bucket(named: "assets")?.isPublic == true)
        #expect(cache.peekEpoch != epoch)

        control.distrust()
        #expect(!control.isTrusted)
        control.renew(for: .seconds(60))
        #expect(cache.peekObject(at: key) == nil && cache.peekBucket(named: "assets") == nil)
    }
}
