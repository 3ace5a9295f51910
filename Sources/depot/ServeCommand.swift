import ArgumentParser
import CDepotSystem
import Depot
import DepotCore
import DepotHTTP
import Foundation
import Logging

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
    @OptionGroup(title: "Image variants and jobs") var jobOptions: JobOptions

    func run() async throws {
        let resolved = try options.resolve()
        // Upload chunks (≤ 1 MiB socket reads) reuse heap memory instead of a fresh mmap each:
        // measured ~10 % less CPU per large upload (benchmarks/PROFILE-upload.md).
        depot_tune_malloc(4 << 20, 32 << 20)
        let policy: AccessPolicy
        do { policy = try resolved.policies.map(AccessRulesFile.load) ?? .builtIn } catch {
            throw ValidationError("--policies \(resolved.policies ?? ""): \(error)")
        }
        let limits = try limitOptions.resolve()
        let jobs = try jobOptions.resolve()
        var logger = Logger(label: "depot")
        logger.logLevel = Logger.Level(rawValue: resolved.logLevel) ?? .info

        // Flags → the typed configuration of the composition root (`DepotServer`).
        var configuration = DepotServer.Configuration(dataDirectory: data.resolvedDataDir)
        configuration.host = resolved.host
        configuration.port = resolved.port
        configuration.settings = resolved.settings
        configuration.settings.accessPolicy = policy
        configuration.settings.quota = limits.quota
        configuration.metadata = metadataOptions.backend
        configuration.blobs = try blobOptions.resolve()
        configuration.redirectDownloads = try blobOptions.redirectsDownloads()
        configuration.http.objectCORSOrigins = resolved.corsObjectOrigins
        configuration.http.apiCORSOrigins = resolved.corsAPIOrigins
        configuration.http.rateLimits = limits.rates
        configuration.http.connections = try connectionOptions.resolve(raisingOpenFileLimit: logger)
        configuration.shutdownTimeout = try connectionOptions.resolvedShutdownTimeout()
        configuration.gcInterval = resolved.gcInterval
        configuration.settings.variants = jobs.variants
        configuration.settings.jobLimits = jobs.limits
        configuration.settings.renditionCacheBytes = jobs.renderCacheBytes
        configuration.settings.concurrentRenders = jobs.concurrentRenders
        configuration.jobs = jobs.runner
        configuration.signingKeys = resolved.jwks
        configuration.signingKeyRefresh = .seconds(resolved.jwksRefresh)

        let dataDir = configuration.dataDirectory
        try DataDirectory.create(dataDir)
        if metadataOptions.postgresURL != nil && setting(nil, "DEPOT_JWT_SECRET") == nil {
            throw ValidationError(
                "with a shared database (DEPOT_DATABASE_URL) every server needs the same DEPOT_JWT_SECRET; set it (≥ 32 characters)")
        }
        let (secret, secretSource) = try ProjectSecret.load(dataDirectory: dataDir, mode: .createIfMissing)
        for line in DataDirectory.looseModes(dataDir) { logger.warning("\(line)") }
        let server = try await DepotServer.open(configuration, secret: secret, logger: logger)

        let (settings, host, redirect) = (configuration.settings, configuration.host, configuration.redirectDownloads)
        try await server.run { port in
            let banner = """
                Depot is listening on http://\(host):\(port)  (URLs returned: \(settings.publicBaseURL))
                  rows:    \(server.rowsSummary)
                  blobs:   \(server.blobsSummary)\(redirect ? " (signed downloads redirect to S3)" : "")
                  secret:  \(secretSource)\(resolved.jwks.map { "; user tokens also signed by the JWKS \($0)" } ?? "")
                  keys:    `depot keys --data-dir \(dataDir)` prints the anon and service_role keys;
                           `depot token --data-dir \(dataDir) --sub USER` a user's token
                  buckets: \(settings.privateBucket) (private), \(settings.publicBucket) (public)
                  rules:   \(resolved.policies.map { "\(policy.rules.count) access rule(s) from \($0)" } ?? "built in (a user under its own user id; service_role anywhere)")
                  images:  \(server.imagesSummary)
                """
            FileHandle.standardOutput.write(Data((banner + "\n").utf8))
        }
        logger.info("Depot stopped")
    }
}
