import Foundation
import NIOCore

// MARK: - The seed's StorageService operations (the Assets API)

extension StorageService {
    /// Uploads a new asset under a generated path `{userId}/{jobId}/{uuid}{suffix}.{ext}`, the
    /// extension taken from the sniffed type.
    /// - Throws: `.forbidden` without a user id; `.invalidRequest` for a bad job id or suffix;
    ///   `.payloadTooLarge`, `.unsupportedMediaType`, `.mediaTypeMismatch`, `.checksumMismatch`.
    public func uploadAsset<Body: AsyncSequence>(
        as identity: Identity, jobId: String, suffix: String = "", visibility: Visibility = .private,
        declaration: UploadDeclaration, body: Body
    ) async throws -> Asset where Body.Element == ByteBuffer {
        _ = try identity.tenant()
        try Self.validate(jobId: jobId)
        try Self.validate(suffix: suffix)
        let rules = assetRules(declaration)
        try precheck(rules, contentLength: declaration.contentLength)
        try await checkQuotaEarly(owner: identity.subject, declared: declaration.contentLength, replacing: nil)
        let blob = try await ingest(body, rules: rules)
        return try await commitAsset(blob, as: identity, jobId: jobId, suffix: suffix, visibility: visibility)
    }

    /// The second half of ``uploadAsset(as:jobId:suffix:visibility:declaration:body:)`` for callers
    /// that learn the job id only after the bytes (a multipart field after the file): validates,
    /// names and commits an ingested blob, or discards it.
    public func commitAsset(_ blob: IngestedBlob, as identity: Identity, jobId: String, suffix: String, visibility: Visibility) async throws -> Asset
    {
        let path: ObjectPath
        do {
            let userId = try identity.tenant()
            try Self.validate(jobId: jobId)
            try Self.validate(suffix: suffix)
            let ext = MediaSniffer.fileExtension(for: blob.contentType) ?? "bin"
            path = try ObjectPath(segments: [userId, jobId, "\(UUID().uuidString.lowercased())\(suffix).\(ext)"])
        } catch {
            await discard(blob.id)
            throw error
        }
        let (record, _) = try await commit(blob, at: ObjectKey(bucket: bucket(for: visibility), path: path), owner: path.owner, upsert: false)
        var result = asset(from: record)
        result.variants = pendingVariants(of: record)
        return result
    }

    /// Writes an asset at a caller-chosen path (which must start with the caller's user id).
    /// Replaces an existing asset unless `overwrite` is false; keeps its visibility when replacing.
    /// - Returns: the asset and whether it replaced an existing one.
    public func putAsset<Body: AsyncSequence>(
        as identity: Identity, path: ObjectPath, visibility: Visibility? = nil, overwrite: Bool = true,
        declaration: UploadDeclaration, body: Body
    ) async throws -> (Asset, replaced: Bool) where Body.Element == ByteBuffer {
        try identity.authorize(path)
        let rules = assetRules(declaration)
        try precheck(rules, contentLength: declaration.contentLength)
        let existing = try await locate(path)
        if existing != nil, !overwrite {
            throw StorageError(.alreadyExists, "an asset already exists at this path")
        }
        let target = existing.map(\.bucket) ?? bucket(for: visibility ?? .private)
        try await checkQuotaEarly(owner: path.owner, declared: declaration.contentLength, replacing: ObjectKey(bucket: target, path: path))
        let blob = try await ingest(body, rules: rules)
        let (record, replaced) = try await commit(blob, at: ObjectKey(bucket: target, path: path), owner: path.owner, upsert: overwrite)
        var result = record
        if let visibility, self.bucket(for: visibility) != target {
            result = try await metadata.moveObject(
                from: record.key, to: ObjectKey(bucket: self.bucket(for: visibility), path: path),
                generation: .newGeneration(), at: now())
            await moveVariants(of: path, from: target, to: result.bucket)
            await queueMissingVariants(of: result)
        }
        var answer = asset(from: result)
        answer.variants = pendingVariants(of: result)
        return (answer, replaced)
    }

    /// The asset at `path`, with a fresh URL.
    public func asset(as identity: Identity, path: ObjectPath) async throws -> Asset {
        try identity.authorize(path)
        guard let record = try await locate(path) else { throw StorageError.notFound() }
        var result = asset(from: record)
        result.variants = try await variants(of: record)
        return result
    }

    /// A signed URL for one private asset (the public URL for a public one).
    public func signedURL(as identity: Identity, path: ObjectPath, expiresIn: Int64? = nil) async throws -> Asset {
        try identity.authorize(path)
        let ttl = try checkTTL(expiresIn)
        guard let record = try await locate(path) else { throw StorageError.notFound() }
        return asset(from: record, ttl: ttl)
    }

    /// Signed URLs for up to ``StorageSettings/maxBatch`` paths: two metadata queries plus one HMAC
    /// per path. Paths that are invalid, foreign or missing are reported in `errors`.
    public func signedURLs(as identity: Identity, paths: [String], expiresIn: Int64? = nil) async throws -> SignedURLBatch {
        try checkBatch(paths.count)
        let ttl = try checkTTL(expiresIn)
        let expiresAt = unixNow() + ttl
        var errors: [String: StorageError] = [:]
        var valid: [(String, ObjectPath)] = []
        for raw in paths {
            do {
                let p = try ObjectPath(raw)
                try identity.authorize(p)
                valid.append((raw, p))
            } catch {
                errors[raw] = error
            }
        }
        let wanted = valid.map(\.1)
        let priv = try await metadata.objects(in: settings.privateBucket, paths: wanted)
        let missing = wanted.filter { priv[$0] == nil }
        let pub = missing.isEmpty ? [:] : try await metadata.objects(in: settings.publicBucket, paths: missing)
        var urls: [String: String] = [:]
        urls.reserveCapacity(valid.count)
        for (raw, p) in valid {
            if let r = priv[p] {
                urls[raw] = signedURL(for: r, expiresAt: expiresAt)
            } else if let r = pub[p] {
                urls[raw] = publicURL(bucket: r.bucket, path: r.path)
            } else {
                errors[raw] = .notFound()
            }
        }
        return SignedURLBatch(urls: urls, expiresAt: Date(timeIntervalSince1970: TimeInterval(expiresAt)), errors: errors)
    }

