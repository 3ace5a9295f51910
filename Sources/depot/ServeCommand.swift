import ArgumentParser
import DepotCore
import DepotHTTP
import DepotLocal
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the storage server (embedded default: files on local disk + SQLite; blobs in S3 with --blob-store s3).",
        discussion: """
            The project secret comes from DEPOT_JWT_SECRET; when that is unset it is generated on \
            first start and kept in <data-dir>/jwt-secret (mode 0600). Ctrl-C (SIGINT) or SIGTERM \
            stops accepting connections and lets requests in flight finish.
            """)

    @OptionGroup var data: DataOptions
    @OptionGroup var options: ServeOptions
    @OptionGroup(title: "Quotas and rate limits") var limitOptions: LimitOptions
    @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
    @OptionGroup(title: "Blob store") var blobOptions: BlobStoreOptions
    @OptionGroup(title: "Connections") var connectionOptions: ConnectionOptions

    func run() async throws {
        var config = try options.resolve()
        let limits = try limitOptions.resolve()
        config.settings.quota = limits.quota
        let blobChoice = try blobOptions.resolve()
        let redirect = try blobOptions.redirectsDownloads()
        var logger = Logger(label: "depot")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        let connections = try connectionOptions.resolve(raisingOpenFileLimit: logger)
        let dataDir = data.resolvedDataDir
        try DataDirectory.create(dataDir)
        if metadataOptions.postgresURL != nil && setting(nil, "DEPOT_JWT_SECRET") == nil {
            throw ValidationError(
                "with a shared database (DEPOT_DATABASE_URL) every server needs the same DEPOT_JWT_SECRET; set it (≥ 32 characters)")
        }
        let (secret, secretSource) = try ProjectSecret.load(dataDirectory: dataDir, mode: .createIfMissing)

        // The composition root: the only place that names concrete backends.
        // A process that is the only writer of its SQLite file may cache row lookups; with a
        // shared PostgreSQL it must not (another server may change any row). Blobs are
        // immutable, so small ones may be cached either way.
        let rows = try await OpenedMetadataStore.open(metadataOptions, dataDir: dataDir, owner: true, logger: logger)
        let opened = try await closingOnFailure(rows.close) { try await OpenedBlobStore.open(blobChoice, dataDir: dataDir, logger: logger) }
        let blobs = CachedBlobStore(opened.store)
        let metadata: any MetadataStore = rows.shared ? rows.store : CachedMetadataStore(rows.store)
        let service = StorageService(
            blobs: blobs, metadata: metadata, settings: config.settings,
            keys: .derived(fromProjectSecret: secret), logger: logger)
        try await service.bootstrap()

        let jwt = await ProjectJWT(secret: secret)
        var http = DepotHTTPOptions()
        http.objectCORSOrigins = config.corsObjectOrigins
        http.apiCORSOrigins = config.corsAPIOrigins
        http.rateLimits = limits.rates
        if redirect { http.directDownloads = opened.redirecting }
        http.connections = connections
        let metrics = DepotMetrics()
        let router = buildRouter(service: service, jwt: jwt, metrics: metrics, options: http)
        var app = Application(
            router: router, server: .depot(fastDownloadsFrom: redirect ? nil : service, metrics: metrics, serverName: "Depot", options: http),
            configuration: .init(
                address: .hostname(config.host, port: config.port), serverName: "Depot",
                availableConnectionsDelegate: connections.availableConnectionsDelegate),
            logger: logger)
        if config.gcInterval > 0 {
            app.addServices(GarbageCollector(service: service, interval: .seconds(config.gcInterval), logger: logger))
        }
        let banner = """
            Depot is listening on http://\(config.host):\(config.port)  (URLs returned: \(config.settings.publicBaseURL))
              rows:    \(rows.summary)
              blobs:   \(opened.summary)\(redirect ? " (signed downloads redirect to S3)" : "")
              secret:  \(secretSource)
              keys:    `depot keys --data-dir \(dataDir)` prints the anon and service_role keys;
                       `depot token --data-dir \(dataDir) --sub USER` a user's token
              buckets: \(config.settings.privateBucket) (private), \(config.settings.publicBucket) (public)
            """
        app.beforeServerStarts {
            FileHandle.standardOutput.write(Data((banner + "\n").utf8))
        }
        try await closing({ await opened.close(); await rows.close() }) { try await app.runService() }
        logger.info("Depot stopped")
    }
}

/// Runs a garbage-collection pass every `interval` until graceful shutdown.
struct GarbageCollector: Service {
    let service: StorageService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                    let report = try await service.collectGarbage()
                    if report.orphanBlobs + report.expiredIntents > 0 {
                        logger.info("garbage collection: \(report)")
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("garbage collection failed: \(error)")
                }
            }
        }
    }
}
