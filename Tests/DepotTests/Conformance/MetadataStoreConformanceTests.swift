import DepotCore
import DepotLocal
import DepotPostgres
import DepotTesting
import Foundation
import Testing

/// Every `MetadataStore` implementation, for the one conformance suite.
enum MetadataStoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, cachedSQLite, postgres
    var testDescription: String { rawValue }

    /// Every kind whose backing server is there (PostgreSQL, see ``PostgresTestServer``).
    static let testable: [MetadataStoreKind] = allCases.filter { $0 != .postgres || PostgresTestServer.enabled }

    func make() async throws -> (any MetadataStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .postgres:
            let (store, stop) = try await PostgresTestServer.makeStore()
            return (store, stop)
        case .memory:
            return (InMemoryMetadataStore(), {})
        case .sqlite, .cachedSQLite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-meta-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let store = try SQLiteMetadataStore(path: dir + "/m.sqlite")
            let cleanup: @Sendable () -> Void = { try? FileManager.default.removeItem(atPath: dir) }
            return self == .sqlite ? (store, cleanup) : (CachedMetadataStore(store, capacity: 3), cleanup)
        }
    }
}

@Suite("MetadataStore conformance")
struct MetadataStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func object(_ bucket: String, _ name: String, generation: Int64 = 7) throws -> ObjectRecord {
        ObjectRecord(
            bucket: bucket, path: try ObjectPath(name), owner: "alice", blobID: .random(), size: 3, contentType: "image/png",
            sha256: String(repeating: "a", count: 64), generation: generation, createdAt: t0)
    }

    func code(_ body: () async throws -> Void) async -> StorageError.Code? {
        do { try await body(); return nil } catch let e as StorageError { return e.code } catch { return .internalError }
    }

    func withBuckets(_ kind: MetadataStoreKind) async throws -> (any MetadataStore, @Sendable () -> Void) {
        let (store, cleanup) = try await kind.make()
        try await store.createBucket(BucketRecord(name: "a", isPublic: false, createdAt: t0))
        try await store.createBucket(BucketRecord(name: "b", isPublic: true, fileSizeLimit: 100, allowedMimeTypes: ["image/png"], createdAt: t0))
        return (store, cleanup)
    }

    /// Many writers at once (SQLite commits them in groups, each write in its own savepoint): a
    /// write that fails is rolled back alone, and every write that succeeded is there.
    @Test(arguments: MetadataStoreKind.testable)
    func concurrentWritesSucceedOrFailAlone(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let contested = try object("a", "alice/contested.png")
        let results = try await withThrowingTaskGroup(of: (Int, StorageError.Code?).self) { group in
            for i in 0..<60 {
                let record = i % 3 == 0 ? contested : try object("a", "alice/own-\(i).png")
                group.addTask {
                    do {
                        try await store.putObject(record, upsert: false)
                        return (i, nil)
                    } catch let e as StorageError {
                        return (i, e.code)
                    }
                }
            }
            var out: [Int: StorageError.Code?] = [:]
            for try await (i, code) in group { out[i] = code }
            return out
        }
        let contestedResults = results.filter { $0.key % 3 == 0 }.map(\.value)
        #expect(contestedResults.filter { $0 == nil }.count == 1)
        #expect(contestedResults.filter { $0 == .alreadyExists }.count == 19)
        #expect(results.filter { $0.key % 3 != 0 }.allSatisfy { $0.value == nil })
        let listed = try await store.listObjects(in: "a", prefix: "alice/", after: nil, limit: 100)
        #expect(listed.count == 41)
        #expect(try await store.object(at: contested.key)?.blobID == contested.blobID)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func buckets(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        #expect(await code { try await store.createBucket(BucketRecord(name: "a", isPublic: true, createdAt: t0)) } == .alreadyExists)
        #expect(try await store.bucket(named: "b")?.allowedMimeTypes == ["image/png"])
        #expect(try await store.listBuckets().map(\.name) == ["a", "b"])
        var b = try #require(try await store.bucket(named: "b"))
        b.isPublic = false
        b.fileSizeLimit = nil
        try await store.putObject(try object("b", "alice/kept.png", generation: 41), upsert: false)
        try await store.putObject(try object("a", "alice/other.png", generation: 42), upsert: false)
        b.rules = #"[{"allow":["read"],"paths":["**"],"roles":["anon"]}]"#
        try await store.updateBucket(b, endingLinks: false)
        #expect(try await store.bucket(named: "b")?.isPublic == false)
        #expect(try await store.bucket(named: "b")?.rules == b.rules, "a bucket's own rules are kept as given")
        #expect(try await store.bucket(named: "a")?.rules == nil)
        #expect(try await store.bucket(named: "b")?.fileSizeLimit == nil)
        let kept = ObjectKey(bucket: "b", path: try ObjectPath("alice/kept.png"))
        #expect(try await store.object(at: kept)?.generation == 41)
        // A visibility change gives every object of that bucket (only) a new generation.
        b.isPublic = true
        try await store.updateBucket(b, endingLinks: true)
        let renewed = try #require(try await store.object(at: kept)?.generation)
        #expect(renewed != 41 && renewed >= 0)
        #expect(try await store.object(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/other.png")))?.generation == 42)
        #expect(await code { try await store.updateBucket(BucketRecord(name: "zz", isPublic: true, createdAt: t0), endingLinks: true) } == .notFound)
        #expect(try await store.bucket(named: "b")?.isPublic == true)
        _ = try await store.deleteObject(at: kept)
        _ = try await store.deleteObject(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/other.png")))
        try await store.putObject(try object("a", "alice/x.png"), upsert: false)
        #expect(await code { try await store.deleteBucket(named: "a") } == .conflict)
        try await store.deleteBucket(named: "b")
        #expect(try await store.bucket(named: "b") == nil)
        #expect(await code { try await store.deleteBucket(named: "b") } == .notFound)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func putGetDelete(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let o = try object("a", "alice/j/1.png")
        #expect(try await store.putObject(o, upsert: false) == nil)
        #expect(try await store.object(at: o.key) == o)
        #expect(await code { try await store.putObject(try object("a", "alice/j/1.png"), upsert: false) } == .alreadyExists)
        #expect(await code { try await store.putObject(try object("nope", "alice/j/1.png"), upsert: false) } == .notFound)
        // An overwrite keeps the creation time, takes the new row's generation (links to the old
        // bytes die), and returns the replaced row.
        var newer = try object("a", "alice/j/1.png", generation: 99)
        newer.createdAt = t0.addingTimeInterval(10)
        newer.updatedAt = t0.addingTimeInterval(10)
        let replaced = try await store.putObject(newer, upsert: true)
        #expect(replaced?.blobID == o.blobID)
        let stored = try #require(try await store.object(at: o.key))
        #expect(stored.blobID == newer.blobID)
        #expect(stored.createdAt == o.createdAt)
        #expect(stored.generation == 99)
        #expect(stored.updatedAt == newer.updatedAt)
        #expect(try await store.deleteObject(at: o.key)?.blobID == newer.blobID)
        #expect(try await store.deleteObject(at: o.key) == nil)
        #expect(try await store.object(at: o.key) == nil)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func moveAndGeneration(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let o = try object("a", "alice/m.png")
        try await store.putObject(o, upsert: false)
        let to = ObjectKey(bucket: "b", path: o.path)
        let moved = try await store.moveObject(from: o.key, to: to, generation: 123, at: t0.addingTimeInterval(5))
        #expect(moved.bucket == "b")
        #expect(moved.generation == 123)
        #expect(moved.blobID == o.blobID)
        #expect(try await store.object(at: o.key) == nil)
        #expect(try await store.object(at: to)?.generation == 123)
        #expect(await code { _ = try await store.moveObject(from: o.key, to: to, generation: 1, at: t0) } == .notFound)
        try await store.putObject(try object("a", "alice/m.png"), upsert: false)
        #expect(await code { _ = try await store.moveObject(from: o.key, to: to, generation: 1, at: t0) } == .alreadyExists)
        #expect(
            await code { _ = try await store.moveObject(from: o.key, to: ObjectKey(bucket: "zz", path: o.path), generation: 1, at: t0) } == .notFound)
        #expect(try await store.setGeneration(555, at: to, date: t0).generation == 555)
        #expect(
            await code { _ = try await store.setGeneration(1, at: ObjectKey(bucket: "a", path: try ObjectPath("alice/none")), date: t0) } == .notFound
        )
        let both = try await store.objects(in: "a", paths: [o.path, try ObjectPath("alice/none")])
        #expect(both.count == 1)
        #expect(try await store.referencedBlobs(among: [o.blobID, moved.blobID, .random()]) == [moved.blobID])
    }

    @Test(arguments: MetadataStoreKind.testable)
    func listingByPrefixAndCursor(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        for name in ["alice/a/1", "alice/a/2", "alice/b/1", "alice2/a/1", "bob/a/1", "alice/a/3", "aaron/x", "Zed/y"] {
            try await store.putObject(try object("a", name), upsert: false)
        }
        let all = try await store.listObjects(in: "a", prefix: "alice/", after: nil, limit: 100).map(\.path.string)
        #expect(all == ["alice/a/1", "alice/a/2", "alice/a/3", "alice/b/1"])
        // Cursors are compared as bytes, as the stores order names: `<` + U+0338 is canonically
        // `≮` (after `a` in Swift's String order) but its bytes sort before `alice/`.
        for cursor in ["<\u{0338}", "A", "", "alice"] {
            #expect(try await store.listObjects(in: "a", prefix: "alice/", after: cursor, limit: 100).map(\.path.string) == all, "\(cursor)")
        }
        let page1 = try await store.listObjects(in: "a", prefix: "alice/", after: nil, limit: 2).map(\.path.string)
        let page2 = try await store.listObjects(in: "a", prefix: "alice/", after: page1.last, limit: 2).map(\.path.string)
        #expect(page1 + page2 == all)
        #expect(try await store.listObjects(in: "a", prefix: "alice/a/", after: nil, limit: 10).count == 3)
        #expect(try await store.listObjects(in: "b", prefix: "", after: nil, limit: 10).isEmpty)
        // LIKE-style wildcards are plain characters.
        #expect(try await store.listObjects(in: "a", prefix: "alice/%", after: nil, limit: 10).isEmpty)
        #expect(try await store.listObjects(in: "a", prefix: "alice/_", after: nil, limit: 10).isEmpty)
    }

    func intent(_ id: String = BlobID.random().rawValue, expires: TimeInterval = 300, upsert: Bool = false) throws -> UploadIntent {
        UploadIntent(
            id: id, bucket: "a", path: try ObjectPath("alice/up/\(id).png"), owner: "alice", contentType: "image/png",
            size: 3, sha256: nil, upsert: upsert, expiresAt: t0.addingTimeInterval(expires), createdAt: t0)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func intentLifecycle(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let i = try intent()
        try await store.createIntent(i)
        #expect(try await store.intent(id: i.id) == i)
        #expect(try await store.claimIntent(id: i.id, now: t0).state == .uploading)
        #expect(await code { _ = try await store.claimIntent(id: i.id, now: t0) } == .uploadConsumed)
        try await store.releaseIntent(id: i.id)
        #expect(try await store.intent(id: i.id)?.state == .pending)
        _ = try await store.claimIntent(id: i.id, now: t0)
        var o = try object("a", i.path.string)
        o.owner = "alice"
        #expect(try await store.commitIntent(id: i.id, object: o) == nil)
        #expect(try await store.intent(id: i.id)?.state == .consumed)
        #expect(try await store.object(at: o.key)?.blobID == o.blobID)
        #expect(await code { _ = try await store.claimIntent(id: i.id, now: t0) } == .uploadConsumed)
        #expect(await code { _ = try await store.commitIntent(id: i.id, object: o) } == .uploadConsumed)
        #expect(await code { _ = try await store.claimIntent(id: "missing", now: t0) } == .notFound)
        let late = try intent(expires: 10)
        try await store.createIntent(late)
        #expect(await code { _ = try await store.claimIntent(id: late.id, now: t0.addingTimeInterval(11)) } == .urlExpired)
        #expect(try await store.intent(id: late.id)?.state == .pending)
        #expect(try await store.deleteIntents(expiredBefore: t0.addingTimeInterval(100)) == 1)
        #expect(try await store.intent(id: late.id) == nil)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func commitWithoutUpsertDoesNotReplace(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let i = try intent()
        try await store.createIntent(i)
        let existing = try object("a", i.path.string)
        try await store.putObject(existing, upsert: false)
        _ = try await store.claimIntent(id: i.id, now: t0)
        #expect(await code { _ = try await store.commitIntent(id: i.id, object: try object("a", i.path.string)) } == .alreadyExists)
        // The failed transaction changed nothing: the row and the intent's claim are as before.
        #expect(try await store.object(at: existing.key)?.blobID == existing.blobID)
        #expect(try await store.intent(id: i.id)?.state == .uploading)
    }

    @Test(arguments: MetadataStoreKind.testable)
    func concurrentClaimsHaveOneWinner(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        let i = try intent()
        try await store.createIntent(i)
        let t0 = self.t0
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do { _ = try await store.claimIntent(id: i.id, now: t0); return true } catch let e as StorageError where e.code == .uploadConsumed
                    { return false }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
    }

    /// Per-tenant usage follows every write: inserts, overwrites (new size), moves, deletes, and
    /// rows of other owners or of none; pending intents count until claimed or expired.
    @Test(arguments: MetadataStoreKind.testable)
    func usagePerTenant(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await withBuckets(kind)
        defer { cleanup() }
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage())
        var one = try object("a", "alice/1.png")
        one.size = 100
        try await store.putObject(one, upsert: false)
        var two = try object("a", "alice/2.png")
        two.size = 50
        try await store.putObject(two, upsert: false)
        var bobs = try object("a", "bob/1.png")
        bobs.owner = "bob"
        try await store.putObject(bobs, upsert: false)
        var nobody = try object("a", "x/1.png")
        nobody.owner = nil
        try await store.putObject(nobody, upsert: false)
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage(bytes: 150, objects: 2))
        // An overwrite replaces the size; a move keeps the owner's totals; a delete subtracts.
        var bigger = try object("a", "alice/1.png")
        bigger.size = 1000
        try await store.putObject(bigger, upsert: true)
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage(bytes: 1050, objects: 2))
        _ = try await store.moveObject(from: two.key, to: ObjectKey(bucket: "a", path: try ObjectPath("alice/moved.png")), generation: 3, at: t0)
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage(bytes: 1050, objects: 2))
        #expect(try await store.deleteObject(at: bigger.key) != nil)
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage(bytes: 50, objects: 1))
        #expect(try await store.usage(of: "bob", now: t0) == TenantUsage(bytes: 3, objects: 1))
        // Pending, unexpired intents count; a claimed or expired one does not.
        let open = try intent()
        let claimed = try intent()
        let old = try intent(expires: -1)
        for i in [open, claimed, old] { try await store.createIntent(i) }
        _ = try await store.claimIntent(id: claimed.id, now: t0)
        #expect(try await store.usage(of: "alice", now: t0).pendingIntents == 1)
        // A committed intent's object counts.
        var up = try object("a", open.path.string)
        up.size = 7
        _ = try await store.claimIntent(id: open.id, now: t0)
        try await store.commitIntent(id: open.id, object: up)
        #expect(try await store.usage(of: "alice", now: t0) == TenantUsage(bytes: 57, objects: 2, pendingIntents: 0))
    }
}
