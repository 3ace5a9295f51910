import DepotCore
import DepotTesting
import Foundation
import Testing

/// Every `RenditionStore` (memory, SQLite, PostgreSQL when its test server is up): one suite.
@Suite("RenditionStore conformance")
struct RenditionStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func make(_ kind: JobStoreKind) async throws -> (any RenditionStore & MetadataStore, cleanup: @Sendable () -> Void) {
        let (store, cleanup) = try await kind.make()
        return (store as! any RenditionStore & MetadataStore, cleanup)
    }

    func object(_ name: String, blob: BlobID) throws -> ObjectRecord {
        ObjectRecord(
            bucket: "a", path: try ObjectPath(name), owner: "alice", blobID: blob, size: 3, contentType: "image/png",
            sha256: String(repeating: "a", count: 64), createdAt: t0)
    }

    func rendition(_ n: Int, of source: BlobID, size: Int64 = 100, usedAt: TimeInterval = 0) -> RenditionRecord {
        RenditionRecord(
            key: String(repeating: "0", count: 63) + String(n, radix: 16), sourceBlob: source, blobID: .random(), size: size,
            contentType: "image/webp", createdAt: t0, usedAt: t0 + usedAt)
    }

    /// A key is stored once: the second writer gets the first one's row back (and deletes its own
    /// blob); the rendition's blob counts as referenced, so garbage collection keeps it.
    @Test(arguments: JobStoreKind.testable)
    func aKeyIsStoredOnceAndItsBlobIsReferenced(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await make(kind)
        defer { cleanup() }
        let source = BlobID.random()
        let first = rendition(1, of: source)
        #expect(try await store.rendition(key: first.key) == nil)
        #expect(try await store.putRendition(first) == first)
        var loser = first
        loser.blobID = .random()
        #expect(try await store.putRendition(loser) == first)
        #expect(try await store.rendition(key: first.key) == first)
        #expect(try await store.referencedBlobs(among: [first.blobID, loser.blobID]) == [first.blobID])
        let usage = try await store.renditionUsage()
        #expect(usage.count == 1 && usage.bytes == 100)
    }

    /// Pruning removes the renditions of sources no object points at, then the least recently
    /// used until the total fits; touching keeps one.
    @Test(arguments: JobStoreKind.testable)
    func pruneRemovesStaleThenLeastRecentlyUsed(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await make(kind)
        defer { cleanup() }
        try await store.createBucket(BucketRecord(name: "a", isPublic: false, createdAt: t0))
        let live = BlobID.random(), gone = BlobID.random()
        try await store.putObject(try object("alice/x.png", blob: live), upsert: false)
        let stale = rendition(9, of: gone)
        let r = (1...4).map { rendition($0, of: live, usedAt: TimeInterval($0)) }
        for x in r + [stale] { _ = try await store.putRendition(x) }
        // The oldest (1) is served now: 2 becomes the least recently used.
        try await store.touchRenditions([r[0].key, "f" + String(repeating: "0", count: 63)], at: t0 + 100)
        #expect(try await store.rendition(key: r[0].key)?.usedAt == t0 + 100)
        let prune = try await store.pruneRenditions(maxBytes: 250)
        #expect(prune.stale == [stale.ref])
        #expect(prune.evicted == [r[1].ref, r[2].ref])
        #expect(try await store.rendition(key: r[1].key) == nil)
        #expect(try await store.rendition(key: stale.key) == nil)
        let usage = try await store.renditionUsage()
        #expect(usage.count == 2 && usage.bytes == 200)
        // Within the bound, nothing more goes.
        #expect(try await store.pruneRenditions(maxBytes: 250) == RenditionPrune())
        // The source deleted: its renditions are stale.
        _ = try await store.deleteObject(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/x.png")))
        #expect(Set(try await store.pruneRenditions(maxBytes: 1 << 40).stale) == [r[0].ref, r[3].ref])
        let after = try await store.renditionUsage()
        #expect(after.count == 0 && after.bytes == 0)
    }
}
