import Foundation
import NIOCore

/// What an upload through the Storage API says about its object, besides the bytes.
public struct ObjectWrite: Sendable {
    /// The declared type; the bucket's rule decides what is stored (``BucketTypes``).
    public var contentType: String?
    public var contentLength: Int64?
    public var cacheControl: String?
    /// User metadata, a JSON object as text.
    public var userMetadata: String?
    /// Replace an existing object instead of refusing with `.alreadyExists`.
    public var upsert: Bool

    public init(
        contentType: String? = nil, contentLength: Int64? = nil, cacheControl: String? = nil, userMetadata: String? = nil, upsert: Bool = false
    ) {
        self.contentType = contentType
        self.contentLength = contentLength
        self.cacheControl = cacheControl
        self.userMetadata = userMetadata
        self.upsert = upsert
    }
}

/// How a copy treats the source's metadata.
public struct CopyOptions: Sendable {
    public var upsert = false
    /// Overrides of the copied type and cache policy.
    public var contentType: String?
    public var cacheControl: String?
    /// `false`: the copy gets `userMetadata` instead of the source's user metadata.
    public var copyMetadata = true
    public var userMetadata: String?
    public init() {}
}

// MARK: - Objects in any bucket (the Storage API)
//
// The access rules decide (``StorageService/authorize(_:_:_:)``; by default Depot's tenant rule:
// `service_role` may act on any name, an `authenticated` caller on names under `{sub}/`); anyone
// may read objects of a public bucket. A read the caller may not make looks like a missing object.

extension StorageService {
    /// Uploads an object at a caller-chosen name, with the bucket's size limit and types.
    /// - Throws: `.forbidden`, `.bucketNotFound`, `.alreadyExists` (no upsert), `.payloadTooLarge`,
    ///   `.unsupportedMediaType`, `.mediaTypeMismatch`.
    public func writeObject<Body: AsyncSequence>(
        as identity: Identity, at key: ObjectKey, _ write: ObjectWrite, body: Body
    ) async throws -> ObjectRecord where Body.Element == ByteBuffer {
        let bucket = try await writableBucket(identity, key, upsert: write.upsert)
        let rules = bucketRules(bucket, declaredType: write.contentType, path: key.path)
        try precheck(rules, contentLength: write.contentLength)
        try await refuseExisting(key, upsert: write.upsert)
        try await checkQuotaEarly(owner: identity.owner, declared: write.contentLength, replacing: key)
        let blob = try await ingest(body, rules: rules)
        return try await commit(
            blob, at: key, owner: identity.owner, upsert: write.upsert, cacheControl: write.cacheControl,
            metadata: write.userMetadata
        ).0
    }

    /// The ingest rules of a bucket: the smaller of its limit and the server's, its allowed types
    /// (for the Assets API's two buckets, when they have none of their own, the server's allowed
    /// types, so both APIs put the same kind of object there). Studio's `.emptyFolderPlaceholder`
    /// objects must be empty and skip the type check.
    func bucketRules(_ bucket: BucketRecord, declaredType: String?, path: ObjectPath) -> IngestRules {
        let placeholder = path.lastSegment == ".emptyFolderPlaceholder"
        var rules = IngestRules(
            maxSize: placeholder ? 0 : min(settings.maxFileSize, bucket.fileSizeLimit ?? .max),
            allowedTypes: nil, declaredType: declaredType)
        let isAssetsBucket = bucket.name == settings.privateBucket || bucket.name == settings.publicBucket
        let allowed = bucket.allowedMimeTypes ?? (isAssetsBucket ? settings.allowedTypes : nil)
        rules.typing = .bucket(placeholder ? nil : allowed.map(BucketTypes.init(stored:)))
        return rules
    }

    /// The object at `key` if the caller may read it. An anonymous caller is told the bucket
    /// does not exist; anyone else that the object does not.
    public func readObject(as identity: Identity, at key: ObjectKey) async throws -> ObjectRecord {
        try await readObjectAndBucket(as: identity, at: key).0
    }

    /// ``readObject(as:at:)`` with the object's bucket (for its visibility).
    public func readObjectAndBucket(as identity: Identity, at key: ObjectKey) async throws -> (ObjectRecord, BucketRecord) {
        let bucket = try await existingBucket(key.bucket)
        guard mayRead(identity, key, in: bucket) else {
            throw identity.role == .anon ? StorageError.bucketNotFound() : StorageError.notFound()
        }
        guard let record = try await metadata.object(at: key) else { throw StorageError.notFound() }
        return (record, bucket)
    }

