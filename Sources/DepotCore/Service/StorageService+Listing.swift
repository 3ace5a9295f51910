import Foundation

/// One entry of a folder view: a sub-folder (no object) or an object.
public struct FolderEntry: Sendable, Equatable {
    /// The name relative to the listed folder (v1) or the full name (v2; folders end in `/`).
    public var name: String
    public var object: ObjectRecord?
    /// A folder's time in a `list-v2` sorted by time: the earliest `created_at` inside it.
    public var folderTime: Date?

    public init(name: String, object: ObjectRecord?, folderTime: Date? = nil) {
        self.name = name
        self.object = object
        self.folderTime = folderTime
    }
}

/// Sort orders of a folder listing.
public enum FolderSort: String, Sendable {
    case name
    case createdAt = "created_at"
    case updatedAt = "updated_at"
    case lastAccessedAt = "last_accessed_at"
}

/// A page of a flat (v2) listing.
public struct ObjectListPage: Sendable {
    public var entries: [FolderEntry]
    /// Where the next page starts (an opaque position); nil on the last page.
    public var nextCursor: String?
    /// The same for a sorted listing (``StorageService/listObjectsSorted``).
    public var nextPosition: ListPosition?

    public init(entries: [FolderEntry], nextCursor: String?, nextPosition: ListPosition? = nil) {
        self.entries = entries
        self.nextCursor = nextCursor
        self.nextPosition = nextPosition
    }

    public var hasNext: Bool { nextCursor != nil || nextPosition != nil }
}

// MARK: - Listings (the Storage API)
//
// Both views scan the store's name order (bytewise) and skip a whole sub-folder with one query:
// the next name after `folder/` + U+10FFFF, a character no name may contain. The caller sees only
// names the access rules let it list (by default: all for `service_role`, `{sub}/…` for an
// `authenticated` caller, none for `anon`); a folder shows when a name inside it may be listed.

extension StorageService {
    /// Most entries a non-name-ordered folder listing sorts in memory.
    public static let maxSortedFolderEntries = 10_000

    /// One level below `prefix` (Supabase's `list`): sub-folders and objects, names relative to the
    /// folder, filtered by a case-insensitive `search` prefix. Name order is streamed, so a page
    /// costs about `offset + limit` rows; other orders sort the whole level (folders first).
    public func listFolder(
        as identity: Identity, bucket: String, prefix: String, search: String? = nil,
        limit: Int = 100, offset: Int = 0, sort: FolderSort = .name, descending: Bool = false
    ) async throws -> [FolderEntry] {
        guard (1...1500).contains(limit) else { throw StorageError.invalidRequest("limit must be 1 … 1500") }
        guard (0...1_000_000).contains(offset) else { throw StorageError.invalidRequest("offset must be 0 … 1000000") }
        try checkPrefix(prefix)
        let base = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        guard let record = try await metadata.bucket(named: bucket) else { return [] }
        let policy = policy(for: record)
        guard let scan = policy.listScan(identity, bucket: bucket, prefix: base) else { return [] }
        let streamed = sort == .name && !descending
        let cap = streamed ? offset + limit : Self.maxSortedFolderEntries + 1
        let listable = { (name: String) in policy.allows(identity, .list, bucket: bucket, name: name) }
        var entries = try await scanFolder(bucket: bucket, base: base, scan: scan, search: search?.lowercased(), max: cap, listable: listable)
        if !streamed {
            guard entries.count <= Self.maxSortedFolderEntries else {
                throw StorageError.invalidRequest(
                    "this folder has more than \(Self.maxSortedFolderEntries) entries: sort by name (ascending) to page through it")
            }
            // Folders first (by name), then objects by the column, either way round.
            entries.sort { a, b in Self.ordered(a, b, by: sort) }
            if descending, let firstObject = entries.firstIndex(where: { $0.object != nil }) {
                entries[firstObject...].reverse()
            }
        }
        return Array(entries.dropFirst(offset).prefix(limit))
    }

