import ArgumentParser
import DepotCore
import Depot
import DepotPostgres
import Foundation
import Logging

/// Where rows live: SQLite under the data directory (the default) or a shared PostgreSQL.
struct MetadataOptions: ParsableArguments {
    @Option(
        name: .customLong("database"),
        help:
            "postgres://user:password@host:5432/db[?sslmode=…] to keep rows in PostgreSQL, shared by every server; unset: SQLite in the data directory. (env DEPOT_DATABASE_URL)"
    )
    var database: String?

    /// The PostgreSQL URL, or nil for SQLite.
    var postgresURL: String? { setting(database, "DEPOT_DATABASE_URL") }

    var backend: MetadataBackend { postgresURL.map { .postgres(url: $0) } ?? .sqlite }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Bring the database schema up to date (servers also do this when they start).",
        discussion: "Safe to run while servers run and from several machines at once: migrations take a lock and each is applied once.")

    @OptionGroup var data: DataOptions
    @OptionGroup var metadata: MetadataOptions

    func run() async throws {
        var logger = Logger(label: "depot")
        logger.logLevel = .warning
        guard let url = metadata.postgresURL else {
            try DataDirectory.create(data.resolvedDataDir)
            _ = try SQLiteMetadataStore(path: data.resolvedDataDir + "/depot.sqlite")
            print("migrate: SQLite \(data.resolvedDataDir)/depot.sqlite is up to date")
            return
        }
        let store: PostgresMetadataStore
        do { store = try PostgresMetadataStore(url: url, logger: logger) } catch { throw ValidationError(error.message) }
        let runner = await store.start()
        defer { runner.cancel() }
        do {
            let applied = try await store.migrate()
            let where_ = OpenedMetadataStore.redacted(url)
            print(
                applied.isEmpty
                    ? "migrate: PostgreSQL \(where_) is up to date (schema version \(PostgresMetadataStore.latestVersion))"
                    : "migrate: PostgreSQL \(where_) migrated to version \(applied.last!) (applied \(applied.map(String.init).joined(separator: ", ")))"
            )
        } catch {
            throw DepotFailure(
                "cannot migrate PostgreSQL at \(OpenedMetadataStore.redacted(url)): \((error as? StorageError)?.cause.map { "\($0)" } ?? "\(error)")")
        }
    }
}
