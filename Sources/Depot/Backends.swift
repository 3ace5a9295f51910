import DepotCore
import DepotLocal
import DepotPostgres
import DepotS3
import Foundation
import Logging

/// Where rows live.
public enum MetadataBackend: Sendable {
    /// SQLite at `<data directory>/depot.sqlite`: one server owns it.
    case sqlite
    /// A PostgreSQL URL: shared by every server.
    case postgres(url: String)
}

/// Where blobs live.
public enum BlobBackend: Sendable {
    /// Files under `<data directory>/blobs`.
    case files
    /// An S3-compatible bucket.
    case s3(S3Configuration)
}

/// An opened metadata store, and what to do when the process is done with it.
public struct OpenedMetadataStore: Sendable {
    public var store: any MetadataStore
    /// The durable job queue in the same database.
    public var jobs: any JobStore
    /// True when other servers may share the rows: cached only with `rowCache`.
    public var shared: Bool
    /// For shared rows (PostgreSQL): the database's notifications of every server's writes, which
    /// keep a row cache right (``PostgresRowListener``, running while the store is open).
    public var rowCache: RowCacheControl?
    /// For the start-up banner, e.g. `SQLite ./depot-data/depot.sqlite`.
    public var summary: String
    public var close: @Sendable () async -> Void

    /// Opens SQLite (migrated on open) or PostgreSQL (its pool started, migrated when `migrate`).
    /// - Parameter owner: this process is the server that owns the SQLite file: upload URLs
    ///   claimed by its previous run (cut off by a crash) are released. Never for PostgreSQL, where
    ///   other servers may be mid-upload (claims there lapse after a lease instead).
    public static func open(
        _ backend: MetadataBackend, dataDir: String, migrate: Bool = true, owner: Bool = false, logger: Logger
    ) async throws -> OpenedMetadataStore {
        guard case .postgres(let url) = backend else {
            let sqlite = try SQLiteMetadataStore(path: dataDir + "/depot.sqlite")
            if owner {
                let released = try await sqlite.releaseAbandonedClaims()
                if released > 0 { logger.info("\(released) upload URL(s) cut off by the last stop can be used again") }
            }
            return OpenedMetadataStore(
                store: sqlite, jobs: sqlite, shared: false, rowCache: nil, summary: "SQLite \(dataDir)/depot.sqlite", close: {})
        }
        let postgres: PostgresMetadataStore
        do { postgres = try PostgresMetadataStore(url: url, logger: logger) } catch { throw DepotFailure(error.message) }
        let runner = await postgres.start()
        let rowCache = RowCacheControl()
        let listener = Task { await PostgresRowListener(store: postgres).run(rowCache) }
        let close: @Sendable () async -> Void = {
            listener.cancel()
            _ = await listener.value
            runner.cancel()
            _ = await runner.value
        }
        do {
            if migrate {
                let applied = try await postgres.migrate()
                if let last = applied.last { logger.info("PostgreSQL schema migrated to version \(last)") }
            } else {
                try await postgres.ping()
            }
        } catch {
            await close()
            throw DepotFailure("cannot use PostgreSQL at \(redacted(url)): \((error as? StorageError)?.cause.map { "\($0)" } ?? "\(error)")")
        }
        return OpenedMetadataStore(
            store: postgres, jobs: postgres, shared: true, rowCache: rowCache, summary: "PostgreSQL \(redacted(url))", close: close)
    }

    /// The URL without its password, for logs and messages.
    public static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? "postgres://…"
    }
}

/// An opened blob store, and what to do when the process is done with it.
public struct OpenedBlobStore: Sendable {
    public var store: any BlobStore
    /// The store's direct download URLs, when it has them (S3).
    public var redirecting: (any BlobRedirecting)?
    /// Where resumable uploads stage their bytes: beside the blobs, so that every server over the
    /// same blobs continues any upload (files: this server's disk; S3: the bucket).
    public var resumable: any ResumableStore
    /// For the start-up banner, e.g. `s3 http://127.0.0.1:9000 bucket depot`.
    public var summary: String
    public var close: @Sendable () async -> Void

    /// Opens the chosen store. An S3 bucket is checked at once: a missing bucket or refused
    /// credentials stop the start with a message; an unreachable endpoint only warns (the
    /// health check answers 503 until it answers).
    public static func open(
        _ backend: BlobBackend, dataDir: String, sweepTemporaryFiles: Bool = true, logger: Logger
    ) async throws -> OpenedBlobStore {
        switch backend {
        case .files:
            let store = try FileSystemBlobStore(directory: dataDir, sweepTemporaryFiles: sweepTemporaryFiles)
            return OpenedBlobStore(
                store: store, redirecting: nil, resumable: try FileResumableStore(directory: dataDir + "/resumable"),
                summary: "files under \(dataDir)/blobs", close: {})
        case .s3(let config):
            let store = try S3BlobStore(configuration: config, logger: logger)
            let where_ = "\(config.endpoint) bucket \(config.bucket)" + (config.prefix.isEmpty ? "" : " prefix \(config.prefix)")
            do {
                try await store.ping()
            } catch let e as StorageError where e.code == .unavailable {
                logger.warning("the S3 endpoint \(config.endpoint) does not answer yet (\(e)); /health answers 503 until it does")
            } catch let e as StorageError {
                try? await store.shutdown()
                let why = e.code == .notFound ? "the bucket does not exist" : "it refused the request (check the keys, region and bucket)"
                throw DepotFailure("cannot use S3 at \(where_): \(why) (\(e.cause.map { "\($0)" } ?? e.message))")
            }
            return OpenedBlobStore(
                store: store, redirecting: store, resumable: S3ResumableStore(sharing: store), summary: "s3 \(where_)",
                close: { try? await store.shutdown() })
        }
    }
}
