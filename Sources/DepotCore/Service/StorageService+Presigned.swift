import Foundation
import Logging
import NIOCore

// MARK: - Two-phase (presigned) uploads

extension StorageService {
    /// Phase one: validates type, size and path as for a normal upload, stores an upload intent and
    /// returns a single-use URL whose token names it.
    /// - Throws: `.invalidRequest` (job id, suffix, size ≤ 0, checksum shape), `.payloadTooLarge`,
    ///   `.unsupportedMediaType`.
    public func createPresignedUpload(
        as identity: Identity, jobId: String, contentType: String, size: Int64, checksum: String? = nil,
        suffix: String = "", visibility: Visibility = .private
    ) async throws -> PresignedUpload {
        let (key, type) = try assetTarget(
            as: identity, jobId: jobId, contentType: contentType, size: size, checksum: checksum, suffix: suffix, visibility: visibility)
        return try await createIntent(
            key: key, owner: try identity.tenant(), contentType: type, size: size, checksum: checksum?.lowercased(), upsert: false)
    }

    /// Where an Assets API upload announced before its bytes goes, `{sub}/{jobId}/{uuid}{suffix}.{ext}`
    /// in the visibility's bucket, and its canonical type; checked as the upload will be.
    func assetTarget(
        as identity: Identity, jobId: String, contentType: String, size: Int64, checksum: String?, suffix: String, visibility: Visibility
    ) throws -> (key: ObjectKey, type: String) {
        let userId = try identity.tenant()
        try Self.validate(jobId: jobId)
        try Self.validate(suffix: suffix)
        guard size >= 1 else { throw StorageError.invalidRequest("size must be at least 1 byte") }
        let type = MediaSniffer.canonical(contentType)
        var rules = assetRules(UploadDeclaration(contentType: type, contentLength: size, sha256: checksum))
        rules.exactSize = size
        try precheck(rules, contentLength: size)
        guard rules.allowedTypes?.contains(type) == true, let ext = MediaSniffer.fileExtension(for: type) else {
            let allowed = (rules.allowedTypes ?? []).sorted().joined(separator: ", ")
            throw StorageError(.unsupportedMediaType, "type '\(contentType)' is not allowed; allowed: \(allowed)")
        }
        let path = try ObjectPath(segments: [userId, jobId, "\(UUID().uuidString.lowercased())\(suffix).\(ext)"])
        return (ObjectKey(bucket: bucket(for: visibility), path: path), type)
    }

    /// Stores an intent and mints its upload URL.
    public func createIntent(key: ObjectKey, owner: String?, contentType: String, size: Int64, checksum: String?, upsert: Bool) async throws
        -> PresignedUpload
    {
        let (intent, token) = try await storeIntent(key: key, owner: owner, contentType: contentType, size: size, checksum: checksum, upsert: upsert)
        let url = settings.publicBaseURL + ObjectURLPath.of(ObjectURLPath.signedUpload, bucket: key.bucket, path: key.path) + "?token=" + token
        return PresignedUpload(
            uploadUrl: url, method: "PUT", headers: ["Content-Type": contentType], path: key.path.string,
            expiresAt: intent.expiresAt)
    }

    /// Stores an intent and mints its token.
    func storeIntent(key: ObjectKey, owner: String?, contentType: String, size: Int64, checksum: String?, upsert: Bool) async throws -> (
        UploadIntent, token: String
    ) {
        try await checkUploadURLQuota(owner: owner, size: size)
        let exp = unixNow() + settings.uploadURLTTL
        let intent = UploadIntent(
            bucket: key.bucket, path: key.path, owner: owner, contentType: contentType, size: size,
            sha256: checksum, upsert: upsert, expiresAt: Date(timeIntervalSince1970: TimeInterval(exp)), createdAt: now())
        try await metadata.createIntent(intent)
        return (intent, signer.mint(scope: .upload, bucket: key.bucket, path: key.path, binding: intent.id, expiresAt: exp))
    }

