import NIOCore

/// A metadata store that can answer some lookups from memory, at once, without suspending: the
/// in-memory cache of ``CachedMetadataStore``. `nil` means "not in memory", never "missing".
public protocol MetadataPeeking: Sendable {
    func peekObject(at key: ObjectKey) -> ObjectRecord?
    func peekBucket(named name: String) -> BucketRecord?
    /// Changes whenever a row may have changed (see ``BoundedCache/epoch``).
    var peekEpoch: UInt64 { get }
}

/// A blob store that can hand over a small blob's bytes from memory (``CachedBlobStore``).
public protocol BlobPeeking: Sendable {
    func peekBlob(_ id: BlobID) -> ByteBuffer?
    /// Whether a blob of `size` bytes is kept in memory once it has been read.
    func keepsBlob(ofSize size: Int64) -> Bool
    /// Drops a blob's bytes from memory (they turned out not to be what its row says).
    func forget(_ id: BlobID)
    /// Changes whenever a blob's bytes were dropped as wrong (see ``BoundedCache/epoch``).
    var peekEpoch: UInt64 { get }
    /// Keeps a small blob's bytes, read by someone else from the blob's file, unless a blob was
    /// dropped since `epoch` (``peekEpoch``) was read.
    func keep(_ bytes: ByteBuffer, for id: BlobID, ifEpoch epoch: UInt64)
}

/// A blob store that keeps each blob as a file on this machine (``FileSystemBlobStore``), which the
/// HTTP layer may hand to the kernel (`sendfile`) instead of reading it. Blobs are immutable, so an
/// open file stays the blob's bytes even when the blob is deleted meanwhile.
public protocol BlobFiles: Sendable {
    /// Where the blobs' files are, or `nil` when the store has none.
    var fileLayout: BlobFileLayout? { get }
    /// Makes the durable file at `path` blob `id` without copying it (a hard link, so the file
    /// keeps its own name too). False when it cannot (another file system): the caller copies.
    func adopt(file path: String, as id: BlobID) async throws -> Bool
}

extension BlobFiles {
    /// The path of the blob's file, or `nil` when the store has no file for such an id. The file
    /// may be missing (a deleted blob): the caller checks when it opens it.
    public func localFile(of id: BlobID) -> String? { fileLayout?.path(of: id) }
}

/// Where a local store keeps each blob's file, `<root>/blobs/ab/<id>`: a plain value, so that a
/// download finds a path without a call through the stores' protocols.
public struct BlobFileLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// The blob's file, or `nil` for an id that is not one (asked for on every download of a
    /// small object not in memory: written in one allocation, not interpolated).
    public func path(of id: BlobID) -> String? {
        guard BlobID.isWellFormed(id.rawValue) else { return nil }
        var root = root
        var id = id.rawValue
        return root.withUTF8 { root in
            id.withUTF8 { id in
                let blobs = "/blobs/".utf8
                return String(unsafeUninitializedCapacity: root.count + blobs.count + 3 + id.count) { out in
                    var i = out.initialize(fromContentsOf: root)
                    i = out[i...].initialize(fromContentsOf: blobs)
                    out[i] = id[0]
                    out[i + 1] = id[1]
                    out[i + 2] = UInt8(ascii: "/")
                    return out[(i + 3)...].initialize(fromContentsOf: id)
                }
            }
        }
    }
}

extension CachedMetadataStore: MetadataPeeking {
    public func peekObject(at key: ObjectKey) -> ObjectRecord? { isTrusted ? objects.value(for: key) : nil }
    public func peekBucket(named name: String) -> BucketRecord? { isTrusted ? buckets.value(for: name) : nil }
    /// New on every read while the rows are not trusted (``RowCacheControl``).
    public var peekEpoch: UInt64 { objects.epoch &+ buckets.epoch &+ (control?.epochSalt ?? 0) }
}

