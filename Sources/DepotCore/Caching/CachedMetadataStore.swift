import Foundation

/// A ``MetadataStore`` decorator that answers object and bucket lookups from a bounded in-memory
/// cache, invalidated by every write made through it.
///
/// Alone, correct only when every write to the underlying store goes through this process (the
/// embedded SQLite default). Servers that share a database (PostgreSQL) pass a
/// ``RowCacheControl``, through which the database's notifications of every server's writes drop
/// rows, and without whose lease nothing is served from memory. Loads racing a write never insert
/// stale rows: each invalidation bumps a version, and a load that started before it is dropped.
public struct CachedMetadataStore: MetadataStore {
    let base: any MetadataStore
    let objects: BoundedCache<ObjectKey, ObjectRecord>
    let buckets: BoundedCache<String, BucketRecord>
    let control: RowCacheControl?

    /// - Parameters:
    ///   - capacity: the most object rows kept.
    ///   - control: for rows other servers write too: their invalidations, and the lease without
    ///     which every lookup goes to `base`.
    public init(_ base: any MetadataStore, capacity: Int = 100_000, control: RowCacheControl? = nil) {
        self.base = base
        let objects = BoundedCache<ObjectKey, ObjectRecord>(capacity: capacity)
        let buckets = BoundedCache<String, BucketRecord>(capacity: 1000)
        self.objects = objects
        self.buckets = buckets
        self.control = control
        control?.subscribe { invalidation in
            switch invalidation {
            case .object(let key): objects.invalidate([key])
            case .bucket(let name): buckets.invalidate([name])
            case .all:
                objects.invalidateAll()
                buckets.invalidateAll()
            }
        }
    }

    /// Whether rows may be served from memory (always, without a control).
    var isTrusted: Bool { control?.isTrusted ?? true }

    // MARK: Cached reads

    public func object(at key: ObjectKey) async throws -> ObjectRecord? {
        guard isTrusted else { return try await base.object(at: key) }
        if let hit = objects.value(for: key) { return hit }
        let version = objects.version
        let row = try await base.object(at: key)
        if let row { objects.insert(row, for: key, ifVersion: version) }
        return row
    }

    public func bucket(named name: String) async throws -> BucketRecord? {
        guard isTrusted else { return try await base.bucket(named: name) }
        if let hit = buckets.value(for: name) { return hit }
        let version = buckets.version
        let row = try await base.bucket(named: name)
        if let row { buckets.insert(row, for: name, ifVersion: version) }
        return row
    }

    // MARK: Writes invalidate

    private func invalidating<T>(_ keys: [ObjectKey], _ body: () async throws -> T) async throws -> T {
        defer { objects.invalidate(keys) }
        return try await body()
    }

    private func invalidatingBucket<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        defer { buckets.invalidate([name]) }
        return try await body()
    }

    public func createBucket(_ bucket: BucketRecord) async throws {
        try await invalidatingBucket(bucket.name) { try await base.createBucket(bucket) }
    }
    public func updateBucket(_ bucket: BucketRecord, endingLinks: Bool) async throws {
        // Every row of the bucket may have changed: drop all rows (visibility changes are rare).
        defer { if endingLinks { objects.invalidateAll() } }
        try await invalidatingBucket(bucket.name) { try await base.updateBucket(bucket, endingLinks: endingLinks) }
    }
    public func deleteBucket(named name: String) async throws {
        try await invalidatingBucket(name) { try await base.deleteBucket(named: name) }
    }
    public func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try await invalidating([object.key]) { try await base.putObject(object, upsert: upsert, quota: quota, jobs: jobs) }
    }
    public func deleteObject(at key: ObjectKey) async throws -> ObjectRecord? {
        try await invalidating([key]) { try await base.deleteObject(at: key) }
    }
    public func moveObject(from: ObjectKey, to: ObjectKey, generation: Int64, at date: Date) async throws -> ObjectRecord {
        try await invalidating([from, to]) { try await base.moveObject(from: from, to: to, generation: generation, at: date) }
    }
    public func setGeneration(_ generation: Int64, at key: ObjectKey, date: Date) async throws -> ObjectRecord {
        try await invalidating([key]) { try await base.setGeneration(generation, at: key, date: date) }
    }
    public func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try await invalidating([object.key]) { try await base.commitIntent(id: id, object: object, quota: quota, jobs: jobs) }
    }

    // MARK: Passed through

    public func listBuckets() async throws -> [BucketRecord] { try await base.listBuckets() }
    public func objects(in bucket: String, paths: [ObjectPath]) async throws -> [ObjectPath: ObjectRecord] {
        guard isTrusted else { return try await base.objects(in: bucket, paths: paths) }
        var found: [ObjectPath: ObjectRecord] = [:]
        found.reserveCapacity(paths.count)
        var misses: [ObjectPath] = []
        for p in paths {
            if let hit = objects.value(for: ObjectKey(bucket: bucket, path: p)) { found[p] = hit } else { misses.append(p) }
        }
        if misses.isEmpty { return found }
        let version = objects.version
        for (p, row) in try await base.objects(in: bucket, paths: misses) {
            found[p] = row
            objects.insert(row, for: row.key, ifVersion: version)
        }
        return found
    }
    public func listObjects(in bucket: String, prefix: String, after cursor: String?, limit: Int) async throws -> [ObjectRecord] {
        try await base.listObjects(in: bucket, prefix: prefix, after: cursor, limit: limit)
    }
    public func referencedBlobs(among ids: [BlobID]) async throws -> Set<BlobID> { try await base.referencedBlobs(among: ids) }
    public func createIntent(_ intent: UploadIntent) async throws { try await base.createIntent(intent) }
    public func intent(id: String) async throws -> UploadIntent? { try await base.intent(id: id) }
    public func claimIntent(id: String, now: Date) async throws -> UploadIntent { try await base.claimIntent(id: id, now: now) }
    public func releaseIntent(id: String) async throws { try await base.releaseIntent(id: id) }
    public func deleteIntents(expiredBefore date: Date) async throws -> Int { try await base.deleteIntents(expiredBefore: date) }
    public func usage(of owner: String, now: Date) async throws -> TenantUsage { try await base.usage(of: owner, now: now) }
    public func ping() async throws { try await base.ping() }
}