    /// The intent an upload URL names, after checking its token (signature, scope, expiry, name).
    /// Cheap checks before claiming, so a wrong request does not block the real one.
    public func uploadIntent(bucket: String, path: ObjectPath, token: String) async throws -> UploadIntent {
        let claims = try signer.verify(token, scope: .upload, bucket: bucket, path: path, now: unixNow())
        guard let pending = try await metadata.intent(id: claims.binding), pending.key == ObjectKey(bucket: bucket, path: path) else {
            throw StorageError(.signatureInvalid, "the upload URL is not valid")
        }
        return pending
    }

    /// Phase two: the PUT to an upload URL. Verifies the token, claims the intent atomically (a
    /// second PUT gets `.uploadConsumed`), streams with the intent's type, size and checksum, and
    /// commits the object and consumes the intent in one transaction. A failed upload puts the
    /// intent back to pending until it expires.
    public func completePresignedUpload<Body: AsyncSequence>(
        bucket: String, path: ObjectPath, token: String, declaration: UploadDeclaration, body: Body
    ) async throws -> ObjectRecord where Body.Element == ByteBuffer {
        let pending = try await uploadIntent(bucket: bucket, path: path, token: token)
        return try await completeUpload(pending, declaration: declaration, body: body)
    }

    /// Phase two for an intent already looked up by ``uploadIntent(bucket:path:token:)``. An open
    /// intent takes the bucket's limit and types, and `cacheControl`/`userMetadata`; an Assets API
    /// intent exactly its declared size, type and checksum.
    public func completeUpload<Body: AsyncSequence>(
        _ pending: UploadIntent, declaration: UploadDeclaration, cacheControl: String? = nil, userMetadata: String? = nil, body: Body
    ) async throws -> ObjectRecord where Body.Element == ByteBuffer {
        if pending.state == .consumed { throw StorageError(.uploadConsumed, "this upload URL has already been used") }
        let bucketRecord = try await existingBucket(pending.bucket)
        let rules: IngestRules
        if pending.isOpen {
            rules = bucketRules(bucketRecord, declaredType: declaration.contentType, path: pending.path)
        } else {
            let declared = declaration.contentType.map(MediaSniffer.canonical)
            if let declared, declared != pending.contentType, declared != "application/octet-stream" {
                throw StorageError(.mediaTypeMismatch, "this URL takes \(pending.contentType), not \(declared)")
            }
            rules = IngestRules(
                maxSize: min(pending.size, bucketRecord.fileSizeLimit ?? Int64.max), exactSize: pending.size,
                allowedTypes: [pending.contentType], declaredType: pending.contentType, sha256: pending.sha256)
        }
        try precheck(rules, contentLength: declaration.contentLength)
        try await checkQuotaEarly(owner: pending.owner, declared: declaration.contentLength, replacing: pending.key)
        let intent = try await metadata.claimIntent(id: pending.id, now: now())
        do {
            let blob = try await ingest(body, rules: rules)
            return try await commitClaimed(blob, intent: intent, cacheControl: cacheControl, userMetadata: userMetadata)
        } catch {
            await release(intent)
            throw error
        }
    }

    /// Commits `blob` as the object of a claimed intent and consumes the intent, in one
    /// transaction; deletes the blob when that fails and the replaced blob when it succeeds.
    func commitClaimed(
        _ blob: IngestedBlob, intent: UploadIntent, cacheControl: String?, userMetadata: String?, finishing upload: ResumableUpload? = nil
    ) async throws -> ObjectRecord {
        let record = ObjectRecord(
            bucket: intent.bucket, path: intent.path, owner: intent.owner, blobID: blob.id, size: blob.size,
            contentType: blob.contentType, sha256: blob.sha256, cacheControl: cacheControl, metadata: userMetadata,
            createdAt: now())
        let replaced: ObjectRecord?
        do {
            let jobs = try await jobBatch(for: record, upsert: intent.upsert)
            let quota = await commitQuota(owner: intent.owner, finishing: upload)
            replaced = try await metadata.commitIntent(id: intent.id, object: record, quota: quota, jobs: jobs)
        } catch {
            await discard(blob.id)
            throw error
        }
        if let replaced { await discard(replaced.blobID) }
        return record
    }

    /// Puts a claimed intent back to pending (its upload failed; the URL may be used again).
    func release(_ intent: UploadIntent) async {
        do { try await metadata.releaseIntent(id: intent.id) } catch {
            logger.warning("could not release upload intent", metadata: ["error": "\(error)"])
        }
    }
}
