import DepotCore
import DepotHTTP
import DepotImages
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Depot's composition root: the only place that turns a typed configuration into concrete
/// backends, a ``StorageService`` and the HTTP application (``buildApplication``). `depot serve`
/// is this type behind command-line flags; a Swift program can run it the same way.
///
/// ```swift
/// var configuration = DepotServer.Configuration(dataDirectory: "./depot-data")
/// configuration.port = 9000
/// let server = try await DepotServer.open(configuration, secret: secret)
/// try await server.run()   // until SIGINT or SIGTERM
/// ```
public struct DepotServer: Sendable {
    /// Everything a server is made from, validated where it is read (the command's flags).
    public struct Configuration: Sendable {
        public var dataDirectory: String
        public var host = "127.0.0.1"
        public var port = 8080
        public var settings = StorageSettings()
        public var metadata = MetadataBackend.sqlite
        public var blobs = BlobBackend.files
        /// Signed GETs answered with a redirect to the blob store (S3 only).
        public var redirectDownloads = false
        /// CORS, rate limits, connection limits (``DepotHTTPOptions``).
        public var http = DepotHTTPOptions()
        /// Seconds between garbage-collection passes; 0: none.
        public var gcInterval = 600
        /// The job workers (image variants): how many, their leases and retries.
        public var jobs = JobRunnerConfiguration()
        /// How long a graceful stop waits for requests in flight before their connections are
        /// closed; nil: as long as they take.
        public var shutdownTimeout: Duration? = .seconds(30)
        /// A JWKS of the keys that sign user tokens asymmetrically (Supabase Auth's), besides the
        /// project secret's HS256; read at start and every `signingKeyRefresh`.
        public var signingKeys: SigningKeySource? = nil
        public var signingKeyRefresh: Duration = .seconds(600)
        public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
    }

    public let configuration: Configuration
    public let service: StorageService
    /// What the server is built on, one line each, for a start-up banner.
    public let rowsSummary: String
    public let blobsSummary: String
    /// For the start-up banner: the variants made, or why none are.
    public let imagesSummary: String
    private let jwt: ProjectJWT
    private let http: DepotHTTPOptions
    private let logger: Logger
    private let close: @Sendable () async -> Void

    /// Opens the backends (SQLite or PostgreSQL rows, files or S3 blobs; migrated, checked) and
    /// builds the service on them. Nothing listens before ``run(onRunning:)``.
    public static func open(_ configuration: Configuration, secret: String, logger: Logger = Logger(label: "depot")) async throws -> DepotServer {
        let dir = configuration.dataDirectory
        let rows = try await OpenedMetadataStore.open(configuration.metadata, dataDir: dir, owner: true, logger: logger)
        let blobs = try await closingOnFailure(rows.close) {
            try await OpenedBlobStore.open(configuration.blobs, dataDir: dir, logger: logger)
        }
        let close: @Sendable () async -> Void = {
            await blobs.close()
            await rows.close()
        }
        return try await closingOnFailure(close) {
            guard !configuration.redirectDownloads || blobs.redirecting != nil else {
                throw DepotFailure("redirected downloads need a blob store with URLs of its own (S3)")
            }
            let renderer = VipsImageRenderer(threads: max(configuration.jobs.workers, configuration.settings.concurrentRenders))
            let service = try await StorageService.assemble(
                blobs: blobs.store, metadata: rows.store, rowsShared: rows.shared, rowCache: rows.rowCache,
                settings: configuration.settings, secret: secret, jobs: rows.jobs, images: renderer,
                resumable: blobs.resumable, logger: logger)
            let settings = configuration.settings
            let variants =
                settings.variants.isEmpty
                ? "no variants (--variants none)"
                : "variants \(settings.variants.map(\.description).joined(separator: ", ")) of every image, \(configuration.jobs.workers) worker(s)"
            let images =
                renderer.isAvailable
                ? "\(variants); transformations (render API) \(settings.concurrentRenders) at once, \(settings.renditionCacheBytes >> 20) MiB kept"
                : "off: built without libvips (apt-get install libvips-dev; rm -rf ~/.cache/org.swift.swiftpm/manifests; rebuild)"
            var http = configuration.http
            if configuration.redirectDownloads { http.directDownloads = blobs.redirecting }
            return DepotServer(
                configuration: configuration, service: service, rowsSummary: rows.summary, blobsSummary: blobs.summary, imagesSummary: images,
                jwt: await ProjectJWT(secret: secret), http: http, logger: logger,
                close: close)
        }
    }

    /// Serves until SIGINT or SIGTERM or until the task is cancelled (requests in flight finish,
    /// for at most `shutdownTimeout`; then their connections are closed), with garbage collection every `gcInterval` seconds; then closes the backends. `onRunning`
    /// is called with the port once it listens (the one picked when the configuration says 0).
    public func run(onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }) async throws {
        // Workers for folder jobs always; for variants whenever images can be made (the Assets
        // API's variants or a bucket's own).
        var runner: JobRunner? = nil
        if let jobs = service.jobs {
            var handlers: [String: any JobHandler] = [StorageService.folderJobKind: FolderJobHandler(service: service)]
            if service.makesImages, let images = service.images {
                handlers[StorageService.variantJobKind] = VariantJobHandler(service: service, renderer: images)
            }
            var jobLogger = logger
            jobLogger[metadataKey: "worker"] = "\(configuration.jobs.workerID)"
            runner = JobRunner(store: jobs, handlers: handlers, configuration: configuration.jobs, logger: jobLogger)
        }
        var http = http
        if let runner { http.jobRunnerCounts = { runner.done } }
        var refresher: SigningKeyRefresher? = nil
        if let source = configuration.signingKeys {
            refresher = SigningKeyRefresher(source: source, jwt: jwt, interval: configuration.signingKeyRefresh, logger: logger)
            await refresher?.loadAtStart()
        }
        var app = buildApplication(
            service: service, jwt: jwt, options: http, host: configuration.host, port: configuration.port,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        if configuration.gcInterval > 0 {
            app.addServices(GarbageCollector(service: service, interval: .seconds(configuration.gcInterval), logger: logger))
        }
        if let runner { app.addServices(JobWorkers(runner: runner)) }
        if let refresher { app.addServices(refresher) }
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        try await closing(close) { try await ServiceGroup(configuration: group).run() }
    }
}

/// The job workers, until graceful shutdown (jobs in flight are queued again, see ``JobRunner``).
struct JobWorkers: Service, CustomStringConvertible {
    let runner: JobRunner
    var description: String { "JobWorkers(\(runner.configuration.workers))" }

    func run() async throws {
        await cancelWhenGracefulShutdown { await runner.run() }
    }
}

/// Runs a garbage-collection pass every `interval` until graceful shutdown.
struct GarbageCollector: Service, CustomStringConvertible {
    let service: StorageService
    let interval: Duration
    let logger: Logger

    var description: String { "GarbageCollector(every \(interval))" }

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
