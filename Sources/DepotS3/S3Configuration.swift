import DepotCore
import Foundation

/// Where and how to reach an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2, moto).
///
/// `validate()` is called by ``S3BlobStore`` before any request is made, so a wrong setting fails
/// at start with a message that names it.
public struct S3Configuration: Sendable, Redacted {
    /// Where the blobs go; never the keys.
    public var redactedDescription: String {
        "S3Configuration(endpoint: \(endpoint), region: \(region), bucket: \(bucket), prefix: \(prefix))"
    }

    /// `http(s)://host[:port]`, without a path (`DEPOT_S3_ENDPOINT`).
    public var endpoint: String
    /// The region in the signing scope: `us-east-1` for AWS's default, MinIO and moto, `auto` for R2.
    public var region: String
    public var bucket: String
    /// Key prefix in the bucket, so one bucket can hold several deployments; blobs live under
    /// `<prefix>/blobs/<id>`. Letters, digits, `/ . _ -` only.
    public var prefix: String
    public var accessKey: String
    public var secretKey: String
    /// Path-style URLs (`endpoint/bucket/key`, MinIO, Ceph, moto) or virtual-host ones
    /// (`bucket.endpoint/key`, AWS).
    public var pathStyle: Bool
    /// Blobs larger than this are sent as multipart uploads of parts this size (≥ 5 MiB).
    public var partSize: Int = 8 * 1024 * 1024
    /// Parts of one upload sent at the same time; memory per upload is about
    /// `partSize × (partsInFlight + 1)`.
    public var partsInFlight: Int = 3
    /// A blob whose size is known in advance (a presigned upload's), larger than a part and at
    /// most this size, is sent as one streamed `PutObject` (no part in memory, nothing joined by
    /// the store, but no part repeated after a failure either, and no SHA-256 of the body in the
    /// signature: `UNSIGNED-PAYLOAD`, as a presigned PUT); 0: always in hashed parts. At most
    /// 5 GiB (S3's limit for one `PutObject`). `nil`: 1 GiB over https (TLS keeps the bytes
    /// whole), 0 over plain http (the signed hash of each part is then what does).
    public var streamedPutMax: Int64?

    /// ``streamedPutMax`` with its default applied.
    public var effectiveStreamedPutMax: Int64 {
        streamedPutMax ?? (endpoint.lowercased().hasPrefix("https://") ? 1024 * 1024 * 1024 : 0)
    }
    /// Attempts for an idempotent request that fails with a retryable error (500, 502, 503,
    /// 504, `SlowDown`, `RequestTimeout`, a connection error).
    public var maxAttempts: Int = 4
    /// First backoff delay; each retry doubles it (full jitter), up to `maxBackoff`.
    public var baseBackoff: Duration = .milliseconds(50)
    public var maxBackoff: Duration = .seconds(2)
    /// Connections to the endpoint kept per event loop (soft limit).
    public var maxConnections: Int = 64

    public init(
        endpoint: String, region: String = "us-east-1", bucket: String, prefix: String = "",
        accessKey: String, secretKey: String, pathStyle: Bool = true
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.pathStyle = pathStyle
    }

    /// Checks every field; the error message names the setting.
    public func validate() throws(StorageError) {
        guard let url = URLComponents(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/", url.query == nil
        else {
            throw .invalidRequest("the S3 endpoint must be http(s)://host[:port] with no path, got '\(endpoint)'")
        }
        guard !region.isEmpty, region.utf8.allSatisfy({ Self.isSafe($0) && $0 != UInt8(ascii: "/") }) else {
            throw .invalidRequest("the S3 region must be a plain name such as us-east-1 or auto, got '\(region)'")
        }
        let b = bucket.utf8
        guard (3...63).contains(b.count),
            b.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 45 })
        else {
            throw .invalidRequest("the S3 bucket must be 3–63 characters of a–z, 0–9, '.' and '-', got '\(bucket)'")
        }
        guard prefix.utf8.allSatisfy(Self.isSafe), !prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
            throw .invalidRequest("the S3 prefix may hold letters, digits, '/', '.', '_' and '-' only, got '\(prefix)'")
        }
        guard !accessKey.isEmpty, !secretKey.isEmpty else {
            throw .invalidRequest("the S3 access key and secret key must both be set")
        }
        guard partSize >= 5 * 1024 * 1024, partSize <= 512 * 1024 * 1024 else {
            throw .invalidRequest("the S3 part size must be 5 MiB … 512 MiB")
        }
        guard effectiveStreamedPutMax >= 0, effectiveStreamedPutMax <= 5 * 1024 * 1024 * 1024 else {
            throw .invalidRequest("the largest streamed S3 PutObject must be 0 … 5 GiB")
        }
        guard partsInFlight >= 1, maxAttempts >= 1, maxConnections >= 1 else {
            throw .invalidRequest("parts in flight, attempts and connections must be at least 1")
        }
    }

    /// The prefix with no leading or trailing slash, and one trailing slash when not empty.
    var normalizedPrefix: String {
        let trimmed = prefix.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        return trimmed.isEmpty ? "" : trimmed + "/"
    }

    private static func isSafe(_ b: UInt8) -> Bool {
        (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57)
            || b == UInt8(ascii: "/") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }
}
