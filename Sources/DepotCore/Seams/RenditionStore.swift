import Foundation

/// One cached rendition (a transformed image) of one source blob: its bytes are a blob of their
/// own, found by ``key`` — the SHA-256 of the source blob id and the transformation — so a
/// replaced source (a new blob) never finds its old renditions.
public struct RenditionRecord: Sendable, Equatable {
    /// 64 lowercase hex digits (``StorageService/renditionKey(source:transform:format:)``).
    public var key: String
    public var sourceBlob: BlobID
    public var blobID: BlobID
    public var size: Int64
    public var contentType: String
    public var createdAt: Date
    /// When it was last served, to a minute (the least recently used go first).
    public var usedAt: Date

    public init(key: String, sourceBlob: BlobID, blobID: BlobID, size: Int64, contentType: String, createdAt: Date, usedAt: Date? = nil) {
        self.key = key
        self.sourceBlob = sourceBlob
        self.blobID = blobID
        self.size = size
        self.contentType = contentType
        self.createdAt = createdAt
        self.usedAt = usedAt ?? createdAt
    }

    public var ref: RenditionRef { RenditionRef(key: key, blobID: blobID) }
}

/// A rendition's key and blob, as pruning reports them.
public struct RenditionRef: Sendable, Hashable {
    public var key: String
    public var blobID: BlobID
    public init(key: String, blobID: BlobID) {
        self.key = key
        self.blobID = blobID
    }
}

/// What ``RenditionStore/pruneRenditions(maxBytes:)`` removed: the rows are gone, the caller
/// deletes the blobs (a crash between leaves orphan blobs, which garbage collection removes).
public struct RenditionPrune: Sendable, Equatable {
    /// Renditions of sources that no object points at any more (replaced or deleted).
    public var stale: [RenditionRef] = []
    /// Least recently used renditions removed to bring the total under the bound.
    public var evicted: [RenditionRef] = []
    public init(stale: [RenditionRef] = [], evicted: [RenditionRef] = []) {
        self.stale = stale
        self.evicted = evicted
    }
    public var all: [RenditionRef] { stale + evicted }
}

/// The index of cached renditions, kept in the metadata store beside the objects whose blobs they
/// are made from (so ``MetadataStore/referencedBlobs(among:)`` counts their blobs as referenced
/// and garbage collection keeps them). Implementations: `SQLiteMetadataStore`,
/// `PostgresMetadataStore`, `InMemoryMetadataStore`; one conformance suite runs against each.
public protocol RenditionStore: Sendable {
    func rendition(key: String) async throws -> RenditionRecord?
    /// Inserts `record` unless its key is there already; returns the row under the key (the new
    /// one, or the one that won a race — whose blob is not `record`'s: the caller deletes its own).
    func putRendition(_ record: RenditionRecord) async throws -> RenditionRecord
    /// Marks renditions as served at `date` (missing keys are skipped).
    func touchRenditions(_ keys: [String], at date: Date) async throws
    /// Removes, in one transaction, the renditions whose source blob no object points at, then the
    /// least recently used until their sizes add up to at most `maxBytes`.
    func pruneRenditions(maxBytes: Int64) async throws -> RenditionPrune
    /// How many renditions are kept and their total size.
    func renditionUsage() async throws -> (count: Int, bytes: Int64)
}
