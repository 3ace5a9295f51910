import ArgumentParser
import DepotCore
import Depot
import DepotHTTP
import Foundation
import Logging

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a JWT signed with the project secret (for development and tests).",
        discussion: """
            The secret comes from DEPOT_JWT_SECRET or <data-dir>/jwt-secret, which this command never creates: run it with the server's --data-dir. iat and exp are whole seconds.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: "The user id (JWT sub); the tenant whose paths the token may touch. Required unless --role is anon.")
    var sub: String?
    @Option(help: "authenticated, service_role or anon.")
    var role: String = "authenticated"
    @Option(help: "Lifetime in seconds.")
    var ttl: Int = 3600

    func run() async throws {
        guard let r = Identity.Role(rawValue: role) else {
            throw ValidationError("--role must be authenticated, service_role or anon")
        }
        guard sub != nil || r == .anon else { throw ValidationError("--sub is required (unless --role anon)") }
        // The server's rule: a sub it would refuse makes a token that is useless.
        guard sub.map(ProjectJWT.isTenantID) ?? true else {
            throw ValidationError(
                "--sub must be one path segment in Unicode NFC (no '/', not '.' or '..', no control or bidirectional characters, at most 255 bytes)")
        }
        guard ttl >= 1 else { throw ValidationError("--ttl must be at least 1 second") }
        guard ttl <= 10 * 365 * 24 * 3600 else { throw ValidationError("--ttl must be at most 10 years") }
        let (secret, _) = try ProjectSecret.load(dataDirectory: data.resolvedDataDir, mode: .mustExist)
        print(try await ProjectJWT(secret: secret).mint(subject: sub, role: r, ttl: TimeInterval(ttl)))
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Print the anon and service_role keys (long-lived JWTs, as Supabase issues them).",
        discussion: """
            The anon key reads public buckets; the service_role key may act on any path: keep it secret. The keys are the same on every call (fixed claims, valid until 2036-01-01) and change only with the project secret, which this command reads from DEPOT_JWT_SECRET or <data-dir>/jwt-secret and never creates: run it with the server's --data-dir.
            """)

    @OptionGroup var data: DataOptions

    func run() async throws {
        let (secret, _) = try ProjectSecret.load(dataDirectory: data.resolvedDataDir, mode: .mustExist)
        let jwt = await ProjectJWT(secret: secret)
        print("anon: \(jwt.apiKey(role: .anon))")
        print("service_role: \(jwt.apiKey(role: .serviceRole))")
    }
}

struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract:
            "Remove orphan blobs, leftover temp files, expired upload intents, expired resumable uploads and abandoned S3 multipart uploads.",
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
        let rows = try await OpenedMetadataStore.open(metadataOptions.backend, dataDir: dir, migrate: false, logger: logger)
        let report = try await closing(rows.close) {
            let blobs = try await OpenedBlobStore.open(try blobOptions.resolve(), dataDir: dir, sweepTemporaryFiles: false, logger: logger)
            return try await closing(blobs.close) {
                // The stores as they are (no caches, no buckets made): gc only removes.
                let service = StorageService(
                    blobs: blobs.store, metadata: rows.store,
                    settings: StorageSettings(), keys: .derived(fromProjectSecret: "unused: gc signs nothing"),
                    resumable: blobs.resumable)
                return try await service.collectGarbage(gracePeriod: TimeInterval(graceSeconds))
            }
        }
        print("gc: \(report)")
    }
}
