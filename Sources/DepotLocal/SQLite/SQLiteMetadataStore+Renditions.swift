import DepotCore
import Foundation
import GRDB

/// The rendition index in SQLite.
extension SQLiteMetadataStore: RenditionStore {
    static let renditionColumns = "key, source_blob, blob_id, size, content_type, created_at, used_at"

    static func rendition(_ row: Row) -> RenditionRecord {
        RenditionRecord(
            key: row["key"], sourceBlob: BlobID(rawValue: row["source_blob"]), blobID: BlobID(rawValue: row["blob_id"]),
            size: row["size"], contentType: row["content_type"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            usedAt: Date(timeIntervalSince1970: row["used_at"]))
    }

    public func rendition(key: String) async throws -> RenditionRecord? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.renditionColumns) FROM renditions WHERE key = ?"), arguments: [key])
                .map(Self.rendition)
        }
    }

    public func putRendition(_ r: RenditionRecord) async throws -> RenditionRecord {
        try await write { db in
            try db.cachedStatement(
                sql: "INSERT INTO renditions (\(Self.renditionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
            ).execute(arguments: [
                r.key, r.sourceBlob.rawValue, r.blobID.rawValue, r.size, r.contentType, r.createdAt.timeIntervalSince1970,
                r.usedAt.timeIntervalSince1970,
            ])
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT \(Self.renditionColumns) FROM renditions WHERE key = ?"), arguments: [r.key])
            else { throw StorageError.internal("a rendition vanished in its own transaction") }
            return Self.rendition(row)
        }
    }

    public func touchRenditions(_ keys: [String], at date: Date) async throws {
        if keys.isEmpty { return }
        try await write { db in
            for key in keys {
                try db.cachedStatement(sql: "UPDATE renditions SET used_at = max(used_at, ?) WHERE key = ?")
                    .execute(arguments: [date.timeIntervalSince1970, key])
            }
        }
    }

    public func pruneRenditions(maxBytes: Int64) async throws -> RenditionPrune {
        try await write { db in
            var prune = RenditionPrune()
            prune.stale = try Row.fetchAll(
                db,
                sql:
                    "DELETE FROM renditions WHERE NOT EXISTS (SELECT 1 FROM objects WHERE objects.blob_id = renditions.source_blob) RETURNING key, blob_id"
            ).map { RenditionRef(key: $0["key"], blobID: BlobID(rawValue: $0["blob_id"])) }
            var total = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM renditions") ?? 0
            if total <= maxBytes { return prune }
            let oldest = try Row.fetchCursor(db, sql: "SELECT key, blob_id, size FROM renditions ORDER BY used_at, key")
            while total > maxBytes, let row = try oldest.next() {
                prune.evicted.append(RenditionRef(key: row["key"], blobID: BlobID(rawValue: row["blob_id"])))
                total -= row["size"] as Int64
            }
            for r in prune.evicted { try db.cachedStatement(sql: "DELETE FROM renditions WHERE key = ?").execute(arguments: [r.key]) }
            return prune
        }
    }

    public func renditionUsage() async throws -> (count: Int, bytes: Int64) {
        try await read { db in
            let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(size), 0) FROM renditions")
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }
}
