import Foundation

// MARK: - Creating resumable uploads
//
// Three ways in, one check: a caller's token through the Storage API, an upload URL's token
// (Supabase's signed form, or an Assets API presigned upload), and the Assets API's own entry
// (the server names the object). Each is checked at creation as its finished object would be.

extension StorageService {
    /// Creates an upload of `length` bytes for `key` through the Storage API, refusing what the
    /// finished upload would be refused for.
    /// - Throws: `.forbidden`, `.bucketNotFound`, `.payloadTooLarge`, `.unsupportedMediaType`,
    ///   `.alreadyExists` (no upsert), `.quotaExceeded`, `.rateLimited` (too many open).
    public func createResumable(as identity: Identity, at key: ObjectKey, length: Int64, _ write: ObjectWrite) async throws -> ResumableUpload {
        let store = try resumableStore()
        guard length >= 0 else { throw StorageError.invalidRequest("Upload-Length must be 0 or more") }
        try BucketRecord.validate(name: key.bucket)
        let bucket = try await writableBucket(identity, key, upsert: write.upsert)
        let t = now()
        let upload = ResumableUpload(
            id: ResumableUpload.newID(), bucket: key.bucket, path: key.path.string, owner: identity.owner, role: identity.role.rawValue,
            upsert: write.upsert, length: length, contentType: write.contentType, cacheControl: write.cacheControl,
            userMetadata: write.userMetadata, createdAt: t, expiresAt: t.addingTimeInterval(TimeInterval(settings.resumableTTL)))
        try await open(upload, in: bucket, store: store)
        return upload
    }

    /// Creates the upload of the object an upload URL names, with that URL's token (Supabase's
    /// `x-signature`) — a signed upload URL's, which takes what its bucket takes, or an Assets API
    /// presigned upload's, which takes exactly its declared size, type and checksum. Owner and
    /// upsert are the token's; one upload per URL (its id comes from the URL's). The URL must be
    /// valid now; the upload then lives as long as any (`resumableTTL`), continued with the same
    /// token, and its object consumes the URL's intent unless another upload did first.
    /// - Throws: as ``createResumable(as:at:length:_:)``, and `.signatureInvalid`, `.urlExpired`,
    ///   `.uploadConsumed` (the URL was used), `.conflict` (an upload with it is under way),
    ///   `.sizeMismatch`, `.mediaTypeMismatch`.
    public func createSignedResumable(token: String, at key: ObjectKey, length: Int64, _ write: ObjectWrite) async throws -> ResumableUpload {
        let store = try resumableStore()
        guard length >= 0 else { throw StorageError.invalidRequest("Upload-Length must be 0 or more") }
        try BucketRecord.validate(name: key.bucket)
        let intent = try await uploadIntent(bucket: key.bucket, path: key.path, token: token)
        guard intent.state == .pending else {
            throw StorageError(.uploadConsumed, intent.state == .consumed ? "this upload URL has already been used" : "this upload URL is in use")
        }
        if !intent.isOpen {
            guard length == intent.size else {
                throw StorageError(.sizeMismatch, "this upload URL takes exactly \(intent.size) bytes, not \(length)")
            }
            if let declared = write.contentType.map(MediaSniffer.canonical), declared != intent.contentType, declared != "application/octet-stream" {
                throw StorageError(.mediaTypeMismatch, "this URL takes \(intent.contentType), not \(declared)")
            }
        }
        let bucket = try await existingBucket(intent.bucket)
        let t = now()
        let upload = ResumableUpload(
            id: ResumableUpload.id(forIntent: intent.id), bucket: key.bucket, path: key.path.string, owner: intent.owner, role: "",
            upsert: intent.upsert, length: length, contentType: intent.isOpen ? write.contentType : intent.contentType,
            cacheControl: write.cacheControl, userMetadata: write.userMetadata, createdAt: t,
            expiresAt: t.addingTimeInterval(TimeInterval(settings.resumableTTL)),
            intentID: intent.id, exactType: intent.isOpen ? nil : true, checksum: intent.sha256)
        if try await store.upload(id: upload.id) != nil { throw Self.signedUploadUnderWay }
        do { try await open(upload, in: bucket, store: store) } catch let e as StorageError where e.code == .conflict {
            throw Self.signedUploadUnderWay  // created at the same moment with the same URL
        }
        return upload
    }

