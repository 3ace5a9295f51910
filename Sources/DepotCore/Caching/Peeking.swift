import NIOCore

/// A metadata store that can answer some lookups from memory, at once, without suspending: the
/// in-memory cache of ``CachedMetadataStore``. `nil` means "not in memory", never "missing".
public protocol MetadataPeeking: Sendable {
    func peekObject(at key: ObjectKey) -> ObjectRecord?
    func peekBucket(named name: String) -> BucketRecord?
}

/// A blob store that can hand over a small blob's bytes from memory (``CachedBlobStore``).
public protocol BlobPeeking: Sendable {
    func peekBlob(_ id: BlobID) -> ByteBuffer?
}

extension CachedMetadataStore: MetadataPeeking {
    public func peekObject(at key: ObjectKey) -> ObjectRecord? { objects.value(for: key) }
    public func peekBucket(named name: String) -> BucketRecord? { buckets.value(for: name) }
}

extension CachedBlobStore: BlobPeeking {
    public func peekBlob(_ id: BlobID) -> ByteBuffer? { cache.value(for: id) }
}

/// A whole small object that memory can serve: its row and its bytes.
public struct CachedDownload: Sendable {
    public let object: ObjectRecord
    public let bytes: ByteBuffer
    /// The signed URL's expiry (unix seconds); `nil` for public objects.
    public let expiresAt: Int64?
}

extension StorageService {
    /// The object a signed URL names, answered from memory alone — or `nil` whenever anything is
    /// not in memory or not right (bad token, revoked link, missing row). The caller then takes
    /// the ordinary path, which gives the same answer for valid URLs and reports every error.
    public func cachedSignedDownload(bucket: String, path: ObjectPath, token: String) -> CachedDownload? {
        guard let peek = metadataPeek, let blobPeek,
            let claims = try? signer.verify(token, scope: .download, bucket: bucket, path: path, now: unixNow()),
            let object = peek.peekObject(at: ObjectKey(bucket: bucket, path: path)),
            String(object.generation) == claims.binding,
            let bytes = blobPeek.peekBlob(object.blobID)
        else { return nil }
        return CachedDownload(object: object, bytes: bytes, expiresAt: claims.expiresAt)
    }

    /// A public object answered from memory alone, or `nil` (see ``cachedSignedDownload``).
    public func cachedPublicDownload(bucket: String, path: ObjectPath) -> CachedDownload? {
        guard let peek = metadataPeek, let blobPeek,
            peek.peekBucket(named: bucket)?.isPublic == true,
            let object = peek.peekObject(at: ObjectKey(bucket: bucket, path: path)),
            let bytes = blobPeek.peekBlob(object.blobID)
        else { return nil }
        return CachedDownload(object: object, bytes: bytes, expiresAt: nil)
    }
}
