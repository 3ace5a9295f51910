import Foundation
import Logging

// MARK: - Buckets (the Storage API)

extension StorageService {
    /// The buckets the caller may manage: every bucket for `service_role`; for anyone else those
    /// an access rule allows `bucket_admin` on (none by default: buckets are the project's).
    public func listBuckets(as identity: Identity) async throws -> [BucketRecord] {
        let policy = settings.accessPolicy
        guard identity.role == .serviceRole || policy.rules.contains(where: { $0.operations.contains(.bucketAdmin) }) else { return [] }
        return try await metadata.listBuckets().filter { mayManageBucket(as: identity, named: $0.name) }
    }

    /// One bucket, for whoever may manage it; `.bucketNotFound` for anyone else, as when it is
    /// missing.
    public func bucket(as identity: Identity, named name: String) async throws -> BucketRecord {
        guard mayManageBucket(as: identity, named: name), let bucket = try await metadata.bucket(named: name) else {
            throw StorageError.bucketNotFound()
        }
        return bucket
    }

    /// Creates a bucket (`service_role` only).
    /// - Throws: `.invalidRequest` for a bad name, `.payloadTooLarge` for a size limit above the
    ///   server's, `.unsupportedMediaType` for a malformed type entry, `.alreadyExists`.
    @discardableResult
    public func createBucket(
        as identity: Identity, name: String, isPublic: Bool, fileSizeLimit: Int64?, allowedMimeTypes: [String]?,
        variants: [String]? = nil, rules: String? = nil
    ) async throws -> BucketRecord {
        try authorizeBucketAdmin(identity, bucket: name)
        try Self.checkRulesSetter(identity, setsRules: rules != nil)
        try BucketRecord.validate(name: name)
        if let rules { try Self.checkRules(rules, bucket: name) }
        let record = BucketRecord(
            name: name, isPublic: isPublic, fileSizeLimit: try checkBucketLimit(fileSizeLimit),
            allowedMimeTypes: try allowedMimeTypes.map { try BucketTypes(validating: $0).entries },
            owner: identity.subject, variants: try Self.variantSizes(variants ?? []), rules: rules, createdAt: now())
        try await metadata.createBucket(record)
        return record
    }

    /// Changes a bucket's settings (`service_role` only). For the two optional settings, `nil`
    /// keeps the current value and `.some(nil)` clears it; `variants` nil keeps them, empty ends
    /// them (for images uploaded from then on).
    public func updateBucket(
        as identity: Identity, name: String, isPublic: Bool?, fileSizeLimit: Int64??, allowedMimeTypes: [String]??,
        variants: [String]? = nil, rules: String?? = nil
    ) async throws {
        try authorizeBucketAdmin(identity, bucket: name)
        try Self.checkRulesSetter(identity, setsRules: rules != nil)
        guard var bucket = try await metadata.bucket(named: name) else { throw StorageError.bucketNotFound() }
        // A visibility change ends every signed link minted before it (anyone may sign objects
        // of a public bucket; made private, those links must not keep working).
        let visibilityChanges = isPublic.map { $0 != bucket.isPublic } ?? false
        if let isPublic { bucket.isPublic = isPublic }
        if let limit = fileSizeLimit { bucket.fileSizeLimit = try checkBucketLimit(limit) }
        if let types = allowedMimeTypes { bucket.allowedMimeTypes = try types.map { try BucketTypes(validating: $0).entries } }
        if let variants { bucket.variants = try Self.variantSizes(variants) }
        if let rules {
            if let text = rules { try Self.checkRules(text, bucket: name) }
            bucket.rules = rules
        }
        bucket.updatedAt = now()
        try await metadata.updateBucket(bucket, endingLinks: visibilityChanges)
    }

    /// A bucket's own access rules are the service role's to set (they may widen what others may
    /// do; a `bucket_admin` rule gives a bucket's settings, not its rules).
    static func checkRulesSetter(_ identity: Identity, setsRules: Bool) throws(StorageError) {
        guard !setsRules || identity.role == .serviceRole else { throw .forbidden("only the service_role key sets a bucket's access rules") }
    }

