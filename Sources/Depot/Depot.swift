@_exported import DepotCore
@_exported import DepotLocal
import Logging

extension StorageService {
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
        let blobs = CachedBlobStore(try FileSystemBlobStore(directory: dataDirectory))
        let metadata = CachedMetadataStore(try SQLiteMetadataStore(path: dataDirectory + "/depot.sqlite"))
        let service = StorageService(
            blobs: blobs, metadata: metadata, settings: settings,
            keys: .derived(fromProjectSecret: secret), logger: logger)
        try await service.bootstrap()
        return service
    }
}
