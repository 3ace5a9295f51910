import DepotCore
import Foundation
import PostgresNIO

/// Versioned schema changes, applied in order, each once. Servers starting together take an
/// advisory lock, so one applies and the others find the work done.
extension PostgresMetadataStore {
    static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE buckets (
                    name TEXT COLLATE "C" PRIMARY KEY,
                    public BOOLEAN NOT NULL,
                    file_size_limit BIGINT,
                    allowed_mime_types TEXT,
                    owner TEXT,
                    created_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL
                )
                """,
                """
                CREATE TABLE objects (
                    bucket TEXT COLLATE "C" NOT NULL REFERENCES buckets(name),
                    name TEXT COLLATE "C" NOT NULL,
                    owner TEXT,
                    blob_id TEXT NOT NULL,
                    size BIGINT NOT NULL,
                    content_type TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    cache_control TEXT,
                    metadata TEXT,
                    generation BIGINT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (bucket, name)
                )
                """,
                "CREATE INDEX objects_blob_id ON objects(blob_id)",
                """
                CREATE TABLE upload_intents (
                    id TEXT PRIMARY KEY,
                    bucket TEXT NOT NULL,
                    name TEXT NOT NULL,
                    owner TEXT,
                    content_type TEXT NOT NULL,
                    size BIGINT NOT NULL,
                    sha256 TEXT,
                    upsert BOOLEAN NOT NULL,
                    state TEXT NOT NULL,
                    claimed_at DOUBLE PRECISION,
                    expires_at DOUBLE PRECISION NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX upload_intents_expires_at ON upload_intents(expires_at)",
            ]
        )
    ]

    /// The newest schema version this build knows.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies the migrations the database lacks. Returns the versions applied (empty when the
    /// schema was up to date). Fails when the database has a newer schema than this build knows.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await transaction { [logger] conn in
            // One migrator at a time across every server (the key is arbitrary but fixed).
            try await conn.query("SELECT pg_advisory_xact_lock(7356001)", logger: logger)
            try await conn.query(
                "CREATE TABLE IF NOT EXISTS depot_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
                logger: logger)
            var applied = Set<Int>()
            for try await version in try await conn.query("SELECT version FROM depot_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > Self.latestVersion {
                throw StorageError.internal("the database schema (version \(newest)) is newer than this Depot (version \(Self.latestVersion))")
            }
            var done: [Int] = []
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let now = Date().timeIntervalSince1970
                try await conn.query("INSERT INTO depot_migrations (version, applied_at) VALUES (\(migration.version), \(now))", logger: logger)
                done.append(migration.version)
            }
            return done
        }
    }
}
