import DepotCore
import Foundation
import PostgresNIO

// MARK: - Buckets

extension PostgresMetadataStore {
    public func createBucket(_ b: BucketRecord) async throws {
        let types = try Self.mimeTypes(b)
        _ = try await rows(
            """
            INSERT INTO buckets (name, public, file_size_limit, allowed_mime_types, owner, created_at, updated_at, variants, rules)
            VALUES (\(b.name), \(b.isPublic), \(b.fileSizeLimit), \(types), \(b.owner),
            \(b.createdAt.timeIntervalSince1970), \(b.updatedAt.timeIntervalSince1970), \(VariantSize.text(b.variants)), \(b.rules))
            """)
    }

    public func bucket(named name: String) async throws -> BucketRecord? {
        try await rows("SELECT * FROM buckets WHERE name = \(name)").first.map(Self.bucket)
    }

    public func listBuckets() async throws -> [BucketRecord] {
        try await rows("SELECT * FROM buckets ORDER BY name").map(Self.bucket)
    }

    public func updateBucket(_ b: BucketRecord, endingLinks: Bool) async throws {
        let types = try Self.mimeTypes(b)
        let flip = Int64.newGeneration()
        try await transaction { [logger] conn in
            let updated = try await conn.query(
                """
                UPDATE buckets SET public = \(b.isPublic), file_size_limit = \(b.fileSizeLimit), allowed_mime_types = \(types),
                owner = \(b.owner), updated_at = \(b.updatedAt.timeIntervalSince1970), variants = \(VariantSize.text(b.variants)),
                rules = \(b.rules)
                WHERE name = \(b.name) RETURNING name
                """, logger: logger
            ).collect()
            guard !updated.isEmpty else { throw StorageError.notFound("bucket not found") }
            if endingLinks {
                try await conn.query("UPDATE objects SET generation = generation # \(flip) WHERE bucket = \(b.name)", logger: logger)
            }
        }
    }

    public func deleteBucket(named name: String) async throws {
        try await transaction { [logger] conn in
            let locked = try await conn.query("SELECT 1 FROM buckets WHERE name = \(name) FOR UPDATE", logger: logger).collect()
            guard !locked.isEmpty else { throw StorageError.notFound("bucket not found") }
            let any = try await conn.query("SELECT 1 FROM objects WHERE bucket = \(name) LIMIT 1", logger: logger).collect()
            guard any.isEmpty else { throw StorageError(.conflict, "the bucket is not empty") }
            try await conn.query("DELETE FROM buckets WHERE name = \(name)", logger: logger)
        }
    }
}

// MARK: - Objects

extension PostgresMetadataStore {
    public func object(at key: ObjectKey) async throws -> ObjectRecord? {
        try await rows(
            "SELECT \(unescaped: Self.objectColumns) FROM objects WHERE bucket = \(key.bucket) AND name = \(key.path.string)"
        ).first.map(Self.object)
    }

    public func objects(in bucket: String, paths: [ObjectPath]) async throws -> [ObjectPath: ObjectRecord] {
        if paths.isEmpty { return [:] }
        let names = paths.map(\.string)
        var result: [ObjectPath: ObjectRecord] = [:]
        for row in try await rows(
            "SELECT \(unescaped: Self.objectColumns) FROM objects WHERE bucket = \(bucket) AND name = ANY(\(names))")
        {
            let o = try Self.object(row)
            result[o.path] = o
        }
        return result
    }

    public func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        let write: @Sendable (PostgresConnection, Logger, Bool) async throws -> ObjectRecord? = { conn, logger, upsert in
            let replaced = try await Self.put(object, upsert: upsert, quota: quota, in: conn, logger: logger)
            try await Self.apply(jobs, for: object.key, in: conn, logger: logger)
            return replaced
        }
        do {
            return try await transaction { [logger] conn in try await write(conn, logger, upsert) }
        } catch let e as StorageError where e.code == .alreadyExists && upsert {
            // Lost an insert race to another writer of the same name: now there is a row to replace.
            return try await transaction { [logger] conn in try await write(conn, logger, true) }
        }
    }

    public func deleteObject(at key: ObjectKey) async throws -> ObjectRecord? {
        try await rows(
            "DELETE FROM objects WHERE bucket = \(key.bucket) AND name = \(key.path.string) RETURNING \(unescaped: Self.objectColumns)"
        ).first.map(Self.object)
    }

    public func moveObject(from: ObjectKey, to: ObjectKey, generation: Int64, at date: Date) async throws -> ObjectRecord {
        try await transaction { [logger] conn in
            let bucket = try await conn.query("SELECT 1 FROM buckets WHERE name = \(to.bucket)", logger: logger).collect()
            guard !bucket.isEmpty else { throw StorageError.notFound("bucket not found") }
            guard try await Self.lockedObject(bucket: from.bucket, name: from.path.string, in: conn, logger: logger) != nil else {
                throw StorageError.notFound()
            }
            if from != to, try await Self.lockedObject(bucket: to.bucket, name: to.path.string, in: conn, logger: logger) != nil {
                throw StorageError(.alreadyExists, "an object already exists at the destination")
            }
            let rows = try await conn.query(
                """
                UPDATE objects SET bucket = \(to.bucket), name = \(to.path.string), generation = \(generation),
                updated_at = \(date.timeIntervalSince1970) WHERE bucket = \(from.bucket) AND name = \(from.path.string)
                RETURNING \(unescaped: Self.objectColumns)
                """, logger: logger
            ).collect()
            guard let row = rows.first else { throw StorageError.notFound() }
            return try Self.object(row)
        }
    }

    public func setGeneration(_ generation: Int64, at key: ObjectKey, date: Date) async throws -> ObjectRecord {
        let rows = try await rows(
            """
            UPDATE objects SET generation = \(generation), updated_at = \(date.timeIntervalSince1970)
            WHERE bucket = \(key.bucket) AND name = \(key.path.string) RETURNING \(unescaped: Self.objectColumns)
            """)
        guard let row = rows.first else { throw StorageError.notFound() }
        return try Self.object(row)
    }

    public func listObjects(in bucket: String, prefix: String, after cursor: String?, limit: Int) async throws -> [ObjectRecord] {
        // Byte order, as the `COLLATE "C"` column compares: never Swift's canonical `String` order.
        let lower = bytewiseMax(prefix, cursor ?? "")
        let strict = cursor.map { !$0.bytesPrecede(prefix) } ?? false
        return try await rows(
            """
            SELECT \(unescaped: Self.objectColumns) FROM objects
            WHERE bucket = \(bucket) AND name \(unescaped: strict ? ">" : ">=") \(lower) AND name < \(prefix + "\u{10FFFF}")
            ORDER BY name LIMIT \(limit)
            """
        ).map(Self.object)
    }

    public func referencedBlobs(among ids: [BlobID]) async throws -> Set<BlobID> {
        if ids.isEmpty { return [] }
        var found: Set<BlobID> = []
        for row in try await rows(
            "SELECT blob_id FROM objects WHERE blob_id = ANY(\(ids.map(\.rawValue))) UNION SELECT blob_id FROM renditions WHERE blob_id = ANY(\(ids.map(\.rawValue)))"
        ) {
            found.insert(BlobID(rawValue: try row.decode(String.self)))
        }
        return found
    }
}