    /// Makes an asset public or private: one metadata transaction, no bytes copied. Either way the
    /// generation changes, so every earlier signed URL stops working; after a flip to private the
    /// public URL answers 404 at once.
    public func setVisibility(as identity: Identity, path: ObjectPath, to visibility: Visibility) async throws -> Asset {
        try identity.authorize(path)
        guard let record = try await locate(path) else { throw StorageError.notFound() }
        let target = bucket(for: visibility)
        if record.bucket == target { return asset(from: record) }
        let moved = try await metadata.moveObject(
            from: record.key, to: ObjectKey(bucket: target, path: path), generation: .newGeneration(), at: now())
        await moveVariants(of: path, from: record.bucket, to: target)
        await queueMissingVariants(of: moved)
        return asset(from: moved)
    }

    /// Revokes every signed URL of an asset (new generation).
    public func revokeLinks(as identity: Identity, path: ObjectPath) async throws -> Asset {
        try identity.authorize(path)
        guard let record = try await locate(path) else { throw StorageError.notFound() }
        let updated = try await metadata.setGeneration(.newGeneration(), at: record.key, date: now())
        return asset(from: updated)
    }

    /// Deletes an asset: its row first (it stops being visible), then its blob.
    public func deleteAsset(as identity: Identity, path: ObjectPath) async throws {
        try identity.authorize(path)
        for bucket in [settings.privateBucket, settings.publicBucket] {
            if let removed = try await metadata.deleteObject(at: ObjectKey(bucket: bucket, path: path)) {
                await discard(removed.blobID)
                await deleteVariants(of: path, in: bucket)
                return
            }
        }
        throw StorageError.notFound()
    }

    /// Deletes up to ``StorageSettings/maxBatch`` assets; per-path failures land in `errors`.
    public func deleteAssets(as identity: Identity, paths: [String]) async throws -> DeleteBatch {
        try checkBatch(paths.count)
        var result = DeleteBatch(deleted: [], errors: [:])
        for raw in paths {
            do {
                try await deleteAsset(as: identity, path: ObjectPath(raw))
                result.deleted.append(raw)
            } catch let e as StorageError where e.code != .unavailable && e.code != .internalError {
                result.errors[raw] = e
            }
        }
        return result
    }

    /// Lists the caller's own assets (both visibilities) by name, `prefix` relative to `{userId}/`.
    public func listAssets(as identity: Identity, prefix: String = "", limit: Int = 100, cursor: String? = nil) async throws -> AssetPage {
        guard (1...1000).contains(limit) else { throw StorageError.invalidRequest("limit must be 1 … 1000") }
        let full: String
        if identity.role == .serviceRole, identity.subject == nil {
            full = prefix
        } else {
            full = try identity.tenant() + "/" + prefix
        }
        guard !full.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), full.utf8.count <= ObjectPath.maxBytes else {
            throw StorageError.invalidRequest("invalid prefix")
        }
        if let cursor, !cursor.hasBytePrefix(full) { throw StorageError.invalidRequest("the cursor does not belong to this listing") }
        let a = try await metadata.listObjects(in: settings.privateBucket, prefix: full, after: cursor, limit: limit + 1)
        let b = try await metadata.listObjects(in: settings.publicBucket, prefix: full, after: cursor, limit: limit + 1)
        let merged = (a + b).filter { $0.path.string.hasBytePrefix(full) }.sorted { $0.path < $1.path }
        let page = Array(merged.prefix(limit))
        let next = merged.count > limit ? page.last?.path.string : nil
        return AssetPage(items: page.map { asset(from: $0) }, nextCursor: next)
    }

    // MARK: Validation

    /// The rules for an Assets API upload: the server's size limit and allowed types.
    public func assetRules(_ d: UploadDeclaration) -> IngestRules {
        IngestRules(
            maxSize: settings.maxFileSize, exactSize: nil,
            allowedTypes: Set(settings.allowedTypes.map(MediaSniffer.canonical)),
            // Compared in canonical form; a type that does not parse is kept as sent, for
            // `precheck` to refuse.
            declaredType: d.contentType.map { (try? MediaType.normalize($0)).map(MediaSniffer.canonical) ?? $0 },
            sha256: d.sha256?.lowercased())
    }

    /// `jobId`: 1–128 of `[A-Za-z0-9._-]`, not `.` or `..`.
    public static func validate(jobId: String) throws(StorageError) {
        guard (1...128).contains(jobId.utf8.count), jobId != ".", jobId != "..",
            jobId.utf8.allSatisfy({ isWordByte($0) || $0 == UInt8(ascii: ".") })
        else { throw .invalidRequest("jobId must be 1–128 of A-Z a-z 0-9 . _ -") }
    }

    /// `suffix`: 0–64 of `[A-Za-z0-9_-]`.
    public static func validate(suffix: String) throws(StorageError) {
        guard suffix.utf8.count <= 64, suffix.utf8.allSatisfy(isWordByte) else {
            throw .invalidRequest("suffix must be 0–64 of A-Z a-z 0-9 _ -")
        }
    }

    private static func isWordByte(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }
}
