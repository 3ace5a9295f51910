import DepotCore
import Foundation
import PostgresNIO

/// The rendition index in PostgreSQL, shared by every server on the database.
extension PostgresMetadataStore: RenditionStore {
    static let renditionColumns = "key, source_blob, blob_id, size, content_type, created_at, used_at"

    static func rendition(_ row: PostgresRow) throws -> RenditionRecord {
        let (key, source, blob, size, type, created, used) = try row.decode((String, String, String, Int64, String, Double, Double).self)
        return RenditionRecord(
            key: key, sourceBlob: BlobID(rawValue: source), blobID: BlobID(rawValue: blob), size: size, contentType: type,
            createdAt: Date(timeIntervalSince1970: created), usedAt: Date(timeIntervalSince1970: used))
    }

    public func rendition(key: String) async throws -> RenditionRecord? {
        try await rows("SELECT \(unescaped: Self.renditionColumns) FROM renditions WHERE key = \(key)").first.map(Self.rendition)
    }

    public func putRendition(_ r: RenditionRecord) async throws -> RenditionRecord {
        try await transaction { [logger] conn in
            // A concurrent insert of the same key is waited for, then found by the SELECT.
            try await conn.query(
                """
                INSERT INTO renditions (\(unescaped: Self.renditionColumns)) VALUES (\(r.key), \(r.sourceBlob.rawValue), \(r.blobID.rawValue),
                    \(r.size), \(r.contentType), \(r.createdAt.timeIntervalSince1970), \(r.usedAt.timeIntervalSince1970))
                ON CONFLICT (key) DO NOTHING
                """, logger: logger)
            let rows = try await conn.query("SELECT \(unescaped: Self.renditionColumns) FROM renditions WHERE key = \(r.key)", logger: logger)
                .collect()
            guard let row = rows.first else { throw StorageError.internal("a rendition vanished in its own transaction") }
            return try Self.rendition(row)
        }
    }

    public func touchRenditions(_ keys: [String], at date: Date) async throws {
        if keys.isEmpty { return }
        _ = try await rows(
            "UPDATE renditions SET used_at = greatest(used_at, \(date.timeIntervalSince1970)) WHERE key = ANY(\(keys))")
    }

    public func pruneRenditions(maxBytes: Int64) async throws -> RenditionPrune {
        try await transaction { [logger] conn in
            // One pruner at a time over all servers (the key is fixed), so two never evict twice.
            try await conn.query("SELECT pg_advisory_xact_lock(7356005)", logger: logger)
            var prune = RenditionPrune()
            for try await (key, blob) in try await conn.query(
                """
                DELETE FROM renditions WHERE NOT EXISTS (SELECT 1 FROM objects WHERE objects.blob_id = renditions.source_blob)
                RETURNING key, blob_id
                """, logger: logger
            ).decode((String, String).self) {
                prune.stale.append(RenditionRef(key: key, blobID: BlobID(rawValue: blob)))
            }
            let totals = try await conn.query("SELECT coalesce(sum(size), 0)::BIGINT FROM renditions", logger: logger).collect()
            var total = try totals.first?.decode(Int64.self) ?? 0
            if total <= maxBytes { return prune }
            var keys: [String] = []
            for try await (key, blob, size) in try await conn.query(
                "SELECT key, blob_id, size FROM renditions ORDER BY used_at, key", logger: logger
            ).decode((String, String, Int64).self) {
                if total <= maxBytes { continue }
                keys.append(key)
                prune.evicted.append(RenditionRef(key: key, blobID: BlobID(rawValue: blob)))
                total -= size
            }
            try await conn.query("DELETE FROM renditions WHERE key = ANY(\(keys))", logger: logger)
            return prune
        }
    }

    public func renditionUsage() async throws -> (count: Int, bytes: Int64) {
        guard let row = try await rows("SELECT count(*), coalesce(sum(size), 0)::BIGINT FROM renditions").first else { return (0, 0) }
        let (count, bytes) = try row.decode((Int64, Int64).self)
        return (Int(count), bytes)
    }
}
