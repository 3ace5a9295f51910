import Foundation

/// Buckets, object rows and upload intents, changed in transactions.
///
/// Bytes and names are separate: rename, move between buckets and the visibility flip are one
/// metadata transaction that repoints a row — no bytes are copied, and there is no moment when an
/// object is in both places or in neither.
///
/// Errors: implementations throw ``StorageError`` only — `.notFound` when a named row is missing,
/// `.alreadyExists` on a unique violation, `.uploadConsumed` when an intent is not claimable,
/// `.urlExpired` for an expired intent, `.conflict` for other state conflicts, `.unavailable`
/// when the database cannot be reached.
public protocol MetadataStore: Sendable {
    // MARK: Buckets

    /// Creates a bucket; `.alreadyExists` when the name is taken.
    func createBucket(_ bucket: BucketRecord) async throws
    func bucket(named name: String) async throws -> BucketRecord?
    func listBuckets() async throws -> [BucketRecord]
    /// Replaces a bucket's settings; `.notFound` when missing. With `endingLinks` (a visibility
    /// change), every object of the bucket gets a new generation in the same transaction, so every
    /// signed link minted before it stops working (O(objects in the bucket)).
    func updateBucket(_ bucket: BucketRecord, endingLinks: Bool) async throws
    /// Deletes an empty bucket; `.notFound` when missing, `.conflict` when it still has objects.
    func deleteBucket(named name: String) async throws

    // MARK: Objects

    func object(at key: ObjectKey) async throws -> ObjectRecord?
    /// The rows of the given names in one bucket that exist (one query, for batches).
    func objects(in bucket: String, paths: [ObjectPath]) async throws -> [ObjectPath: ObjectRecord]
    /// Inserts a row (`upsert == false`: `.alreadyExists` when the name is taken) or replaces it.
    /// Returns the replaced row, whose blob the caller deletes after the commit.
    /// With an owner on the row, its owner's usage after the write is checked against `quota`
    /// (``TenantQuota/check(_:)``) in the same transaction: a write past the quota is rolled back.
    /// `jobs` are queued in the same transaction (``JobBatch``): the object and the work it
    /// starts are stored together or not at all.
    @discardableResult
    func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord?
    /// Deletes a row and returns it; `nil` when there was none.
    func deleteObject(at key: ObjectKey) async throws -> ObjectRecord?
    /// Repoints a row to a new bucket and/or name in one transaction, with a new generation.
    /// `.notFound` when the source is missing, `.alreadyExists` when the destination is taken.
    func moveObject(from: ObjectKey, to: ObjectKey, generation: Int64, at date: Date) async throws -> ObjectRecord
    /// Sets a new generation (revoking every download token minted before). `.notFound` if missing.
    func setGeneration(_ generation: Int64, at key: ObjectKey, date: Date) async throws -> ObjectRecord
    /// Objects of a bucket whose name starts with `prefix` (a string prefix of the canonical name),
    /// ordered by name, strictly after `cursor`, at most `limit`.
    func listObjects(in bucket: String, prefix: String, after cursor: String?, limit: Int) async throws -> [ObjectRecord]
    /// Of the given blob ids, those that an object row still points at.
    func referencedBlobs(among ids: [BlobID]) async throws -> Set<BlobID>

    // MARK: Upload intents

    func createIntent(_ intent: UploadIntent) async throws
    func intent(id: String) async throws -> UploadIntent?
    /// Atomically moves an intent from pending to uploading. `.notFound` when missing,
    /// `.uploadConsumed` when consumed or already being uploaded, `.urlExpired` when expired.
    func claimIntent(id: String, now: Date) async throws -> UploadIntent
    /// Puts a claimed intent back to pending after a failed upload.
    func releaseIntent(id: String) async throws
    /// In one transaction: puts the object (honouring the intent's upsert flag) and marks the intent
    /// consumed, with the owner's usage checked against `quota` as ``putObject(_:upsert:quota:)``
    /// does. Returns the replaced row, if any.
    @discardableResult
    func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord?
    /// Deletes intents that expired before `date`. Returns how many.
    func deleteIntents(expiredBefore date: Date) async throws -> Int

    // MARK: Usage

    /// What one owner (tenant) holds, for quotas: bytes and objects over every bucket, and upload
    /// intents still `pending` and unexpired at `now`. Indexed by owner.
    func usage(of owner: String, now: Date) async throws -> TenantUsage

    // MARK: Health

    /// Checks that the database answers.
    func ping() async throws
}

extension MetadataStore {
    /// ``putObject(_:upsert:quota:jobs:)`` starting no jobs.
    @discardableResult
    public func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota) async throws -> ObjectRecord? {
        try await putObject(object, upsert: upsert, quota: quota, jobs: .none)
    }

    /// ``commitIntent(id:object:quota:jobs:)`` starting no jobs.
    @discardableResult
    public func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota) async throws -> ObjectRecord? {
        try await commitIntent(id: id, object: object, quota: quota, jobs: .none)
    }

    /// ``putObject(_:upsert:quota:)`` with no quota.
    @discardableResult
    public func putObject(_ object: ObjectRecord, upsert: Bool) async throws -> ObjectRecord? {
        try await putObject(object, upsert: upsert, quota: .unlimited)
    }

    /// ``commitIntent(id:object:quota:)`` with no quota.
    @discardableResult
    public func commitIntent(id: String, object: ObjectRecord) async throws -> ObjectRecord? {
        try await commitIntent(id: id, object: object, quota: .unlimited)
    }
}
