import Foundation
import Logging

/// Depot's storage core: policy, paths, sniffing, signing and checksums over a ``BlobStore`` and a
/// ``MetadataStore``. The HTTP layer and Swift backends that embed Depot both call this type.
///
/// ```swift
/// let depot = try await StorageService.local(dataDirectory: "./depot-data", secret: secret)
/// let upload = try await depot.uploadAsset(
///     as: Identity(subject: "alice", role: .authenticated), jobId: "job-1",
///     declaration: UploadDeclaration(contentType: "image/png"), body: bytes)
/// print(upload.url)   // a signed URL, valid for an hour
/// ```
///
/// Guarantees: an object becomes visible only after its bytes are durable; a failed upload leaves no
/// object, no row and (after garbage collection) no blob; flips and moves copy no bytes.
public struct StorageService: Sendable {
    public let blobs: any BlobStore
    public let metadata: any MetadataStore
    public let settings: StorageSettings
    /// Buckets' own access rules, compiled (``policy(for:)``).
    let bucketPolicies = BucketPolicyCache()
    public let signer: URLSigner
    public let logger: Logger
    /// The clock; injected so that tests can move time.
    public let now: @Sendable () -> Date
    /// The stores' in-memory answers, when they have them (the cached decorators).
    let metadataPeek: (any MetadataPeeking)?
    let blobPeek: (any BlobPeeking)?
    let blobFiles: (any BlobFiles)?
    /// `blobFiles`' layout, asked for once (a download's path is found without a protocol call).
    let blobFileLayout: BlobFileLayout?
    /// The durable job queue (the metadata store's own when it keeps one).
    public let jobs: (any JobStore)?
    /// Makes image variants; nil or not available: no variants are queued.
    public let images: (any ImageRenderer)?
    /// Transformed images kept (the render API); nil without a ``RenditionStore``.
    public let renditions: RenditionCache?
    /// Where resumable (TUS) uploads stage their bytes; nil: no resumable uploads.
    public let resumable: (any ResumableStore)?
    /// The SHA-256 of each resumable upload's bytes so far, while this process saw them all.
    let resumableDigests = RunningDigests()
    let uploadTurns = UploadTurns()
    let runningAppends = RunningAppends()

    public init(
        blobs: any BlobStore, metadata: any MetadataStore, settings: StorageSettings, keys: KeyRing,
        jobs: (any JobStore)? = nil, images: (any ImageRenderer)? = nil, renditions: (any RenditionStore)? = nil,
        resumable: (any ResumableStore)? = nil, logger: Logger = Logger(label: "depot"), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.jobs = jobs ?? (metadata as? any JobStore)
        self.images = images
        self.resumable = resumable
        self.renditions = (renditions ?? (metadata as? any RenditionStore)).map {
            RenditionCache(
                store: $0, maxBytes: settings.renditionCacheBytes, concurrentRenders: settings.concurrentRenders,
                waitingRenders: settings.waitingRenders)
        }
        self.blobs = blobs
        self.metadata = metadata
        self.settings = settings
        self.signer = URLSigner(keys: keys)
        self.logger = logger
        self.now = now
        self.metadataPeek = metadata as? any MetadataPeeking
        self.blobPeek = blobs as? any BlobPeeking
        self.blobFiles = blobs as? any BlobFiles
        self.blobFileLayout = blobFiles?.fileLayout
    }

    /// Creates the private and public buckets when they are missing.
    public func bootstrap() async throws {
        for (name, isPublic) in [(settings.privateBucket, false), (settings.publicBucket, true)] {
            if try await metadata.bucket(named: name) == nil {
                do {
                    try await metadata.createBucket(BucketRecord(name: name, isPublic: isPublic, createdAt: now()))
                } catch let e as StorageError where e.code == .alreadyExists {
                    // Another server created it first.
                }
            }
        }
    }

    /// Checks both stores.
    public func health() async throws {
        try await metadata.ping()
        try await blobs.ping()
    }