    /// Renames an object, within or across buckets: one metadata transaction, no bytes copied.
    /// Every earlier signed URL stops working.
    /// - Throws: `.notFound` (source), `.alreadyExists` (destination), `.bucketNotFound`, and the
    ///   destination bucket's limits.
    public func moveObject(as identity: Identity, from: ObjectKey, to: ObjectKey) async throws -> ObjectRecord {
        let sourceFound = try await metadata.bucket(named: from.bucket)
        let destinationFound = from.bucket.bytesEqual(to.bucket) ? sourceFound : try await metadata.bucket(named: to.bucket)
        try authorize(identity, .update, from, by: policy(for: sourceFound))
        try authorize(identity, .update, to, by: policy(for: destinationFound))
        guard let source = sourceFound, let destination = destinationFound else { throw StorageError.bucketNotFound() }
        guard let record = try await metadata.object(at: from) else { throw StorageError.notFound() }
        try checkFits(size: record.size, type: record.contentType, in: destination)
        try await checkBytesFit(record, from: source, in: destination, at: to.path)
        let moved = try await metadata.moveObject(from: from, to: to, generation: .newGeneration(), at: now())
        // Its variants (every size beside it) go with it; those its new bucket wants and it lacks
        // are made.
        if try await hasVariants(record, sizes: variantSizes(in: from.bucket)) {
            await moveVariants(from: from, to: to, sizes: try await presentVariantSizes(of: from))
        }
        await queueMissingVariants(of: moved)
        return moved
    }

    /// Copies an object's bytes to a new blob (streamed) and names it `to`. The copy is checked
    /// like an upload into the destination: its size limit, and a new type (`mimetype`) must parse
    /// and agree with the bytes under the bucket's type rules.
    public func copyObject(as identity: Identity, from: ObjectKey, to: ObjectKey, _ options: CopyOptions = CopyOptions()) async throws -> ObjectRecord
    {
        let source = try await readObject(as: identity, at: from)
        let found = try await metadata.bucket(named: to.bucket)
        try authorizeWrite(identity, to, upsert: options.upsert, in: found)
        guard let destination = found else { throw StorageError.bucketNotFound() }
        let rules = bucketRules(destination, declaredType: options.contentType ?? source.contentType, path: to.path)
        try precheck(rules, contentLength: source.size)
        try await refuseExisting(to, upsert: options.upsert)
        try await checkQuotaEarly(owner: identity.owner, declared: source.size, replacing: to)
        let blob = try await ingest(rules: rules) { consume in try await read(source, into: consume) }
        return try await commit(
            blob, at: to, owner: identity.owner, upsert: options.upsert,
            cacheControl: options.cacheControl ?? source.cacheControl,
            metadata: options.copyMetadata ? source.metadata : options.userMetadata
        ).0
    }

    /// Refuses early, before any byte is read, a create-only write to a name that exists (the
    /// commit checks again, atomically).
    func refuseExisting(_ key: ObjectKey, upsert: Bool) async throws {
        if !upsert, try await metadata.object(at: key) != nil {
            throw StorageError(.alreadyExists, "the object already exists")
        }
    }

    /// A move into a bucket with other type rules: the object's bytes must pass them as an
    /// upload would (sniffed from its first bytes), keeping the type it has.
    private func checkBytesFit(_ record: ObjectRecord, from source: BucketRecord, in destination: BucketRecord, at path: ObjectPath) async throws {
        let rules = bucketRules(destination, declaredType: record.contentType, path: path)
        let sourceRules = bucketRules(source, declaredType: record.contentType, path: record.path)
        try precheck(rules, contentLength: record.size)
        if case .bucket(let a) = rules.typing, case .bucket(let b) = sourceRules.typing, a?.entries == b?.entries { return }
        var head = ByteBuffer()
        try await read(record, range: 0..<min(record.size, 512)) { chunk in
            var chunk = chunk
            head.writeBuffer(&chunk)
        }
        let sniffed = head.withUnsafeReadableBytes { MediaSniffer.sniff($0) }
        guard case .bucket(let allowed) = rules.typing else { return }
        let type = try BucketTypes.decide(sniffed: sniffed, declared: record.contentType, allowed: allowed)
        guard MediaSniffer.canonical(type) == MediaSniffer.canonical(record.contentType) else {
            throw StorageError(.mediaTypeMismatch, "the object's bytes are \(type), not \(record.contentType)")
        }
    }

    private func checkFits(size: Int64, type: String, in bucket: BucketRecord) throws(StorageError) {
        if let limit = bucket.fileSizeLimit, size > limit {
            throw StorageError(.payloadTooLarge, "the object is larger than bucket '\(bucket.name)' accepts (\(limit) bytes)")
        }
        if let types = bucket.allowedMimeTypes, !BucketTypes(stored: types).accepts(type) {
            throw StorageError(.unsupportedMediaType, "mime type \(type) is not supported by bucket '\(bucket.name)'")
        }
    }

    /// Deletes one object; `.notFound` when it is missing.
    @discardableResult
    public func deleteObject(as identity: Identity, at key: ObjectKey) async throws -> ObjectRecord {
        try await authorize(identity, .delete, key)
        guard let removed = try await metadata.deleteObject(at: key) else { throw StorageError.notFound() }
        await discard(removed.blobID)
        if try await hasVariants(removed, sizes: variantSizes(in: key.bucket)) {
            await deleteVariants(of: removed, sizes: try await presentVariantSizes(of: key))
        }
        return removed
    }

