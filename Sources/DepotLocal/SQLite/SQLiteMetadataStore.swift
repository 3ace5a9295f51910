import DepotCore
import Foundation
import GRDB

/// The embedded metadata store: one SQLite database in WAL mode (one writer, pooled readers), with
/// `synchronous = FULL` so that a committed row survives power loss, not just a process crash.
/// Concurrent writes are committed in groups (``GroupCommit``): one fsync for many.
public struct SQLiteMetadataStore: MetadataStore {
    let pool: DatabasePool
    let groupCommit: GroupCommit

    /// Opens (creating and migrating when needed) the database at `path`.
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // A new database file is made 0600 before SQLite opens it (its -wal and -shm files take the
        // database's mode): rows name every tenant's files.
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
        } catch {
            throw Self.translate(error)
        }
        groupCommit = GroupCommit(pool: pool)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE buckets (
                        name TEXT PRIMARY KEY NOT NULL,
                        public INTEGER NOT NULL,
                        file_size_limit INTEGER,
                        allowed_mime_types TEXT,
                        owner TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE objects (
                        bucket TEXT NOT NULL REFERENCES buckets(name),
                        name TEXT NOT NULL,
                        owner TEXT,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        content_type TEXT NOT NULL,
                        sha256 TEXT NOT NULL,
                        cache_control TEXT,
                        metadata TEXT,
                        generation INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (bucket, name)
                    ) WITHOUT ROWID;
                    CREATE INDEX objects_blob_id ON objects(blob_id);
                    CREATE TABLE upload_intents (
                        id TEXT PRIMARY KEY NOT NULL,
                        bucket TEXT NOT NULL,
                        name TEXT NOT NULL,
                        owner TEXT,
                        content_type TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        sha256 TEXT,
                        upsert INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        expires_at REAL NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE INDEX upload_intents_expires_at ON upload_intents(expires_at);
                    """)
        }
        // Per-tenant usage (quotas): totals kept by triggers in the transaction of every write to
        // `objects`, so no write path can forget them and a lookup is one row.
        m.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenant_usage (
                        owner TEXT PRIMARY KEY NOT NULL,
                        bytes INTEGER NOT NULL,
                        objects INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    INSERT INTO tenant_usage (owner, bytes, objects)
                        SELECT owner, SUM(size), COUNT(*) FROM objects WHERE owner IS NOT NULL GROUP BY owner;
                    CREATE TRIGGER objects_usage_insert AFTER INSERT ON objects WHEN NEW.owner IS NOT NULL BEGIN
                        INSERT INTO tenant_usage (owner, bytes, objects) VALUES (NEW.owner, NEW.size, 1)
                            ON CONFLICT (owner) DO UPDATE SET bytes = bytes + excluded.bytes, objects = objects + 1;
                    END;
                    CREATE TRIGGER objects_usage_delete AFTER DELETE ON objects WHEN OLD.owner IS NOT NULL BEGIN
                        UPDATE tenant_usage SET bytes = bytes - OLD.size, objects = objects - 1 WHERE owner = OLD.owner;
                    END;
                    CREATE TRIGGER objects_usage_update AFTER UPDATE OF owner, size ON objects BEGIN
                        UPDATE tenant_usage SET bytes = bytes - OLD.size, objects = objects - 1 WHERE owner = OLD.owner;
                        INSERT INTO tenant_usage (owner, bytes, objects) SELECT NEW.owner, NEW.size, 1 WHERE NEW.owner IS NOT NULL
                            ON CONFLICT (owner) DO UPDATE SET bytes = bytes + excluded.bytes, objects = objects + 1;
                    END;
                    CREATE INDEX upload_intents_owner ON upload_intents(owner, state);
                    """)
        }
        // The durable job queue (``JobStore``) and each job's history.
        m.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        key TEXT NOT NULL UNIQUE,
                        tenant TEXT,
                        source_bucket TEXT,
                        source_name TEXT,
                        payload TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        max_attempts INTEGER NOT NULL,
                        run_after REAL NOT NULL,
                        lease_owner TEXT,
                        lease_until REAL,
                        last_error TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE INDEX jobs_due ON jobs(state, run_after);
                    CREATE INDEX jobs_tenant ON jobs(tenant, state);
                    CREATE INDEX jobs_source ON jobs(source_bucket, source_name) WHERE source_bucket IS NOT NULL;
                    CREATE TABLE job_events (
                        job_id TEXT NOT NULL,
                        at REAL NOT NULL,
                        state TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        error TEXT
                    );
                    CREATE INDEX job_events_job ON job_events(job_id);
                    """)
        }
        // Cached renditions (``RenditionStore``): the index of transformed images kept as blobs;
        // each bucket's variant sizes.
        m.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    CREATE TABLE renditions (
                        key TEXT PRIMARY KEY NOT NULL,
                        source_blob TEXT NOT NULL,
                        blob_id TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        content_type TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        used_at REAL NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX renditions_source ON renditions(source_blob);
                    CREATE INDEX renditions_blob ON renditions(blob_id);
                    CREATE INDEX renditions_used ON renditions(used_at);
                    ALTER TABLE buckets ADD COLUMN variants TEXT;
                    """)
        }
        // A running job's progress (``JobStore/setJobProgress(id:worker:progress:now:)``).
        m.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    CREATE TABLE job_progress (
                        job_id TEXT PRIMARY KEY NOT NULL,
                        progress TEXT NOT NULL,
                        updated_at REAL NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        // A bucket's own access rules (``BucketRecord/rules``).
        m.registerMigration("v6") { db in try db.execute(sql: "ALTER TABLE buckets ADD COLUMN rules TEXT") }
        return m
    }

    /// Runs a read, translating errors at the boundary.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.translate(error) }
    }

    /// Runs a write transaction (grouped with concurrent ones), translating errors at the boundary.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await groupCommit.submit { db in try body(db) } as! T
        } catch {
            throw Self.translate(error)
        }
    }

    /// The one place where SQLite errors become `StorageError`s.
    static func translate(_ error: any Error) -> any Error {
        if error is StorageError { return error }
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_CONSTRAINT: return StorageError(.alreadyExists, "the name is taken", cause: e)
            case .SQLITE_BUSY, .SQLITE_LOCKED: return StorageError(.unavailable, "the database is busy", cause: e)
            case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN: return StorageError(.unavailable, "the database cannot be written", cause: e)
            default: break
            }
        }
        return StorageError(.internalError, "metadata store error", cause: error)
    }

    public func ping() async throws {
        _ = try await read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }
}