extension CachedBlobStore: BlobPeeking, BlobFiles {
    public func peekBlob(_ id: BlobID) -> ByteBuffer? { cache.value(for: id) }
    public func keepsBlob(ofSize size: Int64) -> Bool { size <= maxBlobSize }
    public func forget(_ id: BlobID) { cache.invalidate([id]) }
    public var peekEpoch: UInt64 { cache.epoch }
    public func keep(_ bytes: ByteBuffer, for id: BlobID, ifEpoch epoch: UInt64) {
        guard bytes.readableBytes <= maxBlobSize else { return }
        cache.insert(bytes, for: id, cost: Self.cost(of: bytes), ifVersion: epoch)
    }
    public var fileLayout: BlobFileLayout? { baseFiles?.fileLayout }
    public func adopt(file path: String, as id: BlobID) async throws -> Bool {
        guard let files = baseFiles else { return false }
        return try await files.adopt(file: path, as: id)
    }
}

/// An object that can be served without asking either store: its row from memory, and its bytes
/// from memory (small objects) or from a local file (the kernel sends a large one; a small one is
/// read whole and kept in memory for the next request).
public struct CachedDownload: Sendable {
    public enum Body: Sendable {
        case bytes(ByteBuffer)
        /// The blob's file, to be opened by the caller; ``ObjectRecord/size`` says how long it is.
        case file(path: String)
        /// A small blob's file whose bytes are not in memory: the caller reads it whole and, when
        /// it is the row's size, hands the bytes to ``StorageService/keepInMemory(_:of:epoch:)``
        /// with this `epoch`.
        case smallFile(path: String, epoch: UInt64)
    }
    public let object: ObjectRecord
    public let body: Body
    /// The signed URL's expiry (unix seconds); `nil` for public objects.
    public let expiresAt: Int64?
}

extension StorageService {
    /// The object a signed URL names, answered from memory alone — or `nil` whenever anything is
    /// not in memory or not right (bad token, revoked link, missing row). The caller then takes
    /// the ordinary path, which gives the same answer for valid URLs and reports every error.
    func cachedSignedDownload(bucket: String, path: ObjectPath, token: String) -> CachedDownload? {
        guard let peek = metadataPeek,
            let claims = try? downloadClaims(token, bucket: bucket, path: path),
            let row = peek.peekObject(at: ObjectKey(bucket: bucket, path: path)),
            let object = try? DownloadRules.signed(row, claims: claims),
            let body = cachedBody(of: object)
        else { return nil }
        return CachedDownload(object: object, body: body, expiresAt: claims.expiresAt)
    }

    /// Changes whenever something the two methods above answer from may have changed (a row
    /// written, a bucket changed, a blob's bytes dropped): an answer built from them after
    /// reading it stays right while it is unchanged. Lock-free.
    public var cacheEpoch: UInt64 { (metadataPeek?.peekEpoch ?? 0) &+ (blobPeek?.peekEpoch ?? 0) }

    /// A public object answered from memory alone, or `nil` (see ``cachedSignedDownload``).
    func cachedPublicDownload(bucket: String, path: ObjectPath) -> CachedDownload? {
        guard let peek = metadataPeek,
            let object = try? DownloadRules.publicURL(
                peek.peekBucket(named: bucket), peek.peekObject(at: ObjectKey(bucket: bucket, path: path))),
            let body = cachedBody(of: object)
        else { return nil }
        return CachedDownload(object: object, body: body, expiresAt: nil)
    }

    /// The bytes in memory; else the blob's local file: to be sent as it is, or, for a blob small
    /// enough to be kept in memory, read whole (nginx's open + read; the next request finds the
    /// bytes in memory). `nil` when the blob is neither in memory nor a local file (S3).
    func cachedBody(of object: ObjectRecord) -> CachedDownload.Body? {
        // Read before the peek: bytes read after a drop are not kept.
        let epoch = blobPeek?.peekEpoch ?? 0
        if let bytes = blobPeek?.peekBlob(object.blobID) { return .bytes(bytes) }
        guard let path = blobFileLayout?.path(of: object.blobID) else { return nil }
        return blobPeek?.keepsBlob(ofSize: object.size) == true ? .smallFile(path: path, epoch: epoch) : .file(path: path)
    }

    /// Keeps the bytes of a `.smallFile` body (``CachedDownload/Body``), read by the caller, in
    /// memory; ignored unless they are exactly the row's size.
    public func keepInMemory(_ bytes: ByteBuffer, of object: ObjectRecord, epoch: UInt64) {
        guard Int64(bytes.readableBytes) == object.size else { return }
        blobPeek?.keep(bytes, for: object.blobID, ifEpoch: epoch)
    }
}