    // MARK: Shared helpers

    func bucket(for visibility: Visibility) -> String {
        visibility == .public ? settings.publicBucket : settings.privateBucket
    }

    func visibility(ofBucket bucket: String) -> Visibility {
        bucket == settings.publicBucket ? .public : .private
    }

    /// Finds an asset by path in the private or the public bucket.
    func locate(_ path: ObjectPath) async throws -> ObjectRecord? {
        if let r = try await metadata.object(at: ObjectKey(bucket: settings.privateBucket, path: path)) { return r }
        return try await metadata.object(at: ObjectKey(bucket: settings.publicBucket, path: path))
    }

    public func unixNow() -> Int64 { Int64(now().timeIntervalSince1970) }

    /// The Assets API view of a row, with a fresh signed URL for private objects.
    func asset(from record: ObjectRecord, ttl: Int64? = nil) -> Asset {
        let vis = visibility(ofBucket: record.bucket)
        var url: String
        var expiresAt: Date? = nil
        if vis == .public {
            url = publicURL(bucket: record.bucket, path: record.path)
        } else {
            let exp = unixNow() + (ttl ?? settings.signedURLTTL)
            url = signedURL(for: record, expiresAt: exp)
            expiresAt = Date(timeIntervalSince1970: TimeInterval(exp))
        }
        return Asset(
            path: record.path.string, url: url, fileSize: record.size, contentType: record.contentType,
            checksum: record.sha256, visibility: vis, expiresAt: expiresAt,
            createdAt: record.createdAt, updatedAt: record.updatedAt, variantOf: variantOriginal(of: record.path.string))
    }

    /// `alice/job/x_112x112.png` → `alice/job/x.png` when `112x112` is one of the Assets API's
    /// variant sizes; nil for any other name.
    func variantOriginal(of name: String) -> String? {
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        let dot = name[slash...].lastIndex(of: ".").flatMap { $0 == slash ? nil : $0 } ?? name.endIndex
        let stem = name[..<dot]
        for size in settings.variants {
            let suffix = "_\(size)"
            if stem.hasSuffix(suffix), stem.utf8.count > suffix.utf8.count + name[..<slash].utf8.count {
                return String(stem.dropLast(suffix.count)) + String(name[dot...])
            }
        }
        return nil
    }

    public func publicURL(bucket: String, path: ObjectPath) -> String {
        settings.publicBaseURL + ObjectURLPath.of(ObjectURLPath.public, bucket: bucket, path: path)
    }

    public func signedURL(for record: ObjectRecord, expiresAt: Int64) -> String {
        let token = signer.mint(
            scope: .download, bucket: record.bucket, path: record.path, binding: String(record.generation),
            expiresAt: expiresAt)
        return settings.publicBaseURL + ObjectURLPath.of(ObjectURLPath.signed, bucket: record.bucket, path: record.path) + "?token=" + token
    }

    /// Deletes a blob that no row points at (an overwritten or refused one); a failure is logged
    /// and leaves an orphan for garbage collection.
    public func discard(_ blob: BlobID) async {
        do { try await blobs.delete(blob) } catch {
            logger.warning("could not delete blob; garbage collection will", metadata: ["blob": "\(blob)", "error": "\(error)"])
        }
    }

    func checkTTL(_ ttl: Int64?) throws(StorageError) -> Int64 {
        let t = ttl ?? settings.signedURLTTL
        guard t >= 1, t <= settings.maxSignedURLTTL else {
            throw .invalidRequest("expiresIn must be 1 … \(settings.maxSignedURLTTL) seconds")
        }
        return t
    }

    func checkBatch(_ count: Int) throws(StorageError) {
        guard count >= 1 else { throw .invalidRequest("paths must not be empty") }
        guard count <= settings.maxBatch else {
            throw .invalidRequest("at most \(settings.maxBatch) paths per request")
        }
    }
}
