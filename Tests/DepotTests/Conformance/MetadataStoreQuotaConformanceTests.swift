import DepotCore
import DepotTesting
import Foundation
import Testing

/// The quota a metadata store enforces inside the write's transaction
/// (``MetadataStore/putObject(_:upsert:quota:)``, ``MetadataStore/commitIntent(id:object:quota:)``):
/// a write past it is refused and leaves nothing behind, and concurrent writes of one owner cannot
/// together overshoot it.
@Suite("MetadataStore quota conformance")
struct MetadataStoreQuotaConformanceTests {
    let suite = MetadataStoreConformanceTests()

    func quota(bytes: Int64 = 0, objects: Int = 0) -> TenantQuota {
        var q = TenantQuota.unlimited
        q.bytes = bytes
        q.objects = objects
        return q
    }

    func sized(_ name: String, _ size: Int64, owner: String? = "alice") throws -> ObjectRecord {
        var o = try suite.object("a", name)
        o.size = size
        o.owner = owner
        return o
    }

    @Test(arguments: MetadataStoreKind.testable)
    func writePastQuotaIsRolledBack(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await suite.withBuckets(kind)
        defer { cleanup() }
        let q = quota(bytes: 100, objects: 2)
        try await store.putObject(try sized("alice/1.png", 60), upsert: false, quota: q)
        // Bytes: 60 + 50 > 100 — refused, nothing stored, usage unchanged.
        #expect(await suite.code { try await store.putObject(try sized("alice/2.png", 50), upsert: false, quota: q) } == .quotaExceeded)
        #expect(try await store.object(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/2.png"))) == nil)
        #expect(try await store.usage(of: "alice", now: suite.t0) == TenantUsage(bytes: 60, objects: 1))
        // An overwrite gives the replaced size back: 60 → 100 fits; the old row stays on refusal.
        try await store.putObject(try sized("alice/1.png", 100), upsert: true, quota: q)
        #expect(await suite.code { try await store.putObject(try sized("alice/1.png", 101), upsert: true, quota: q) } == .quotaExceeded)
        #expect(try await store.object(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/1.png")))?.size == 100)
        // Objects: a second fits (size 0), a third does not.
        let q2 = quota(objects: 2)
        try await store.putObject(try sized("alice/2.png", 0), upsert: false, quota: q2)
        #expect(await suite.code { try await store.putObject(try sized("alice/3.png", 0), upsert: false, quota: q2) } == .quotaExceeded)
        #expect(try await store.usage(of: "alice", now: suite.t0) == TenantUsage(bytes: 100, objects: 2))
        // Other owners and rows without an owner are not alice's quota.
        try await store.putObject(try sized("bob/1.png", 100, owner: "bob"), upsert: false, quota: q)
        try await store.putObject(try sized("x/1.png", 1000, owner: nil), upsert: false, quota: q)
        // An intent's commit is refused the same way, and the intent stays claimed (not consumed).
        let i = try suite.intent()
        try await store.createIntent(i)
        _ = try await store.claimIntent(id: i.id, now: suite.t0)
        #expect(await suite.code { _ = try await store.commitIntent(id: i.id, object: try sized(i.path.string, 1), quota: q) } == .quotaExceeded)
        #expect(try await store.intent(id: i.id)?.state == .uploading)
        #expect(try await store.object(at: i.key) == nil)
        #expect(try await store.usage(of: "alice", now: suite.t0) == TenantUsage(bytes: 100, objects: 2))
    }

    /// Twenty writers of one owner at once, room for five: exactly five are stored (SQLite groups
    /// them in one transaction; PostgreSQL serialises them on the owner's usage row).
    @Test(arguments: MetadataStoreKind.testable)
    func concurrentWritersCannotOvershoot(_ kind: MetadataStoreKind) async throws {
        let (store, cleanup) = try await suite.withBuckets(kind)
        defer { cleanup() }
        let q = quota(bytes: 50)
        let stored = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<20 {
                let o = try sized("alice/c/\(n).png", 10)
                group.addTask {
                    do {
                        try await store.putObject(o, upsert: false, quota: q)
                        return true
                    } catch let e as StorageError where e.code == .quotaExceeded {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(stored == 5)
        #expect(try await store.usage(of: "alice", now: suite.t0) == TenantUsage(bytes: 50, objects: 5))
        #expect(try await store.listObjects(in: "a", prefix: "alice/c/", after: nil, limit: 100).count == 5)
    }
}
