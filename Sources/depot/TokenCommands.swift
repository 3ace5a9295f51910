import ArgumentParser
import DepotCore
import DepotHTTP
import DepotLocal
import Foundation
import Logging

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a JWT signed with the project secret (for development and tests).")

    @OptionGroup var data: DataOptions
    @Option(help: "The user id (JWT sub); the tenant whose paths the token may touch.")
    var sub: String
    @Option(help: "authenticated or service_role. (default authenticated)")
    var role: String = "authenticated"
    @Option(help: "Lifetime in seconds. (default 3600)")
    var ttl: Int = 3600

    func run() async throws {
        guard let r = Identity.Role(rawValue: role), r != .anon else {
            throw ValidationError("--role must be authenticated or service_role")
        }
        guard ttl >= 1 else { throw ValidationError("--ttl must be at least 1 second") }
        let (secret, _) = try ProjectSecret.load(dataDirectory: data.resolvedDataDir)
        print(try await ProjectJWT(secret: secret).mint(subject: sub, role: r, ttl: TimeInterval(ttl)))
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Print the anon and service_role keys (long-lived JWTs, as Supabase issues them).",
        discussion: "The anon key reads public buckets; the service_role key may act on any path. Keep the latter secret.")

    @OptionGroup var data: DataOptions

    func run() async throws {
        let (secret, _) = try ProjectSecret.load(dataDirectory: data.resolvedDataDir)
        let jwt = await ProjectJWT(secret: secret)
        let tenYears: TimeInterval = 10 * 365 * 24 * 3600
        print("anon:         \(try await jwt.mint(subject: nil, role: .anon, ttl: tenYears, issuer: "supabase"))")
        print("service_role: \(try await jwt.mint(subject: nil, role: .serviceRole, ttl: tenYears, issuer: "supabase"))")
    }
}

struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove orphan blobs, leftover temp files and expired upload intents.",
        discussion: "Safe to run while the server runs: only things older than the grace period are removed.")

    @OptionGroup var data: DataOptions
    @Option(help: "Only remove things older than this many seconds. (env DEPOT_GC_GRACE, default 900)")
    var grace: Int?
    @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
    @OptionGroup(title: "Blob store") var blobOptions: BlobStoreOptions

    func run() async throws {
        let dir = data.resolvedDataDir
        guard metadataOptions.postgresURL != nil || FileManager.default.fileExists(atPath: dir + "/depot.sqlite") else {
            throw DepotFailure("no Depot data in \(dir)")
        }
        let graceSeconds = grace ?? setting(nil, "DEPOT_GC_GRACE").flatMap(Int.init) ?? 900
        var logger = Logger(label: "depot")
        logger.logLevel = .warning
        let rows = try await OpenedMetadataStore.open(metadataOptions, dataDir: dir, migrate: false, logger: logger)
        let report = try await closing(rows.close) {
            let blobs = try await OpenedBlobStore.open(try blobOptions.resolve(), dataDir: dir, sweepTemporaryFiles: false, logger: logger)
            return try await closing(blobs.close) {
                let service = StorageService(
                    blobs: blobs.store, metadata: rows.store,
                    settings: StorageSettings(), keys: .derived(fromProjectSecret: "unused: gc signs nothing"))
                return try await service.collectGarbage(gracePeriod: TimeInterval(graceSeconds))
            }
        }
        print("gc: \(report)")
    }
}
