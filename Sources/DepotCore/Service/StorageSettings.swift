import Foundation

/// The settings `StorageService` depends on (the Assets API's configuration table).
/// Validated once by ``validate()``; tests construct it directly.
public struct StorageSettings: Sendable {
    public var privateBucket = "assets"
    public var publicBucket = "public-assets"
    /// Default signed-URL lifetime, seconds.
    public var signedURLTTL: Int64 = 3600
    /// Longest lifetime a caller may ask for, seconds.
    public var maxSignedURLTTL: Int64 = 7 * 24 * 3600
    /// Presigned upload URL lifetime, seconds.
    public var uploadURLTTL: Int64 = 300
    /// How long a resumable (TUS) upload may take from its creation, seconds; past it the upload
    /// answers 404 and garbage collection removes its bytes.
    public var resumableTTL: Int64 = 24 * 3600
    /// Per-object size limit, bytes.
    public var maxFileSize: Int64 = 10 * 1024 * 1024
    /// Allowed media types, decided by magic bytes.
    public var allowedTypes: [String] = ["image/png", "image/jpeg", "image/webp", "image/gif"]
    public var publicCacheControl = "public, max-age=31536000"
    /// Prefix of every URL returned, without a trailing slash.
    public var publicBaseURL = "http://127.0.0.1:8080"
    /// Who may do what in the Storage API (`--policies`); Depot's tenant rule by default.
    public var accessPolicy = AccessPolicy.builtIn
    /// Most paths in one batch request.
    public var maxBatch = 1000
    /// How long orphan blobs, temp files and expired intents are kept before garbage collection.
    public var gcGracePeriod: TimeInterval = 15 * 60
    /// Per-tenant limits (a tenant is a JWT `sub`; the service role has none). 0 turns one off.
    public var quota = TenantQuota()
    /// The variants made of every image uploaded through the Assets API (`{name}_{W}x{H}.{ext}`
    /// beside it); empty: none. Only when an image renderer is there (``StorageService/images``).
    public var variants: [VariantSize] = [VariantSize(width: 112, height: 112), VariantSize(width: 56, height: 56)]
    /// The job queue's bounds; at a bound an upload that would queue jobs is refused (503).
    public var jobLimits = JobLimits()
    /// The largest source a variant or transformation is made of (it is read into memory to be
    /// decoded).
    public var maxImageSourceBytes: Int64 = 64 * 1024 * 1024
    /// The most bytes of transformed images kept (the render API's cache); past it the least
    /// recently used go.
    public var renditionCacheBytes: Int64 = 1024 * 1024 * 1024
    /// Transformations rendered at once (each holds its source in memory), and how many more may
    /// wait for a turn before a request is refused with 503.
    public var concurrentRenders = max(1, ProcessInfo.processInfo.activeProcessorCount)
    public var waitingRenders = 64

    public init() {}

    /// The largest `maxFileSize` (5 TiB, S3's largest object): sums of sizes and small margins
    /// stay far from `Int64.max`.
    public static let largestFileSizeLimit: Int64 = 5 * 1024 * 1024 * 1024 * 1024

    public func validate() throws(StorageError) {
        guard quota.bytes >= 0, quota.objects >= 0, quota.pendingUploads >= 0 else {
            throw .invalidRequest("quotas must be 0 (none) or positive")
        }
        try BucketRecord.validate(name: privateBucket)
        try BucketRecord.validate(name: publicBucket)
        guard privateBucket != publicBucket else {
            throw .invalidRequest("the private and public buckets must differ")
        }
        guard maxSignedURLTTL >= 1, maxSignedURLTTL <= 10 * 365 * 24 * 3600 else {
            throw .invalidRequest("the longest signed URL lifetime must be 1 s … 10 years")
        }
        guard signedURLTTL >= 1, signedURLTTL <= maxSignedURLTTL else {
            throw .invalidRequest("the signed URL lifetime must be 1 s … \(maxSignedURLTTL) s")
        }
        guard uploadURLTTL >= 1, uploadURLTTL <= maxSignedURLTTL else {
            throw .invalidRequest("the upload URL lifetime must be 1 s … \(maxSignedURLTTL) s")
        }
        guard resumableTTL >= 60, resumableTTL <= 30 * 24 * 3600 else {
            throw .invalidRequest("the resumable upload lifetime must be 60 s … 30 days")
        }
        guard maxFileSize >= 1, maxFileSize <= Self.largestFileSizeLimit else {
            throw .invalidRequest("the max file size must be 1 … \(Self.largestFileSizeLimit) bytes (5 TiB, S3's largest object)")
        }
        guard renditionCacheBytes >= 0, concurrentRenders >= 1, waitingRenders >= 0 else {
            throw .invalidRequest("the render cache size must be 0 or more bytes, and at least one render must run at a time")
        }
        guard !allowedTypes.isEmpty else { throw .invalidRequest("at least one allowed type is needed") }
        for t in allowedTypes where MediaSniffer.fileExtension(for: MediaSniffer.canonical(t)) == nil {
            throw .invalidRequest(
                "'\(t)' cannot be recognised by its bytes; supported: image/png, image/jpeg, image/webp, image/gif, application/pdf, video/mp4, video/quicktime, video/webm"
            )
        }
        // A header value: visible ASCII and spaces only (a CR or LF would end the header).
        guard !publicCacheControl.isEmpty, publicCacheControl.utf8.count <= 256, publicCacheControl.utf8.allSatisfy({ (0x20...0x7E).contains($0) })
        else {
            throw .invalidRequest("the public Cache-Control must be 1 … 256 visible ASCII characters (no line breaks or controls)")
        }
        guard publicBaseURL.hasPrefix("http://") || publicBaseURL.hasPrefix("https://") else {
            throw .invalidRequest("the public URL must start with http:// or https://")
        }
    }
}
