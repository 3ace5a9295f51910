import ArgumentParser
import DepotCore
import DepotLocal
import DepotPostgres
import Foundation
import Logging

/// Where rows live: SQLite under the data directory (the default) or a shared PostgreSQL.
struct MetadataOptions: ParsableArguments {
    @Option(name: .customLong("database"), help: "postgres://user:password@host:5432/db[?sslmode=…] to keep rows in PostgreSQL, shared by every server; unset: SQLite in the data directory. (env DEPOT_DATABASE_URL)")
    var database: String?

    /// The PostgreSQL URL, or nil for SQLite.
    var postgresURL: String? { setting(database, "DEPOT_DATABASE_URL") }
}

/// An opened metadata store.
struct OpenedMetadataStore {
    var store: any MetadataStore
    /// True when other servers may share the rows (nothing may be cached).
    var shared: Bool
    var summary: String
    var close: @Sendable () async -> Void

    /// Opens SQLite (migrated on open) or PostgreSQL (its pool started, migrated when `migrate`).
    /// - Parameter owner: this process is the server that owns the SQLite file: upload URLs
    ///   claimed by its previous run (cut off by a crash) are released. Never for PostgreSQL, where
    ///   other servers may be mid-upload (claims there lapse after a lease instead).
    static func open(_ options: MetadataOptions, dataDir: String, migrate: Bool = true, owner: Bool = false, logger: Logger) async throws -> OpenedMetadataStore {
        guard let url = options.postgresURL else {
            let sqlite = try SQLiteMetadataStore(path: dataDir + "/depot.sqlite")
            if owner {
                let released = try await sqlite.releaseAbandonedClaims()
                if released > 0 { logger.info("\(released) upload URL(s) cut off by the last stop can be used again") }
            }
            return OpenedMetadataStore(store: sqlite, shared: false, summary: "SQLite \(dataDir)/depot.sqlite", close: {})
        }
        let postgres: PostgresMetadataStore
        do { postgres = try PostgresMetadataStore(url: url, logger: logger) } catch { throw ValidationError(error.message) }
        let runner = await postgres.start()
        let close: @Sendable () async -> Void = {
            runner.cancel()
            _ = await runner.value
        }
        do {
            if migrate {
                let applied = try await postgres.migrate()
                if !applied.isEmpty { logger.info("PostgreSQL schema migrated to version \(applied.last!)") }
            } else {
                try await postgres.ping()
            }
        } catch {
            await close()
            throw DepotFailure("cannot use PostgreSQL at \(redacted(url)): \((error as? StorageError)?.cause.map { "\($0)" } ?? "\(error)")")
        }
        return OpenedMetadataStore(store: postgres, shared: true, summary: "PostgreSQL \(redacted(url))", close: close)
    }

    /// The URL without its password, for logs and messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? "postgres://…"
    }
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
            print(applied.isEmpty
                ? "migrate: PostgreSQL \(where_) is up to date (schema version \(PostgresMetadataStore.latestVersion))"
                : "migrate: PostgreSQL \(where_) migrated to version \(applied.last!) (applied \(applied.map(String.init).joined(separator: ", ")))")
        } catch {
            throw DepotFailure("cannot migrate PostgreSQL at \(OpenedMetadataStore.redacted(url)): \((error as? StorageError)?.cause.map { "\($0)" } ?? "\(error)")")
        }
    }
}
