import DepotCore
import Foundation
import GRDB

// MARK: - Buckets

extension SQLiteMetadataStore {
    public func createBucket(_ bucket: BucketRecord) async throws {
        let args = try Self.bucketArguments(bucket)
        try await write { db in
            try db.cachedStatement(
                sql:
                    "INSERT INTO buckets (name, public, file_size_limit, allowed_mime_types, owner, created_at, updated_at, variants, rules) VALUES (?,?,?,?,?,?,?,?,?)"
            ).execute(
                arguments: args)
        }
    }

    public func bucket(named name: String) async throws -> BucketRecord? {
        try await read { db in try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM buckets WHERE name = ?"), arguments: [name]).map(Self.bucket) }
    }

    public func listBuckets() async throws -> [BucketRecord] {
        try await read { db in try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM buckets ORDER BY name")).map(Self.bucket) }
    }

    public func updateBucket(_ bucket: BucketRecord, endingLinks: Bool) async throws {
        let args = try Self.bucketArguments(bucket)
        let flip = Int64.newGeneration()
        try await write { db in
            try db.cachedStatement(
                sql:
                    "UPDATE buckets SET public = ?2, file_size_limit = ?3, allowed_mime_types = ?4, owner = ?5, updated_at = ?7, variants = ?8, rules = ?9 WHERE name = ?1"
            ).execute(
                arguments: args)
            guard db.changesCount == 1 else { throw StorageError.notFound("bucket not found") }
            if endingLinks {
                // generation XOR flip (SQLite has no XOR operator): non-negative, and never the old value.
                try db.cachedStatement(sql: "UPDATE objects SET generation = (generation | ?1) - (generation & ?1) WHERE bucket = ?2")
                    .execute(arguments: [flip, bucket.name])
            }
        }
    }

    public func deleteBucket(named name: String) async throws {
        try await write { db in
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM objects WHERE bucket = ? LIMIT 1"), arguments: [name]) == true {
                throw StorageError(.conflict, "the bucket is not empty")
            }
            try db.cachedStatement(sql: "DELETE FROM buckets WHERE name = ?").execute(arguments: [name])
            guard db.changesCount == 1 else { throw StorageError.notFound("bucket not found") }
        }
    }
}

// MARK: - Objects

extension SQLiteMetadataStore {
    public func object(at key: ObjectKey) async throws -> ObjectRecord? {
        try await read { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.objectColumns) FROM objects WHERE bucket = ? AND name = ?"),
                arguments: [key.bucket, key.path.string]
            ).map(Self.object)
        }
    }

    public func objects(in bucket: String, paths: [ObjectPath]) async throws -> [ObjectPath: ObjectRecord] {
        if paths.isEmpty { return [:] }
        let names = paths.map(\.string)
        return try await read { db in
            var result: [ObjectPath: ObjectRecord] = [:]
            // Chunked to stay under SQLite's bound-parameter limit.
            for start in stride(from: 0, to: names.count, by: 500) {
                let chunk = Array(names[start..<min(start + 500, names.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchAll(
                    db, sql: "SELECT \(Self.objectColumns) FROM objects WHERE bucket = ? AND name IN (\(marks))",
                    arguments: StatementArguments([bucket] + chunk))
                for row in rows {
                    let o = try Self.object(row)
                    result[o.path] = o
                }
            }
            return result
        }
    }

    public func putObject(_ object: ObjectRecord, upsert: Bool, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try await write { db in
            let replaced = try Self.put(object, upsert: upsert, quota: quota, in: db)
            try Self.apply(jobs, for: object.key, in: db)
            return replaced
        }
    }

    public func deleteObject(at key: ObjectKey) async throws -> ObjectRecord? {
        try await write { db in
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "DELETE FROM objects WHERE bucket = ? AND name = ? RETURNING \(Self.objectColumns)"),
                arguments: [key.bucket, key.path.string])
            return try row.map(Self.object)
        }
    }

    public func moveObject(from: ObjectKey, to: ObjectKey, generation: Int64, at date: Date) async throws -> ObjectRecord {
        try await write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM buckets WHERE name = ?"), arguments: [to.bucket]) == true else {
                throw StorageError.notFound("bucket not found")
            }
            guard
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM objects WHERE bucket = ? AND name = ?"), arguments: [from.bucket, from.path.string])
                    == true
            else {
                throw StorageError.notFound()
            }
            if from != to,
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM objects WHERE bucket = ? AND name = ?"), arguments: [to.bucket, to.path.string]) == true
            {
                throw StorageError(.alreadyExists, "an object already exists at the destination")
            }
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql:
                        "UPDATE objects SET bucket = ?, name = ?, generation = ?, updated_at = ? WHERE bucket = ? AND name = ? RETURNING \(Self.objectColumns)"
                ),
                arguments: [to.bucket, to.path.string, generation, date.timeIntervalSince1970, from.bucket, from.path.string])
            guard let row else { throw StorageError.notFound() }
            return try Self.object(row)
        }
    }

    public func setGeneration(_ generation: Int64, at key: ObjectKey, date: Date) async throws -> ObjectRecord {
        try await write { db in
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: "UPDATE objects SET generation = ?, updated_at = ? WHERE bucket = ? AND name = ? RETURNING \(Self.objectColumns)"),
                arguments: [generation, date.timeIntervalSince1970, key.bucket, key.path.string])
            guard let row else { throw StorageError.notFound() }
            return try Self.object(row)
        }
    }

    public func listObjects(in bucket: String, prefix: String, after cursor: String?, limit: Int) async throws -> [ObjectRecord] {
        // Byte order, as SQLite compares: never Swift's canonical `String` order (see Bytewise.swift).
        let lower = bytewiseMax(prefix, cursor ?? "")
        let strict = cursor.map { !$0.bytesPrecede(prefix) } ?? false
        return try await read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT \(Self.objectColumns) FROM objects
                        WHERE bucket = ? AND name \(strict ? ">" : ">=") ? AND name < ?
                        ORDER BY name LIMIT ?
                        """),
                arguments: [bucket, lower, prefix + "\u{10FFFF}", limit]
            ).map(Self.object)
        }
    }

    public func referencedBlobs(among ids: [BlobID]) async throws -> Set<BlobID> {
        if ids.isEmpty { return [] }
        let raw = ids.map(\.rawValue)
        return try await read { db in
            var found: Set<BlobID> = []
            for start in stride(from: 0, to: raw.count, by: 500) {
                let chunk = Array(raw[start..<min(start + 500, raw.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for id in try String.fetchAll(
                    db,
                    sql: "SELECT blob_id FROM objects WHERE blob_id IN (\(marks)) UNION SELECT blob_id FROM renditions WHERE blob_id IN (\(marks))",
                    arguments: StatementArguments(chunk + chunk))
                {
                    found.insert(BlobID(rawValue: id))
                }
            }
            return found
        }
    }
}

// MARK: - Upload intents

extension SQLiteMetadataStore {
    public func createIntent(_ i: UploadIntent) async throws {
        try await write { db in
            try db.cachedStatement(
                sql:
                    "INSERT INTO upload_intents (id, bucket, name, owner, content_type, size, sha256, upsert, state, expires_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            ).execute(
                arguments: [
                    i.id, i.bucket, i.path.string, i.owner, i.contentType, i.size, i.sha256, i.upsert, i.state.rawValue,
                    i.expiresAt.timeIntervalSince1970, i.createdAt.timeIntervalSince1970,
                ])
        }
    }

    public func intent(id: String) async throws -> UploadIntent? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM upload_intents WHERE id = ?"), arguments: [id]).map(Self.intent)
        }
    }

    public func claimIntent(id: String, now: Date) async throws -> UploadIntent {
        try await write { db in
            guard
                let current = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM upload_intents WHERE id = ?"), arguments: [id]).map(Self.intent)
            else {
                throw StorageError(.notFound, "upload intent not found")
            }
            guard current.state == .pending else {
                throw StorageError(
                    .uploadConsumed, current.state == .consumed ? "this upload URL has already been used" : "this upload URL is in use")
            }
            guard current.expiresAt > now else { throw StorageError(.urlExpired, "the upload URL has expired") }
            try db.cachedStatement(sql: "UPDATE upload_intents SET state = 'uploading' WHERE id = ? AND state = 'pending'").execute(arguments: [id])
            guard db.changesCount == 1 else { throw StorageError(.uploadConsumed, "this upload URL is in use") }
            var claimed = current
            claimed.state = .uploading
            return claimed
        }
    }

    /// Puts every claimed (`uploading`) intent back to pending. Only for start-up of the single
    /// process that owns this database: claims left by a process that died can never complete.
    /// Returns how many were released.
    @discardableResult
    public func releaseAbandonedClaims() async throws -> Int {
        try await write { db in
            try db.cachedStatement(sql: "UPDATE upload_intents SET state = 'pending' WHERE state = 'uploading'").execute()
            return db.changesCount
        }
    }

    public func releaseIntent(id: String) async throws {
        try await write { db in
            try db.cachedStatement(sql: "UPDATE upload_intents SET state = 'pending' WHERE id = ? AND state = 'uploading'").execute(arguments: [id])
        }
    }

    public func commitIntent(id: String, object: ObjectRecord, quota: TenantQuota, jobs: JobBatch) async throws -> ObjectRecord? {
        try await write { db in
            guard
                let upsert = try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT upsert FROM upload_intents WHERE id = ? AND state = 'uploading'"), arguments: [id])
            else {
                throw StorageError(.uploadConsumed, "this upload URL is not being uploaded")
            }
            let replaced = try Self.put(object, upsert: upsert, quota: quota, in: db)
            try Self.apply(jobs, for: object.key, in: db)
            try db.cachedStatement(sql: "UPDATE upload_intents SET state = 'consumed' WHERE id = ?").execute(arguments: [id])
            return replaced
        }
    }

    public func deleteIntents(expiredBefore date: Date) async throws -> Int {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM upload_intents WHERE expires_at < ?").execute(arguments: [date.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func usage(of owner: String, now: Date) async throws -> TenantUsage {
        try await read { db in
            let totals = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT bytes, objects AS n FROM tenant_usage WHERE owner = ?"),
                arguments: [owner])
            let intents =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT COUNT(*) FROM upload_intents WHERE owner = ? AND state = 'pending' AND expires_at > ?"),
                    arguments: [owner, now.timeIntervalSince1970]) ?? 0
            return TenantUsage(bytes: totals?["bytes"] ?? 0, objects: totals?["n"] ?? 0, pendingIntents: intents)
        }
    }
}
