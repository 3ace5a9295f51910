import DepotCore
import Foundation
import GRDB

// MARK: - Row ↔ record mapping

extension SQLiteMetadataStore {
    static let objectColumns = "bucket, name, owner, blob_id, size, content_type, sha256, cache_control, metadata, generation, created_at, updated_at"

    static func object(_ row: Row) throws -> ObjectRecord {
        ObjectRecord(
            bucket: row["bucket"], path: try ObjectPath(row["name"] as String), owner: row["owner"],
            blobID: BlobID(rawValue: row["blob_id"]), size: row["size"], contentType: row["content_type"],
            sha256: row["sha256"], cacheControl: row["cache_control"], metadata: row["metadata"],
            generation: row["generation"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func arguments(_ o: ObjectRecord) -> StatementArguments {
        [
            o.bucket, o.path.string, o.owner, o.blobID.rawValue, o.size, o.contentType, o.sha256, o.cacheControl,
            o.metadata, o.generation, o.createdAt.timeIntervalSince1970, o.updatedAt.timeIntervalSince1970,
        ]
    }

    static func bucket(_ row: Row) throws -> BucketRecord {
        let types: String? = row["allowed_mime_types"]
        return BucketRecord(
            name: row["name"], isPublic: row["public"], fileSizeLimit: row["file_size_limit"],
            allowedMimeTypes: try types.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) },
            owner: row["owner"], variants: (row["variants"] as String?).flatMap(VariantSize.list) ?? [], rules: row["rules"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func bucketArguments(_ b: BucketRecord) throws -> StatementArguments {
        let types = try b.allowedMimeTypes.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        return [
            b.name, b.isPublic, b.fileSizeLimit, types, b.owner, b.createdAt.timeIntervalSince1970, b.updatedAt.timeIntervalSince1970,
            VariantSize.text(b.variants), b.rules,
        ]
    }

    static func intent(_ row: Row) throws -> UploadIntent {
        guard let state = UploadIntent.State(rawValue: row["state"]) else {
            throw StorageError.internal("unknown intent state")
        }
        return UploadIntent(
            id: row["id"], bucket: row["bucket"], path: try ObjectPath(row["name"] as String), owner: row["owner"],
            contentType: row["content_type"], size: row["size"], sha256: row["sha256"], upsert: row["upsert"],
            state: state, expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    /// Inserts or replaces an object row inside a transaction (statements are compiled once per
    /// connection: compiling them per upload was ~10 % of a small upload's CPU). An overwrite keeps the row's
    /// creation time and takes the new generation (links to the old bytes die). Returns the replaced row.
    /// Inserts or replaces a row; then, when `quota` limits storage, refuses (rolling the write's
    /// savepoint back) what takes the owner past it — the triggers have updated `tenant_usage`.
    static func put(_ o: ObjectRecord, upsert: Bool, quota: TenantQuota = .unlimited, in db: Database) throws -> ObjectRecord? {
        let existing = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(objectColumns) FROM objects WHERE bucket = ? AND name = ?"),
            arguments: [o.bucket, o.path.string]
        ).map(object)
        if existing != nil {
            guard upsert else { throw StorageError(.alreadyExists, "an object already exists at this path") }
            let update = try db.cachedStatement(
                sql: """
                    UPDATE objects SET owner = ?, blob_id = ?, size = ?, content_type = ?, sha256 = ?,
                    cache_control = ?, metadata = ?, generation = ?, updated_at = ? WHERE bucket = ? AND name = ?
                    """)
            try update.execute(
                arguments: [
                    o.owner, o.blobID.rawValue, o.size, o.contentType, o.sha256, o.cacheControl, o.metadata,
                    o.generation, o.updatedAt.timeIntervalSince1970, o.bucket, o.path.string,
                ])
        } else {
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM buckets WHERE name = ?"), arguments: [o.bucket]) == true else {
                throw StorageError.notFound("bucket not found")
            }
            try db.cachedStatement(sql: "INSERT INTO objects (\(objectColumns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)").execute(arguments: arguments(o))
        }
        if quota.limitsStorage, let owner = o.owner,
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT bytes, objects FROM tenant_usage WHERE owner = ?"), arguments: [owner])
        {
            try quota.check(TenantUsage(bytes: row[0], objects: row[1]))
        }
        return existing
    }
}
