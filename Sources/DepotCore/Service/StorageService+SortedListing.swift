import Foundation

/// Where a `list-v2` page ends, and the next starts: the last entry's name (a folder's with its
/// `/`) and, in a time order, its time in whole milliseconds since the epoch (kept whole: a `Date`
/// of `….123` reads back as `….122999…`).
public struct ListPosition: Sendable, Equatable {
    public var name: String
    public var milliseconds: Int64?

    public init(name: String, milliseconds: Int64? = nil) {
        self.name = name
        self.milliseconds = milliseconds
    }
}

/// A `list-v2` order other than names ascending (which streams from the store).
public struct ListOrder: Sendable, Equatable {
    public var column: FolderSort
    public var descending: Bool

    public init(column: FolderSort = .name, descending: Bool = false) {
        self.column = column
        self.descending = descending
    }

    public var streams: Bool { column == .name && !descending }
}

extension StorageService {
    /// A `list-v2` page in `order` (names descending, or by `created_at` / `updated_at` either way
    /// round, names breaking ties in the same direction, as upstream sorts). The names under the
    /// prefix are read whole and sorted in memory — at most ``maxSortedFolderEntries`` of them
    /// (more: a clear error; page by name instead). With `delimiter`, a folder sorts by the
    /// earliest `created_at` of what it holds, in either time order (upstream's rule).
    public func listObjectsSorted(
        as identity: Identity, bucket: String, prefix: String, after cursor: ListPosition?, limit: Int, delimiter: Bool, order: ListOrder
    ) async throws -> ObjectListPage {
        guard (1...1000).contains(limit) else { throw StorageError.invalidRequest("limit must be 1 … 1000") }
        try checkPrefix(prefix)
        guard let record = try await metadata.bucket(named: bucket) else { return ObjectListPage(entries: [], nextCursor: nil) }
        let policy = policy(for: record)
        guard let scan = policy.listScan(identity, bucket: bucket, prefix: prefix) else {
            return ObjectListPage(entries: [], nextCursor: nil)
        }
        if let cursor, !cursor.name.hasBytePrefix(scan) {
            throw StorageError.invalidRequest("the cursor does not belong to this listing")
        }
        let records = try await allObjects(bucket: bucket, scan: scan).filter {
            policy.allows(identity, .list, bucket: bucket, name: $0.path.string)
        }
        // Each entry's place in the order, worked out once: its time in milliseconds (0 in name
        // order) and its name.
        let byName = order.column == .name
        func place(_ e: FolderEntry) -> (ms: Int64, name: String) {
            guard !byName else { return (0, e.name) }
            let date = e.object.map { order.column == .createdAt ? $0.createdAt : $0.updatedAt } ?? e.folderTime ?? .distantPast
            return (Self.milliseconds(date), e.name)
        }
        func precedes(_ a: (ms: Int64, name: String), _ b: (ms: Int64, name: String)) -> Bool {
            let (x, y) = order.descending ? (b, a) : (a, b)
            return x.ms == y.ms ? x.name.bytesPrecede(y.name) : x.ms < y.ms
        }
        var placed = Self.levelEntries(records, prefix: prefix, delimiter: delimiter).map { (place($0), $0) }
        placed.sort { precedes($0.0, $1.0) }
        if let cursor {
            let position = (ms: byName ? 0 : cursor.milliseconds ?? 0, name: cursor.name)
            placed.removeAll { !precedes(position, $0.0) }
        }
        guard placed.count > limit else { return ObjectListPage(entries: placed.map(\.1), nextCursor: nil) }
        let last = placed[limit - 1].0
        let next = ListPosition(name: last.name, milliseconds: byName ? nil : last.ms)
        return ObjectListPage(entries: placed.prefix(limit).map(\.1), nextCursor: nil, nextPosition: next)
    }

    /// Every object whose name starts with `scan`, in name order; refused past the sort cap.
    private func allObjects(bucket: String, scan: String) async throws -> [ObjectRecord] {
        var out: [ObjectRecord] = []
        var after: String? = nil
        while true {
            let page = try await metadata.listObjects(in: bucket, prefix: scan, after: after, limit: 1000)
            // The store bounds the scan by bytes; checked again here, as bytes (defence in depth).
            out += page.filter { $0.path.string.hasBytePrefix(scan) }
            guard out.count <= Self.maxSortedFolderEntries else {
                throw StorageError.invalidRequest(
                    "more than \(Self.maxSortedFolderEntries) objects under this prefix: sort by name (ascending) to page through them")
            }
            guard page.count == 1000, let last = page.last else { return out }
            after = last.path.string
        }
    }

    /// The entries of a listing: every object, or with `delimiter` the objects at the prefix's
    /// level and one folder (`…/`, its time the earliest `created_at` inside) per name with a `/`
    /// after the prefix.
    static func levelEntries(_ records: [ObjectRecord], prefix: String, delimiter: Bool) -> [FolderEntry] {
        guard delimiter else { return records.map { FolderEntry(name: $0.path.string, object: $0) } }
        var out: [FolderEntry] = []
        var folders: [String: Int] = [:]
        for record in records {
            let name = record.path.string
            guard let slash = name.dropBytePrefix(prefix).utf8.firstIndex(of: UInt8(ascii: "/")) else {
                out.append(FolderEntry(name: name, object: record))
                continue
            }
            let folder = String(name[...slash])
            if let i = folders[folder] {
                out[i].folderTime = min(out[i].folderTime ?? record.createdAt, record.createdAt)
            } else {
                folders[folder] = out.count
                out.append(FolderEntry(name: folder, object: nil, folderTime: record.createdAt))
            }
        }
        return out
    }

    /// A date to the millisecond, as upstream compares listing times (`date_trunc('milliseconds')`).
    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}
