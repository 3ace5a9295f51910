import DepotCore
import Foundation
import PostgresNIO

// MARK: - Row ↔ record mapping

extension PostgresMetadataStore {
    static let objectColumns =
        "bucket, name, owner, blob_id, size, content_type, sha256, cache_control, metadata, generation, created_at, updated_at"

    static func object(_ row: PostgresRow) throws -> ObjectRecord {
        let r = row.makeRandomAccess()
        return ObjectRecord(
            bucket: try r["bucket"].decode(String.self), path: try ObjectPath(try r["name"].decode(String.self)),
            owner: try r["owner"].decode(String?.self), blobID: BlobID(rawValue: try r["blob_id"].decode(String.self)),
            size: try r["size"].decode(Int64.self), contentType: try r["content_type"].decode(String.self),
            sha256: try r["sha256"].decode(String.self), cacheControl: try r["cache_control"].decode(String?.self),
            metadata: try r["metadata"].decode(String?.self), generation: try r["generation"].decode(Int64.self),
            createdAt: Date(timeIntervalSince1970: try r["created_at"].decode(Double.self)),
            updatedAt: Date(timeIntervalSince1970: try r["updated_at"].decode(Double.self)))
    }

    static func bucket(_ row: PostgresRow) throws -> BucketRecord {
        let r = row.makeRandomAccess()
        let types = try r["allowed_mime_types"].decode(String?.self)
        return BucketRecord(
            name: try r["name"].decode(String.self), isPublic: try r["public"].decode(Bool.self),
            fileSizeLimit: try r["file_size_limit"].decode(Int64?.self),
            allowedMimeTypes: try types.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) },
            owner: try r["owner"].decode(String?.self), variants: try r["variants"].decode(String?.self).flatMap(VariantSize.list) ?? [],
            rules: try r["rules"].decode(String?.self),
            createdAt: Date(timeIntervalSince1970: try r["created_at"].decode(Double.self)),
            updatedAt: Date(timeIntervalSince1970: try r["updated_at"].decode(Double.self)))
    }

    static func mimeTypes(_ b: BucketRecord) throws -> String? {
        try b.allowedMimeTypes.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
    }

    static func intent(_ row: PostgresRow) throws -> UploadIntent {
        let r = row.makeRandomAccess()
        guard let state = UploadIntent.State(rawValue: try r["state"].decode(String.self)) else {
            throw StorageError.internal("unknown intent state")
        }
        return UploadIntent(
            id: try r["id"].decode(String.self), bucket: try r["bucket"].decode(String.self),
            path: try ObjectPath(try r["name"].decode(String.self)), owner: try r["owner"].decode(String?.self),
            contentType: try r["content_type"].decode(String.self), size: try r["size"].decode(Int64.self),
            sha256: try r["sha256"].decode(String?.self), upsert: try r["upsert"].decode(Bool.self), state: state,
            expiresAt: Date(timeIntervalSince1970: try r["expires_at"].decode(Double.self)),
            createdAt: Date(timeIntervalSince1970: try r["created_at"].decode(Double.self)))
    }

    /// The object row at a name, locked for the rest of the transaction.
    static func lockedObject(bucket: String, name: String, in conn: PostgresConnection, logger: Logger) async throws -> ObjectRecord? {
        let rows = try await conn.query(
            "SELECT \(unescaped: objectColumns) FROM objects WHERE bucket = \(bucket) AND name = \(name) FOR UPDATE",
            logger: logger
        ).collect()
        return try rows.first.map(object)
    }

    /// Inserts or replaces an object row inside a transaction. An overwrite keeps the row's
    /// creation time and takes the new generation (links to the old bytes die). Returns the
    /// replaced row.
    /// Inserts or replaces a row; then, when `quota` limits storage, refuses what takes the owner
    /// past it (the caller's transaction is rolled back). The trigger's update of `tenant_usage`
    /// holds that row's lock until the commit, so concurrent writes of one owner are counted one
    /// after the other, never both against the same old total.
    static func put(
        _ o: ObjectRecord, upsert: Bool, quota: TenantQuota = .unlimited, in conn: PostgresConnection, logger: Logger
    ) async throws -> ObjectRecord? {
        let replaced = try await write(o, upsert: upsert, in: conn, logger: logger)
        if quota.limitsStorage, let owner = o.owner {
            let rows = try await conn.query("SELECT bytes, objects FROM tenant_usage WHERE owner = \(owner)", logger: logger).collect()
            if let row = rows.first {
                let (bytes, objects) = try row.decode((Int64, Int64).self)
                try quota.check(TenantUsage(bytes: bytes, objects: Int(objects)))
            }
        }
        return replaced
    }

    private static func write(_ o: ObjectRecord, upsert: Bool, in conn: PostgresConnection, logger: Logger) async throws -> ObjectRecord? {
        let name = o.path.string
        if let existing = try await lockedObject(bucket: o.bucket, name: name, in: conn, logger: logger) {
            guard upsert else { throw StorageError(.alreadyExists, "an object already exists at this path") }
            try await conn.query(
                """
                UPDATE objects SET owner = \(o.owner), blob_id = \(o.blobID.rawValue), size = \(o.size),
                content_type = \(o.contentType), sha256 = \(o.sha256), cache_control = \(o.cacheControl),
                metadata = \(o.metadata), generation = \(o.generation), updated_at = \(o.updatedAt.timeIntervalSince1970)
                WHERE bucket = \(o.bucket) AND name = \(name)
                """, logger: logger)
            return existing
        }
        let bucketExists = try await conn.query("SELECT 1 FROM buckets WHERE name = \(o.bucket)", logger: logger).collect()
        guard !bucketExists.isEmpty else { throw StorageError.notFound("bucket not found") }
        // A concurrent insert of the same name makes this a unique violation: `.alreadyExists`.
        try await conn.query(
            """
            INSERT INTO objects (\(unescaped: objectColumns)) VALUES (\(o.bucket), \(name), \(o.owner), \(o.blobID.rawValue),
            \(o.size), \(o.contentType), \(o.sha256), \(o.cacheControl), \(o.metadata), \(o.generation),
            \(o.createdAt.timeIntervalSince1970), \(o.updatedAt.timeIntervalSince1970))
            """, logger: logger)
        return nil
    }
}
