import Foundation
import NIOCore

// MARK: - Resolving downloads

extension StorageService {
    /// The object a signed download URL names, after checking its token (signature, scope, expiry)
    /// and that the object's generation still matches (so flips, deletes and revokes kill links).
    /// - Returns: the object and the token's expiry (unix seconds).
    public func resolveSigned(bucket: String, path: ObjectPath, token: String) async throws -> (ObjectRecord, expiresAt: Int64) {
        let claims = try signer.verify(token, scope: .download, bucket: bucket, path: path, now: unixNow())
        guard let record = try await metadata.object(at: ObjectKey(bucket: bucket, path: path)) else {
            throw StorageError.notFound()
        }
        guard String(record.generation) == claims.binding else {
            throw StorageError(.urlExpired, "this link was revoked")
        }
        return (record, claims.expiresAt)
    }

    /// The object at a public URL; `.notFound` unless its bucket is public.
    public func resolvePublic(bucket: String, path: ObjectPath) async throws -> ObjectRecord {
        guard let b = try await metadata.bucket(named: bucket), b.isPublic,
            let record = try await metadata.object(at: ObjectKey(bucket: bucket, path: path))
        else { throw StorageError.notFound() }
        return record
    }

    /// The object for an authenticated download: the tenant rule applies (public buckets are
    /// readable by any caller).
    public func resolveAuthenticated(as identity: Identity, bucket: String, path: ObjectPath) async throws -> ObjectRecord {
        let isPublic = try await metadata.bucket(named: bucket)?.isPublic ?? false
        if !isPublic { try identity.authorize(path) }
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
