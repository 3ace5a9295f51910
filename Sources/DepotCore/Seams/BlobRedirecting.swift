/// A blob store that can hand clients a short-lived URL to fetch a blob's bytes from it directly
/// (S3 presigned URLs), so large downloads skip the Depot server. Depot checks the request first
/// (token, scope, expiry, generation); the URL only carries the bytes.
public protocol BlobRedirecting: Sendable {
    /// A URL that answers `GET` (and `Range`) with the blob's bytes for `lifetime` seconds, with
    /// the response headers given.
    func directURL(for id: BlobID, lifetime: Int, headers: DirectDownloadHeaders) -> String
}

/// Response headers a direct download URL makes the store send.
public struct DirectDownloadHeaders: Sendable, Equatable {
    public var contentType: String
    public var contentDisposition: String?
    public var cacheControl: String?

    public init(contentType: String, contentDisposition: String? = nil, cacheControl: String? = nil) {
        self.contentType = contentType
        self.contentDisposition = contentDisposition
        self.cacheControl = cacheControl
    }
}
