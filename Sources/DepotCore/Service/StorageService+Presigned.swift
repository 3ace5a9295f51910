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
        let userId = try identity.tenant()
        try Self.validate(jobId: jobId)
        try Self.validate(suffix: suffix)
        guard size >= 1 else { throw StorageError.invalidRequest("size must be at least 1 byte") }
        let type = MediaSniffer.canonical(contentType)
        var rules = assetRules(UploadDeclaration(contentType: type, contentLength: size, sha256: checksum))
        rules.exactSize = size
        try precheck(rules, contentLength: size)
        guard rules.allowedTypes?.contains(type) == true, let ext = MediaSniffer.fileExtension(for: type) else {
            throw StorageError(.unsupportedMediaType, "type '\(contentType)' is not allowed")
        }
        let path = try ObjectPath(segments: [userId, jobId, "\(UUID().uuidString.lowercased())\(suffix).\(ext)"])
        return try await createIntent(
            key: ObjectKey(bucket: bucket(for: visibility), path: path), owner: userId, contentType: type,
            size: size, checksum: checksum?.lowercased(), upsert: false)
    }

    /// Stores an intent and mints its upload URL.
    public func createIntent(key: ObjectKey, owner: String?, contentType: String, size: Int64, checksum: String?, upsert: Bool) async throws -> PresignedUpload {
        let t = now()
        let exp = unixNow() + settings.uploadURLTTL
        let intent = UploadIntent(
            bucket: key.bucket, path: key.path, owner: owner, contentType: contentType, size: size,
            sha256: checksum, upsert: upsert, expiresAt: Date(timeIntervalSince1970: TimeInterval(exp)), createdAt: t)
        try await metadata.createIntent(intent)
        let token = signer.mint(scope: .upload, bucket: key.bucket, path: key.path, binding: intent.id, expiresAt: exp)
        let url = "\(settings.publicBaseURL)/storage/v1/object/upload/sign/\(PercentEncoding.encodeSegment(key.bucket))/\(key.path.percentEncoded)?token=\(token)"
        return PresignedUpload(
            uploadUrl: url, method: "PUT", headers: ["Content-Type": contentType], path: key.path.string,
            expiresAt: intent.expiresAt)
    }

    /// Phase two: the PUT to an upload URL. Verifies the token, claims the intent atomically (a
    /// second PUT gets `.uploadConsumed`), streams with the intent's type, size and checksum, and
    /// commits the object and consumes the intent in one transaction. A failed upload puts the
    /// intent back to pending until it expires.
    public func completePresignedUpload<Body: AsyncSequence>(
        bucket: String, path: ObjectPath, token: String, declaration: UploadDeclaration, body: Body
    ) async throws -> ObjectRecord where Body.Element == ByteBuffer {
        let claims = try signer.verify(token, scope: .upload, bucket: bucket, path: path, now: unixNow())
        // Cheap checks before claiming, so a wrong request does not block the real one.
        guard let pending = try await metadata.intent(id: claims.binding), pending.key == ObjectKey(bucket: bucket, path: path) else {
            throw StorageError(.signatureInvalid, "the upload URL is not valid")
        }
        let declared = declaration.contentType.map(MediaSniffer.canonical)
        if let declared, declared != pending.contentType, declared != "application/octet-stream" {
            throw StorageError(.mediaTypeMismatch, "this URL takes \(pending.contentType), not \(declared)")
        }
        let bucketRecord = try await metadata.bucket(named: bucket)
        let rules = IngestRules(
            maxSize: min(pending.size, bucketRecord?.fileSizeLimit ?? Int64.max), exactSize: pending.size,
            allowedTypes: [pending.contentType], declaredType: pending.contentType, sha256: pending.sha256)
        if pending.state == .consumed { throw StorageError(.uploadConsumed, "this upload URL has already been used") }
        try precheck(rules, contentLength: declaration.contentLength)
        let intent = try await metadata.claimIntent(id: claims.binding, now: now())
        do {
            let blob = try await ingest(body, rules: rules)
            let record = ObjectRecord(
                bucket: bucket, path: path, owner: intent.owner, blobID: blob.id, size: blob.size,
                contentType: blob.contentType, sha256: blob.sha256, createdAt: now())
            let replaced: ObjectRecord?
            do {
                replaced = try await metadata.commitIntent(id: intent.id, object: record)
            } catch {
                await discard(blob.id)
                throw error
            }
            if let replaced { await discard(replaced.blobID) }
            return record
        } catch {
            do { try await metadata.releaseIntent(id: intent.id) } catch {
                logger.warning("could not release upload intent", metadata: ["error": "\(error)"])
            }
            throw error
        }
    }
}
