@_exported import DepotCore
@_exported import DepotLocal
import Foundation
import Logging

extension StorageService {
    /// The one assembly of a serving storage service over opened stores, used by `depot serve`
    /// (``DepotServer``), ``local(dataDirectory:secret:settings:logger:)`` and the tests: memory
    /// caches in front of the stores, URL signing keys derived from the project secret, both
    /// buckets made when missing. (`depot gc` serves nothing: it runs the collector over the
    /// stores as they are — no caches, no buckets made.)
    ///
    /// Rows are cached when this process is their only writer (`rowsShared` false: SQLite), and,
    /// when other servers write them too (PostgreSQL), only with a `rowCache` that hears of their
    /// writes (``RowCacheControl``, driven by ``PostgresRowListener``). Blobs are immutable, so small ones
    /// may be cached either way (`cacheBlobs`, on unless a caller must see the store itself).
    public static func assemble(
        blobs: any BlobStore, metadata: any MetadataStore, rowsShared: Bool, rowCache: RowCacheControl? = nil, cacheBlobs: Bool = true,
        settings: StorageSettings, secret: String, jobs: (any JobStore)? = nil, images: (any ImageRenderer)? = nil,
        resumable: (any ResumableStore)? = nil, logger: Logger = Logger(label: "depot"), now: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> StorageService {
        try settings.validate()
        let service = StorageService(
            blobs: cacheBlobs ? CachedBlobStore(blobs) : blobs,
            metadata: rowsShared ? rowCache.map { CachedMetadataStore(metadata, control: $0) } ?? metadata : CachedMetadataStore(metadata),
            settings: settings, keys: .derived(fromProjectSecret: secret), jobs: jobs ?? (metadata as? any JobStore), images: images,
            renditions: metadata as? any RenditionStore, resumable: resumable, logger: logger, now: now)
        try await service.bootstrap()
        return service
    }

    /// A storage service on the embedded backends: blobs under `dataDirectory/blobs`, metadata in
    /// `dataDirectory/depot.sqlite`. Creates the directory, the database and both buckets when
    /// missing.
    ///
    /// - Parameters:
    ///   - dataDirectory: where files and the database live.
    ///   - secret: the project secret; URL signing keys are derived from it.
    ///   - settings: buckets, limits and lifetimes (``StorageSettings`` defaults otherwise).
    public static func local(
        dataDirectory: String, secret: String, settings: StorageSettings = StorageSettings(),
        logger: Logger = Logger(label: "depot")
    ) async throws -> StorageService {
        try settings.validate()
        return try await assemble(
            blobs: try FileSystemBlobStore(directory: dataDirectory),
            metadata: try SQLiteMetadataStore(path: dataDirectory + "/depot.sqlite"), rowsShared: false,
            settings: settings, secret: secret, resumable: try FileResumableStore(directory: dataDirectory + "/resumable"), logger: logger)
    }
}
