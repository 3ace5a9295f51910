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
        ),
        // Per-tenant usage (quotas): totals kept by a trigger in the transaction of every write to
        // `objects`, so no write path can forget them and a lookup is one row.
        (
            2,
            [
                """
                CREATE TABLE tenant_usage (
                    owner TEXT COLLATE "C" PRIMARY KEY,
                    bytes BIGINT NOT NULL,
                    objects BIGINT NOT NULL
                )
                """,
                """
                INSERT INTO tenant_usage (owner, bytes, objects)
                    SELECT owner, SUM(size), COUNT(*) FROM objects WHERE owner IS NOT NULL GROUP BY owner
                """,
                """
                CREATE FUNCTION depot_tenant_usage() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.owner IS NOT NULL THEN
                        UPDATE tenant_usage SET bytes = bytes - OLD.size, objects = objects - 1 WHERE owner = OLD.owner;
                    END IF;
                    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.owner IS NOT NULL THEN
                        INSERT INTO tenant_usage (owner, bytes, objects) VALUES (NEW.owner, NEW.size, 1)
                            ON CONFLICT (owner) DO UPDATE SET bytes = tenant_usage.bytes + EXCLUDED.bytes, objects = tenant_usage.objects + 1;
                    END IF;
                    RETURN NULL;
                END
                $$
                """,
                """
                CREATE TRIGGER objects_usage AFTER INSERT OR DELETE OR UPDATE OF owner, size ON objects
                    FOR EACH ROW EXECUTE FUNCTION depot_tenant_usage()
                """,
                "CREATE INDEX upload_intents_owner ON upload_intents(owner, state)",
            ]
        ),
        // Every write to `objects` and `buckets`, by any server, is announced on the channel
        // `depot_rows` (delivered when its transaction commits): the servers' row caches drop what
        // it names (PostgresRowListener). One notification per row written (`o:<bucket>/<name>`,
        // `b:<name>`), or `*` for a statement that wrote more than 100 rows (a bucket's
        // visibility change); PostgreSQL folds repeats within one transaction.
        (
            3,
            [
                """
                CREATE FUNCTION depot_notify_rows() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                    key TEXT;
                    prefix TEXT := CASE TG_TABLE_NAME WHEN 'objects' THEN 'o:' ELSE 'b:' END;
                BEGIN
                \(notifyRows(in: "old_rows", when: "'UPDATE', 'DELETE'"))
                \(notifyRows(in: "new_rows", when: "'UPDATE', 'INSERT'"))
                    RETURN NULL;
                END
                $$
                """
            ]
                + ["objects", "buckets"].flatMap { table in
                    [
                        ("INSERT", "NEW TABLE AS new_rows"), ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                        ("DELETE", "OLD TABLE AS old_rows"),
                    ].map { operation, tables in
                        """
                        CREATE TRIGGER \(table)_notify_\(operation.lowercased()) AFTER \(operation) ON \(table) REFERENCING \(tables)
                            FOR EACH STATEMENT EXECUTE FUNCTION depot_notify_rows()
                        """
                    }
                }
        ),
        // The durable job queue (``JobStore``) and each job's history. Names compare as bytes
        // (COLLATE "C"), as everywhere.
        (
            4,
            [
                """
                CREATE TABLE jobs (
                    seq BIGSERIAL PRIMARY KEY,
                    id TEXT COLLATE "C" NOT NULL UNIQUE,
                    kind TEXT COLLATE "C" NOT NULL,
                    key TEXT COLLATE "C" NOT NULL UNIQUE,
                    tenant TEXT COLLATE "C",
                    source_bucket TEXT COLLATE "C",
                    source_name TEXT COLLATE "C",
                    payload TEXT NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    run_after DOUBLE PRECISION NOT NULL,
                    lease_owner TEXT,
                    lease_until DOUBLE PRECISION,
                    last_error TEXT,
                    created_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX jobs_due ON jobs(state, run_after)",
                "CREATE INDEX jobs_tenant ON jobs(tenant, state)",
                "CREATE INDEX jobs_source ON jobs(source_bucket, source_name) WHERE source_bucket IS NOT NULL",
                """
                CREATE TABLE job_events (
                    n BIGSERIAL PRIMARY KEY,
                    job_id TEXT COLLATE "C" NOT NULL,
                    at DOUBLE PRECISION NOT NULL,
                    state TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    error TEXT
                )
                """,
                "CREATE INDEX job_events_job ON job_events(job_id)",
            ]
        ),
        // Cached renditions (``RenditionStore``): the index of transformed images kept as blobs;
        // each bucket's variant sizes.
        (
            5,
            [
                """
                CREATE TABLE renditions (
                    key TEXT COLLATE "C" PRIMARY KEY,
                    source_blob TEXT COLLATE "C" NOT NULL,
                    blob_id TEXT COLLATE "C" NOT NULL,
                    size BIGINT NOT NULL,
                    content_type TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    used_at DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX renditions_source ON renditions(source_blob)",
                "CREATE INDEX renditions_blob ON renditions(blob_id)",
                "CREATE INDEX renditions_used ON renditions(used_at)",
                "ALTER TABLE buckets ADD COLUMN variants TEXT",
            ]
        ),
        // A running job's progress (``JobStore/setJobProgress(id:worker:progress:now:)``).
        (
            6,
            statements: [
                """
                CREATE TABLE job_progress (
                    job_id TEXT PRIMARY KEY,
                    progress TEXT NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL
                )
                """
            ]
        ),
        // A bucket's own access rules (``BucketRecord/rules``).
        (7, ["ALTER TABLE buckets ADD COLUMN rules TEXT"]),
    ]

    /// Migration 3's announcement of the rows of one transition table (`old_rows` or `new_rows`),
    /// for the trigger operations that have it: one notification per row, or `*` past 100 rows
    /// (or for a key too long for a payload).
    private static func notifyRows(in rows: String, when operations: String) -> String {
        """
            IF TG_OP IN (\(operations)) THEN
                IF (SELECT count(*) FROM \(rows)) > 100 THEN
                    PERFORM pg_notify('depot_rows', '*');
                    RETURN NULL;
                END IF;
                FOR key IN SELECT CASE WHEN prefix = 'o:' THEN k.bucket || '/' || k.name ELSE k.name END
                    FROM (SELECT to_jsonb(r) ->> 'bucket' AS bucket, to_jsonb(r) ->> 'name' AS name FROM \(rows) r) k
                LOOP
                    PERFORM pg_notify('depot_rows', CASE WHEN octet_length(key) > 7000 THEN '*' ELSE prefix || key END);
                END LOOP;
            END IF;
        """
    }

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