    /// Deletes the named objects the caller may delete; others are skipped. A name ending in `/`
    /// (which no object has) stands for every object under that folder (Depot's extension);
    /// more than ``StorageSettings/maxBatch`` objects in all refuse the whole call (a folder job,
    /// ``queueFolderDelete(as:bucket:prefix:)``, deletes any number).
    /// - Returns: the deleted rows.
    public func removeObjects(as identity: Identity, bucket: String, paths: [String]) async throws -> [ObjectRecord] {
        try checkBatch(paths.count)
        let policy = try await policy(forBucket: bucket)
        var names: [ObjectPath] = []
        var seen: Set<ObjectPath> = []
        // Only what the caller may delete counts (refused names stay invisible, whatever they hold).
        func add(_ path: ObjectPath) throws(StorageError) {
            guard policy.allows(identity, .delete, bucket: bucket, path: path), seen.insert(path).inserted else { return }
            names.append(path)
            guard names.count <= settings.maxBatch else {
                throw .invalidRequest(
                    "these names and folders hold more than \(settings.maxBatch) objects: delete a large folder with POST /v1/folders/delete (a background job)"
                )
            }
        }
        for raw in paths {
            if raw.hasSuffix("/") {
                guard let folder = try? Self.checkFolder(raw, "prefix") else { continue }
                var after: String? = nil
                while true {
                    let page = try await metadata.listObjects(in: bucket, prefix: folder, after: after, limit: 1000)
                    for r in page where r.path.string.hasBytePrefix(folder) { try add(r.path) }
                    after = page.last?.path.string
                    if page.count < 1000 { break }
                }
            } else if let path = try? ObjectPath(raw) {
                try add(path)
            }
        }
        var removed: [ObjectRecord] = []
        for path in names {
            if let r = try await metadata.deleteObject(at: ObjectKey(bucket: bucket, path: path)) { removed.append(r) }
        }
        await discard(removed.map(\.blobID))
        let sizes = try await variantSizes(in: bucket)
        for r in removed where hasVariants(r, sizes: sizes) {
            await deleteVariants(of: r, sizes: try await presentVariantSizes(of: r.key))
        }
        return removed
    }

    /// Ends every signed URL of one object, in any bucket (downloads and transformations: they
    /// are bound to its generation, which changes; nothing else does). Whoever may delete the
    /// object may revoke its links.
    public func revokeObjectLinks(as identity: Identity, at key: ObjectKey) async throws -> ObjectRecord {
        try await authorize(identity, .delete, key)
        _ = try await existingBucket(key.bucket)
        guard try await metadata.object(at: key) != nil else { throw StorageError.notFound() }
        return try await metadata.setGeneration(.newGeneration(), at: key, date: now())
    }

    /// A download token for one object the caller may read, valid `expiresIn` seconds, until
    /// the object is moved, flipped, revoked or deleted.
    public func signObject(as identity: Identity, at key: ObjectKey, expiresIn: Int64) async throws -> String {
        let ttl = try checkTTL(expiresIn)
        let bucket = try await existingBucket(key.bucket)
        guard bucket.isPublic || policy(for: bucket).allows(identity, .sign, bucket: key.bucket, path: key.path) else {
            throw identity.role == .anon ? StorageError.bucketNotFound() : StorageError.notFound()
        }
        guard let record = try await metadata.object(at: key) else { throw StorageError.notFound() }
        return signer.mint(
            scope: .download, bucket: key.bucket, path: key.path, binding: String(record.generation), expiresAt: unixNow() + ttl)
    }

    /// Download tokens for up to ``StorageSettings/maxBatch`` names of one bucket: one metadata
    /// query, one HMAC per name. `nil` for names that are invalid, missing or not readable.
    public func signObjects(as identity: Identity, bucket: String, paths: [String], expiresIn: Int64) async throws -> [String?] {
        try checkBatch(paths.count)
        let ttl = try checkTTL(expiresIn)
        guard let b = try await metadata.bucket(named: bucket) else { return paths.map { _ in nil } }
        let policy = policy(for: b)
        let parsed: [ObjectPath?] = paths.map { raw in
            guard let p = try? ObjectPath(raw), b.isPublic || policy.allows(identity, .sign, bucket: bucket, path: p) else { return nil }
            return p
        }
        let rows = try await metadata.objects(in: bucket, paths: parsed.compactMap { $0 })
        let expiresAt = unixNow() + ttl
        return parsed.map { p in
            guard let p, let r = rows[p] else { return nil }
            return signer.mint(scope: .download, bucket: bucket, path: p, binding: String(r.generation), expiresAt: expiresAt)
        }
    }

    /// Supabase's signed upload URL: an open, single-use intent for `key` (any size up to the
    /// bucket's limit, a type the bucket accepts), checked for permission and existence now.
    /// - Returns: the upload token.
    public func createUploadToken(as identity: Identity, at key: ObjectKey, upsert: Bool) async throws -> String {
        let found = try await metadata.bucket(named: key.bucket)
        try authorizeWrite(identity, key, upsert: upsert, in: found)
        guard found != nil else { throw StorageError.bucketNotFound() }
        try await refuseExisting(key, upsert: upsert)
        return try await storeIntent(key: key, owner: identity.owner, contentType: "", size: 0, checksum: nil, upsert: upsert).token
    }
}
