import Foundation
import NIOCore

// MARK: - Deciding downloads

/// Who may have an object through a URL: written once, applied to rows from the stores
/// (``StorageService/decideDownload``) and to rows from memory (``StorageService/decideDownloadFromMemory``).
enum DownloadRules {
    /// A signed URL's object: the row exists and its generation is the one the token was minted
    /// for (an overwrite, flip, move or revoke gives a new one).
    static func signed(_ record: ObjectRecord?, claims: URLSigner.Claims) throws(StorageError) -> ObjectRecord {
        guard let record else { throw StorageError.notFound() }
        guard String(record.generation) == claims.binding else { throw StorageError(.urlExpired, "this link was revoked") }
        return record
    }

    /// A public URL's object: its bucket is public and the row exists.
    static func publicURL(_ bucket: BucketRecord?, _ record: ObjectRecord?) throws(StorageError) -> ObjectRecord {
        guard bucket?.isPublic == true, let record else { throw StorageError.notFound() }
        return record
    }
}

extension StorageService {
    /// The one decision about a download, from the stores: resolves the object for `access`
    /// (signed token with its generation, public bucket, or the tenant rule), then the answer
    /// (``DownloadDecision/decide(_:_:cacheControl:now:)``).
    /// - Throws: what resolving throws (`.notFound`, `.signatureInvalid`, `.urlExpired`, …), and
    ///   `.invalidRequest` for an over-long `download=` name.
    public func decideDownload(
        bucket: String, path: ObjectPath, access: DownloadAccess, conditions: DownloadConditions
    ) async throws -> DownloadDecision {
        let object: ObjectRecord
        let cacheControl: String
        switch access {
        case .signed(let token):
            let (record, expiresAt) = try await resolveSigned(bucket: bucket, path: path, token: token)
            (object, cacheControl) = (record, CachePolicy.signed(expiresAt: expiresAt, now: unixNow()))
        case .public:
            object = try await resolvePublic(bucket: bucket, path: path)
            cacheControl = CachePolicy.publicURL(object, settings)
        case .authenticated(let identity):
            object = try await resolveAuthenticated(as: identity, bucket: bucket, path: path)
            cacheControl = CachePolicy.authenticated
        case .caller(let identity):
            let (record, bucketRecord) = try await readObjectAndBucket(as: identity, at: ObjectKey(bucket: bucket, path: path))
            (object, cacheControl) = (record, CachePolicy.stored(record, in: bucketRecord))
        }
        return try DownloadDecision.decide(object, conditions, cacheControl: cacheControl, now: now())
    }

    /// The same decision from memory alone, with the bytes or file to send — or `nil` whenever
    /// anything is not in memory or not right (bad token, revoked link, missing row, an error to
    /// report, identity access): the caller then asks ``decideDownload``, which gives the same
    /// answer for what this one would have served and reports every error. Never suspends.
    public func decideDownloadFromMemory(
        bucket: String, path: ObjectPath, access: DownloadAccess, conditions: DownloadConditions
    ) -> (DownloadDecision, CachedDownload.Body)? {
        let hit: CachedDownload
        let cacheControl: String
        switch access {
        case .signed(let token):
            guard let found = cachedSignedDownload(bucket: bucket, path: path, token: token) else { return nil }
            (hit, cacheControl) = (found, CachePolicy.signed(expiresAt: found.expiresAt ?? 0, now: unixNow()))
        case .public:
            guard let found = cachedPublicDownload(bucket: bucket, path: path) else { return nil }
            (hit, cacheControl) = (found, CachePolicy.publicURL(found.object, settings))
        case .authenticated, .caller:
            return nil
        }
        guard let decision = try? DownloadDecision.decide(hit.object, conditions, cacheControl: cacheControl, now: now()) else { return nil }
        return (decision, hit.body)
    }

    /// The object a signed download URL names, after checking its token (signature, scope, expiry)
    /// and that the object's generation still matches (so flips, deletes and revokes kill links).
    /// - Returns: the object and the token's expiry (unix seconds).
    func resolveSigned(bucket: String, path: ObjectPath, token: String) async throws -> (ObjectRecord, expiresAt: Int64) {
        let claims = try downloadClaims(token, bucket: bucket, path: path)
        let record = try DownloadRules.signed(try await metadata.object(at: ObjectKey(bucket: bucket, path: path)), claims: claims)
        return (record, claims.expiresAt)
    }

    /// The claims of a download token for this bucket and path (signature, scope, expiry).
    func downloadClaims(_ token: String, bucket: String, path: ObjectPath) throws -> URLSigner.Claims {
        try signer.verify(token, scope: .download, bucket: bucket, path: path, now: unixNow())
    }

    /// The object at a public URL; `.notFound` unless its bucket is public.
    public func resolvePublic(bucket: String, path: ObjectPath) async throws -> ObjectRecord {
        guard let b = try await metadata.bucket(named: bucket), b.isPublic else { throw StorageError.notFound() }
        return try DownloadRules.publicURL(b, try await metadata.object(at: ObjectKey(bucket: bucket, path: path)))
    }

    /// The object for an authenticated download: the access rules apply (public buckets are
    /// readable by any caller).
    func resolveAuthenticated(as identity: Identity, bucket: String, path: ObjectPath) async throws -> ObjectRecord {
        let record = try await metadata.bucket(named: bucket)
        if !(record?.isPublic ?? false), identity.role != .serviceRole,
            !policy(for: record).allows(identity, .read, bucket: bucket, path: path)
        {
            throw StorageError.forbidden("no access rule allows you to read this object")
        }
        guard let record = try await metadata.object(at: ObjectKey(bucket: bucket, path: path)) else {
            throw StorageError.notFound()
        }
        return record
    }

    /// Streams an object's bytes (or a range of them): exactly the bytes its row promises, or an
    /// error. A blob found shorter or longer than the row says (damaged outside Depot) throws
    /// `.internalError` before any byte past the row's size, and is dropped from memory; so does a
    /// blob the store does not have.
    public func read(_ record: ObjectRecord, range: Range<Int64>? = nil, into consume: (ByteBuffer) async throws -> Void) async throws {
        let wanted = range ?? 0..<record.size
        let expected = Swift.max(0, Swift.min(wanted.upperBound, record.size) - Swift.max(0, wanted.lowerBound))
        var seen: Int64 = 0
        var damaged = false
        do {
            try await blobs.read(record.blobID, range: range) { chunk in
                seen += Int64(chunk.readableBytes)
                guard seen <= expected else {
                    damaged = true
                    throw StorageError.internal("blob \(record.blobID.rawValue) is longer than its row says (\(record.size) bytes)")
                }
                try await consume(chunk)
            }
            guard seen == expected else {
                damaged = true
                throw StorageError.internal("blob \(record.blobID.rawValue) is shorter than its row says (\(record.size) bytes)")
            }
        } catch let error as StorageError where error.code == .notFound && seen == 0 {
            // The row names a blob the store does not have: the object's bytes are lost, which is
            // the operator's problem (a 500), not the client's (a 404).
            throw StorageError.internal("blob \(record.blobID.rawValue) of \(record.bucket)/\(record.path) is missing", cause: error)
        } catch {
            if damaged { blobPeek?.forget(record.blobID) }
            throw error
        }
    }
}