// MARK: - Upload intents

extension PostgresMetadataStore {
    public func createIntent(_ i: UploadIntent) async throws {
        _ = try await rows(
            """
            INSERT INTO upload_intents (id, bucket, name, owner, content_type, size, sha256, upsert, state, expires_at, created_at)
            VALUES (\(i.id), \(i.bucket), \(i.path.string), \(i.owner), \(i.contentType), \(i.size), \(i.sha256), \(i.upsert),
            \(i.state.rawValue), \(i.expiresAt.timeIntervalSince1970), \(i.createdAt.timeIntervalSince1970))
            """)
    }

    public func intent(id: String) async throws -> UploadIntent? {
        try await rows("SELECT * FROM upload_intents WHERE id = \(id)").first.map(Self.intent)
    }

    /// One conditional UPDATE: of servers claiming the same intent at once, exactly one gets the
    /// row back. A claim older than the lease is taken to be abandoned.
    public func claimIntent(id: String, now: Date) async throws -> UploadIntent {
        let t = now.timeIntervalSince1970
        let claimed = try await rows(
            """
            UPDATE upload_intents SET state = 'uploading', claimed_at = \(t)
            WHERE id = \(id) AND expires_at > \(t)
              AND (state = 'pending' OR (state = 'uploading' AND claimed_at < \(t - claimLease)))
            RETURNING *
            """)
        if let row = claimed.first { return try Self.intent(row) }
        guard let current = try await intent(id: id) else { throw StorageError(.notFound, "upload intent not found") }
        guard current.state == .pending else {
            throw StorageError(.uploadConsumed, current.state == .consumed ? "this upload URL has already been used" : "this upload URL is in use")
        }
        throw StorageError(.urlExpired, "the upload URL has expired")
    }

    public func releaseIntent(id: String) async throws {
        _ = try await rows("UPDATE upload_intents SET state = 'pending', claimed_at = NULL WHERE id = \(id) AND state = 'uploading'")
    }

    public func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try await transaction { [logger] conn in
            let rows = try await conn.query(
                "SELECT upsert FROM upload_intents WHERE id = \(id) AND state = 'uploading' FOR UPDATE", logger: logger
            ).collect()
            guard let row = rows.first else { throw StorageError(.uploadConsumed, "this upload URL is not being uploaded") }
            let upsert = try row.decode(Bool.self)
            let replaced = try await Self.put(object, upsert: upsert, quota: quota, in: conn, logger: logger)
            try await Self.apply(jobs, for: object.key, in: conn, logger: logger)
            try await conn.query("UPDATE upload_intents SET state = 'consumed' WHERE id = \(id)", logger: logger)
            return replaced
        }
    }

    public func deleteIntents(expiredBefore date: Date) async throws -> Int {
        try await rows("DELETE FROM upload_intents WHERE expires_at < \(date.timeIntervalSince1970) RETURNING id").count
    }

    public func usage(of owner: String, now: Date) async throws -> TenantUsage {
        let totals = try await rows("SELECT bytes, objects FROM tenant_usage WHERE owner = \(owner)")
        let intents = try await rows(
            "SELECT COUNT(*) FROM upload_intents WHERE owner = \(owner) AND state = 'pending' AND expires_at > \(now.timeIntervalSince1970)")
        var usage = TenantUsage(pendingIntents: Int(try intents.first?.decode(Int64.self) ?? 0))
        if let row = totals.first {
            let cells = row.makeRandomAccess()
            usage.bytes = try cells[0].decode(Int64.self)
            usage.objects = Int(try cells[1].decode(Int64.self))
        }
        return usage
    }
}