    /// Rules text that compiles for `bucket`, else `.invalidRequest` with the reason.
    static func checkRules(_ text: String, bucket: String) throws(StorageError) {
        do { _ = try AccessPolicy.bucketRules(text, bucket: bucket) } catch { throw .invalidRequest("rules: \(error)") }
    }

    /// A bucket's `variants` setting: sizes `WxH`, 1–4096 a side, at most ``VariantSize/maxCount``.
    static func variantSizes(_ texts: [String]) throws(StorageError) -> [VariantSize] {
        do throws(VariantSize.ListError) {
            return try VariantSize.parseList(texts)
        } catch {
            switch error {
            case .notASize(let text):
                throw .invalidRequest("variants must be sizes WxH of 1 to 4096 pixels a side (e.g. \"112x112\"); got \"\(text)\"")
            case .tooMany:
                throw .invalidRequest("variants: at most \(VariantSize.maxCount) sizes")
            }
        }
    }

    /// Deletes every object of a bucket (`service_role` only): rows first, then blobs.
    /// - Returns: how many objects were deleted.
    @discardableResult
    public func emptyBucket(as identity: Identity, name: String) async throws -> Int {
        try authorizeBucketAdmin(identity, bucket: name)
        guard try await metadata.bucket(named: name) != nil else { throw StorageError.bucketNotFound() }
        var count = 0
        // The service role empties everything; anyone else (a bucket_admin rule) only what its
        // rules let it delete, the rest stays.
        let policy = try await policy(forBucket: name)
        var after: String? = nil
        while true {
            let page = try await metadata.listObjects(in: name, prefix: "", after: after, limit: 500)
            if page.isEmpty { return count }
            if identity.role != .serviceRole { after = page.last?.path.string }
            var blobs: [BlobID] = []
            for record in page where policy.allows(identity, .delete, bucket: name, path: record.path) {
                if let removed = try await metadata.deleteObject(at: record.key) {
                    blobs.append(removed.blobID)
                    count += 1
                }
            }
            await discard(blobs)
        }
    }

    /// Deletes an empty bucket (`service_role` only). The Assets API's two buckets cannot be deleted.
    /// - Throws: `.bucketNotFound`, `.conflict` when it still has objects.
    public func deleteBucket(as identity: Identity, name: String) async throws {
        try authorizeBucketAdmin(identity, bucket: name)
        guard name != settings.privateBucket, name != settings.publicBucket else {
            throw StorageError(.conflict, "bucket '\(name)' holds the Assets API's objects and cannot be deleted")
        }
        do {
            try await metadata.deleteBucket(named: name)
        } catch let e as StorageError where e.code == .notFound {
            throw StorageError.bucketNotFound()
        } catch let e as StorageError where e.code == .conflict {
            throw StorageError(.conflict, "The bucket you tried to delete is not empty")
        }
    }

    /// The bucket an object operation names; `.bucketNotFound` when it is missing.
    /// Throws `.bucketNotFound` unless `name` is a bucket.
    public func requireBucket(_ name: String) async throws { _ = try await existingBucket(name) }

    func existingBucket(_ name: String) async throws -> BucketRecord {
        guard let bucket = try await metadata.bucket(named: name) else { throw StorageError.bucketNotFound() }
        return bucket
    }

    private func checkBucketLimit(_ limit: Int64?) throws(StorageError) -> Int64? {
        guard let limit else { return nil }
        guard limit >= 0 else { throw .invalidRequest("file_size_limit must not be negative") }
        guard limit <= settings.maxFileSize else {
            throw StorageError(.payloadTooLarge, "file_size_limit is above the server's limit of \(settings.maxFileSize) bytes")
        }
        return limit == 0 ? nil : limit
    }

    /// Deletes blobs no row points at any more, in one batch; failures leave orphans for GC.
    func discard(_ ids: [BlobID]) async {
        guard !ids.isEmpty else { return }
        do { try await blobs.delete(ids) } catch {
            logger.warning("could not delete blobs; garbage collection will", metadata: ["count": "\(ids.count)", "error": "\(error)"])
        }
    }
}