    static let signedUploadUnderWay = StorageError(.conflict, "an upload with this URL is already under way: continue it (HEAD its Location)")

    /// The Assets API's resumable upload: the server names the object as for a presigned upload
    /// (`{sub}/{jobId}/{uuid}{suffix}.{ext}`), whose bytes must be exactly `contentType` (and
    /// `checksum`, when given).
    /// - Throws: as ``createPresignedUpload(as:jobId:contentType:size:checksum:suffix:visibility:)``,
    ///   and `.quotaExceeded`, `.rateLimited` (too many open).
    public func createAssetResumable(
        as identity: Identity, jobId: String, contentType: String, length: Int64, checksum: String?, suffix: String,
        visibility: Visibility
    ) async throws -> ResumableUpload {
        let store = try resumableStore()
        let (key, type) = try assetTarget(
            as: identity, jobId: jobId, contentType: contentType, size: length, checksum: checksum, suffix: suffix, visibility: visibility)
        let bucket = try await existingBucket(key.bucket)
        let t = now()
        let upload = ResumableUpload(
            id: ResumableUpload.newID(), bucket: key.bucket, path: key.path.string, owner: identity.owner, role: identity.role.rawValue,
            upsert: false, length: length, contentType: type, cacheControl: nil, userMetadata: nil, createdAt: t,
            expiresAt: t.addingTimeInterval(TimeInterval(settings.resumableTTL)), exactType: true, checksum: checksum?.lowercased())
        try await open(upload, in: bucket, store: store)
        return upload
    }

    /// Checks a new upload as its object would be checked (size, declared type, a taken name, the
    /// quota with the declared bytes of the owner's other open uploads, how many are open) and
    /// stores it.
    private func open(_ upload: ResumableUpload, in bucket: BucketRecord, store: any ResumableStore) async throws {
        let key = try upload.key()
        let rules = try resumableRules(upload, in: bucket)
        if upload.length > rules.maxSize {
            throw StorageError(.payloadTooLarge, "Upload-Length \(upload.length) is larger than the \(rules.maxSize) bytes allowed")
        }
        try precheck(rules, contentLength: upload.length)
        // A declared type the bucket refuses is refused now (upstream checks `contentType` here).
        if case .bucket(let allowed?) = rules.typing, let declared = upload.contentType, !allowed.accepts(declared) {
            throw StorageError(.unsupportedMediaType, "mime type \(declared) is not supported")
        }
        try await refuseExisting(key, upsert: upload.upsert)
        // The owner's unfinished uploads hold their declared bytes (staged ones count as stored);
        // the place is held first, so that uploads created at once cannot all pass the checks.
        let most = upload.owner == nil ? 0 : settings.quota.pendingUploads
        let held = try await store.reserve(upload, most: most, now: now())
        do {
            try await checkQuota(owner: upload.owner, adding: upload.length, held: held - upload.length, replacing: upload.upsert ? key : nil)
            try await store.create(upload)
        } catch {
            await store.release(upload)
            throw error
        }
    }

    /// The rules the upload's bytes are checked against: its exact size, and the bucket's rules
    /// for the declared type, or (Assets API) exactly the declared type and checksum.
    func resumableRules(_ upload: ResumableUpload, in bucket: BucketRecord) throws -> IngestRules {
        var rules: IngestRules
        if upload.exactType == true, let type = upload.contentType {
            rules = IngestRules(
                maxSize: min(settings.maxFileSize, bucket.fileSizeLimit ?? Int64.max), allowedTypes: [type], declaredType: type,
                sha256: upload.checksum)
        } else {
            rules = bucketRules(bucket, declaredType: upload.contentType, path: try upload.key().path)
            rules.sha256 = upload.checksum
        }
        rules.exactSize = upload.length
        return rules
    }

    /// The upload's bucket: checked against the access rules again for an upload made with a
    /// caller's token through the Storage API (they may have changed since it began).
    func resumableBucket(_ caller: ResumableCaller, _ upload: ResumableUpload) async throws -> BucketRecord {
        if case .user(let identity) = caller, upload.intentID == nil, upload.exactType != true {
            return try await writableBucket(identity, try upload.key(), upsert: upload.upsert)
        }
        return try await existingBucket(upload.bucket)
    }
}