    private static func ordered(_ a: FolderEntry, _ b: FolderEntry, by sort: FolderSort) -> Bool {
        switch (a.object, b.object) {
        case (nil, nil): return a.name.bytesPrecede(b.name)
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?):
            let (l, r) = sort == .createdAt ? (x.createdAt, y.createdAt) : (x.updatedAt, y.updatedAt)
            return l == r ? a.name.bytesPrecede(b.name) : l < r
        }
    }

    /// Entries one level below `base`, from names starting with `scan` that are `listable`, in
    /// name order (a folder shows when a listable name is inside it).
    private func scanFolder(
        bucket: String, base: String, scan: String, search: String?, max: Int, listable: (String) -> Bool
    ) async throws -> [FolderEntry] {
        var out: [FolderEntry] = []
        var cursor: String? = nil
        scanning: while out.count < max {
            let page = try await metadata.listObjects(in: bucket, prefix: scan, after: cursor, limit: 1000)
            for record in page {
                // The store bounds the scan by bytes; checked again here, as bytes (defence in depth).
                guard record.path.string.hasBytePrefix(scan), listable(record.path.string) else {
                    cursor = record.path.string
                    continue
                }
                let rel = record.path.string.dropBytePrefix(base)
                if let slash = rel.utf8.firstIndex(of: UInt8(ascii: "/")) {
                    let folder = String(rel[..<slash])
                    if search.map({ folder.lowercased().hasPrefix($0) }) ?? true { out.append(FolderEntry(name: folder, object: nil)) }
                    cursor = base + folder + "/\u{10FFFF}"
                    continue scanning
                }
                cursor = record.path.string
                if search.map({ rel.lowercased().hasPrefix($0) }) ?? true {
                    out.append(FolderEntry(name: String(rel), object: record))
                    if out.count >= max { break scanning }
                }
            }
            if page.count < 1000 { break }
        }
        return out
    }

    /// Names starting with `prefix`, in name order, after `cursor` (Supabase's `list-v2`). With
    /// `delimiter`, names with a `/` after the prefix collapse into one folder entry each
    /// (`<prefix…>/`).
    public func listObjects(
        as identity: Identity, bucket: String, prefix: String, cursor: String? = nil, limit: Int = 1000, delimiter: Bool = false
    ) async throws -> ObjectListPage {
        guard (1...1000).contains(limit) else { throw StorageError.invalidRequest("limit must be 1 … 1000") }
        try checkPrefix(prefix)
        guard let record = try await metadata.bucket(named: bucket) else { return ObjectListPage(entries: [], nextCursor: nil) }
        let policy = policy(for: record)
        guard let scan = policy.listScan(identity, bucket: bucket, prefix: prefix) else {
            return ObjectListPage(entries: [], nextCursor: nil)
        }
        // A cursor is a name (or folder position) this listing returned: under the visible prefix.
        if let cursor, !cursor.hasBytePrefix(scan) {
            throw StorageError.invalidRequest("the cursor does not belong to this listing")
        }
        var entries: [FolderEntry] = []
        var after = cursor
        var positions: [String] = []
        scanning: while entries.count <= limit {
            let page = try await metadata.listObjects(in: bucket, prefix: scan, after: after, limit: min(1000, limit + 1))
            for record in page {
                let name = record.path.string
                // The store bounds the scan by bytes; checked again here, as bytes (defence in depth).
                guard name.hasBytePrefix(scan), policy.allows(identity, .list, bucket: bucket, name: name) else {
                    after = name
                    continue
                }
                if delimiter, let slash = name.dropBytePrefix(prefix).utf8.firstIndex(of: UInt8(ascii: "/")) {
                    let folder = String(name[...slash])
                    entries.append(FolderEntry(name: folder, object: nil))
                    after = folder + "\u{10FFFF}"
                    positions.append(after!)
                    if entries.count > limit { break scanning }
                    continue scanning
                }
                entries.append(FolderEntry(name: name, object: record))
                after = name
                positions.append(name)
                if entries.count > limit { break scanning }
            }
            if page.count < min(1000, limit + 1) { break }
        }
        guard entries.count > limit else { return ObjectListPage(entries: entries, nextCursor: nil) }
        return ObjectListPage(entries: Array(entries.prefix(limit)), nextCursor: positions[limit - 1])
    }

    func checkPrefix(_ prefix: String) throws(StorageError) {
        guard prefix.utf8.count <= ObjectPath.maxBytes, !prefix.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }),
            !prefix.unicodeScalars.contains("\u{10FFFF}")
        else { throw .invalidRequest("invalid prefix") }
    }
}
