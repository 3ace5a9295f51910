import DepotCore
import Foundation

/// Metadata held in memory, for unit tests. Each method is one atomic step of the actor.
public actor InMemoryMetadataStore: MetadataStore {
    var buckets: [String: BucketRecord] = [:]
    var objects: [ObjectKey: ObjectRecord] = [:]
    var intents: [String: UploadIntent] = [:]
    /// Jobs in the order they were queued, and their histories (``JobStore``).
    var jobs: [JobRecord] = []
    var jobHistory: [String: [JobEvent]] = [:]
    var jobProgressTexts: [String: String] = [:]
    /// Cached renditions by key (``RenditionStore``).
    var renditions: [String: RenditionRecord] = [:]

    public init() {}

    public func createBucket(_ bucket: BucketRecord) async throws {
        guard buckets[bucket.name] == nil else { throw StorageError(.alreadyExists, "the name is taken") }
        buckets[bucket.name] = bucket
    }
    public func bucket(named name: String) async throws -> BucketRecord? { buckets[name] }
    public func listBuckets() async throws -> [BucketRecord] { buckets.values.sorted { $0.name.bytesPrecede($1.name) } }
    public func updateBucket(_ bucket: BucketRecord, endingLinks: Bool) async throws {
        guard let old = buckets[bucket.name] else { throw StorageError.notFound("bucket not found") }
        var b = bucket
        b.createdAt = old.createdAt
        buckets[bucket.name] = b
        if endingLinks {
            let flip = Int64.newGeneration()
            for (key, var o) in objects where key.bucket.bytesEqual(bucket.name) {
                o.generation ^= flip
                objects[key] = o
            }
        }
    }
    public func deleteBucket(named name: String) async throws {
        guard buckets[name] != nil else { throw StorageError.notFound("bucket not found") }
        guard !objects.keys.contains(where: { $0.bucket == name }) else { throw StorageError(.conflict, "the bucket is not empty") }
        buckets[name] = nil
    }

    public func object(at key: ObjectKey) async throws -> ObjectRecord? { objects[key] }

    public func objects(in bucket: String, paths: [ObjectPath]) async throws -> [ObjectPath: ObjectRecord] {
        var result: [ObjectPath: ObjectRecord] = [:]
        for p in paths { if let o = objects[ObjectKey(bucket: bucket, path: p)] { result[p] = o } }
        return result
    }

    public func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try atomically {
            try self.apply(jobs, for: object.key)
            return try self.put(object, upsert: upsert, quota: quota)
        }
    }

    private func put(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota) throws -> ObjectRecord? {
        guard buckets[object.bucket] != nil else { throw StorageError.notFound("bucket not found") }
        let existing = objects[object.key]
        if existing != nil, !upsert { throw StorageError(.alreadyExists, "an object already exists at this path") }
        if quota.limitsStorage, let owner = object.owner {
            var after = storedUsage(of: owner)
            if let existing, existing.owner.map({ $0.bytesEqual(owner) }) ?? false {
                after.bytes -= existing.size
                after.objects -= 1
            }
            try quota.check(TenantUsage(bytes: after.bytes + object.size, objects: after.objects + 1))
        }
        var o = object
        if let existing { o.createdAt = existing.createdAt }
        objects[object.key] = o
        return existing
    }

    public func deleteObject(at key: ObjectKey) async throws -> ObjectRecord? { objects.removeValue(forKey: key) }

    public func moveObject(from: ObjectKey, to: ObjectKey, generation: Int64, at date: Date) async throws -> ObjectRecord {
        guard buckets[to.bucket] != nil else { throw StorageError.notFound("bucket not found") }
        guard var o = objects[from] else { throw StorageError.notFound() }
        if from != to, objects[to] != nil { throw StorageError(.alreadyExists, "an object already exists at the destination") }
        objects[from] = nil
        o.bucket = to.bucket
        o.path = to.path
        o.generation = generation
        o.updatedAt = date
        objects[to] = o
        return o
    }

    public func setGeneration(_ generation: Int64, at key: ObjectKey, date: Date) async throws -> ObjectRecord {
        guard var o = objects[key] else { throw StorageError.notFound() }
        o.generation = generation
        o.updatedAt = date
        objects[key] = o
        return o
    }

    public func listObjects(in bucket: String, prefix: String, after cursor: String?, limit: Int) async throws -> [ObjectRecord] {
        let matching = objects.values.filter { (o: ObjectRecord) -> Bool in
            guard o.bucket.bytesEqual(bucket), o.path.string.hasBytePrefix(prefix) else { return false }
            if let cursor { return cursor.bytesPrecede(o.path.string) }
            return true
        }
        return Array(matching.sorted { $0.path.string.bytesPrecede($1.path.string) }.prefix(limit))
    }

    public func usage(of owner: String, now: Date) async throws -> TenantUsage {
        var usage = storedUsage(of: owner)
        usage.pendingIntents =
            intents.values.filter { ($0.owner.map { $0.bytesEqual(owner) } ?? false) && $0.state == .pending && $0.expiresAt > now }.count
        return usage
    }

    private func storedUsage(of owner: String) -> TenantUsage {
        let mine = objects.values.filter { $0.owner.map { $0.bytesEqual(owner) } ?? false }
        return TenantUsage(bytes: mine.reduce(0) { $0 + $1.size }, objects: mine.count)
    }

    public func referencedBlobs(among ids: [BlobID]) async throws -> Set<BlobID> {
        let all = Set(objects.values.map(\.blobID)).union(renditions.values.map(\.blobID))
        return Set(ids.filter(all.contains))
    }

    public func createIntent(_ intent: UploadIntent) async throws {
        guard intents[intent.id] == nil else { throw StorageError(.alreadyExists, "the id is taken") }
        intents[intent.id] = intent
    }
    public func intent(id: String) async throws -> UploadIntent? { intents[id] }

    public func claimIntent(id: String, now: Date) async throws -> UploadIntent {
        guard var i = intents[id] else { throw StorageError(.notFound, "upload intent not found") }
        guard i.state == .pending else { throw StorageError(.uploadConsumed, "this upload URL has already been used") }
        guard i.expiresAt > now else { throw StorageError(.urlExpired, "the upload URL has expired") }
        i.state = .uploading
        intents[id] = i
        return i
    }

    public func releaseIntent(id: String) async throws {
        if intents[id]?.state == .uploading { intents[id]?.state = .pending }
    }

    public func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        guard let i = intents[id], i.state == .uploading else {
            throw StorageError(.uploadConsumed, "this upload URL is not being uploaded")
        }
        let replaced = try atomically {
            try self.apply(jobs, for: object.key)
            return try self.put(object, upsert: i.upsert, quota: quota)
        }
        intents[id]?.state = .consumed
        return replaced
    }

    public func deleteIntents(expiredBefore date: Date) async throws -> Int {
        let expired = intents.values.filter { $0.expiresAt < date }.map(\.id)
        for id in expired { intents[id] = nil }
        return expired.count
    }

    public func ping() async throws {}
}
