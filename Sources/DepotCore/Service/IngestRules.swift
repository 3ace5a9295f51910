import Crypto
import Foundation
import NIOCore

/// The rules one upload's bytes are checked against while they stream.
public struct IngestRules: Sendable {
    /// Largest allowed body, bytes.
    public var maxSize: Int64
    /// The exact size the body must have (presigned uploads), if known.
    public var exactSize: Int64?
    /// Types the sniffed type must be one of; `nil` accepts any type (the declared one is kept).
    public var allowedTypes: Set<String>?
    /// The declared type; when sniffing recognises the bytes, the two must agree.
    public var declaredType: String?
    /// The SHA-256 hex the bytes must match.
    public var sha256: String?
    /// How the stored type is decided.
    public var typing: Typing = .sniffed

    public enum Typing: Sendable {
        /// The Assets API's rule: the sniffed type must be in `allowedTypes`, a declared type must
        /// agree with it.
        case sniffed
        /// A bucket's rule (``BucketTypes/decide(sniffed:declared:allowed:)``); `nil` accepts any type.
        case bucket(BucketTypes?)
    }

    public init(maxSize: Int64, exactSize: Int64? = nil, allowedTypes: Set<String>?, declaredType: String?, sha256: String? = nil) {
        self.maxSize = maxSize
        self.exactSize = exactSize
        self.allowedTypes = allowedTypes
        self.declaredType = declaredType
        self.sha256 = sha256
    }
}

/// What an ingest produced: a durable blob, not yet referenced by any row.
public struct IngestedBlob: Sendable {
    public var id: BlobID
    public var size: Int64
    public var sha256: String
    public var contentType: String
}
