import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Supabase's listings: `POST /object/list/{bucket}` (one folder level, names relative to it) and
/// `POST /object/list-v2/{bucket}` (full names, cursor pages, optional folder collapsing, in name
/// order or by time).
struct StorageListController: Sendable {
    let service: StorageService

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.post("/storage/v1/object/list/:bucket", use: list)
        router.post("/storage/v1/object/list-v2/:bucket", use: listV2)
    }

    @Sendable func list(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let bucket = try request.segment(after: "/storage/v1/object/list/")
        let body = try await SupabaseBody.read(request)
        guard let prefix = try body.string("prefix") else { throw StorageError.invalidRequest("body must have required property 'prefix'") }
        let (sort, descending) = try Self.sortBy(body, allowed: [.name, .createdAt, .updatedAt, .lastAccessedAt])
        let search = try body.string("search").flatMap { $0.isEmpty ? nil : $0 }
        let entries = try await service.listFolder(
            as: identity, bucket: bucket, prefix: prefix, search: search,
            limit: Int(try body.int("limit") ?? 100), offset: Int(try body.int("offset") ?? 0),
            sort: sort, descending: descending)
        return SupabaseJSON.response { json in
            json.beginArray()
            for e in entries { SupabaseJSON.entry(name: e.name, e.object, into: &json) }
            json.endArray()
        }
    }

    @Sendable func listV2(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let bucket = try request.segment(after: "/storage/v1/object/list-v2/")
        let body = try await SupabaseBody.read(request)
        let (column, descending) = try Self.sortBy(body, allowed: [.name, .createdAt, .updatedAt])
        var order = ListOrder(column: column, descending: descending)
        var position: ListPosition? = nil
        if let opaque = try body.string("cursor"), !opaque.isEmpty {
            let cursor = try ListCursor.decode(opaque)
            position = cursor.position
            // As upstream: the order a cursor was made in goes on, whatever the body says.
            if let o = cursor.order { order = o }
        }
        let prefix = try body.string("prefix") ?? ""
        let delimiter = try body.bool("with_delimiter") ?? false
        let limit = Int(try body.int("limit") ?? 1000)
        let page: ObjectListPage
        if order.streams {
            page = try await service.listObjects(
                as: identity, bucket: bucket, prefix: prefix, cursor: position?.name, limit: limit, delimiter: delimiter)
        } else {
            page = try await service.listObjectsSorted(
                as: identity, bucket: bucket, prefix: prefix, after: position, limit: limit, delimiter: delimiter, order: order)
        }
        // A folder level's entries have a `key`: their own segment at that level (upstream's
        // `split_part(name, '/', levels)`); a flat listing's objects have none.
        let level = prefix.isEmpty ? 1 : prefix.split(separator: "/", omittingEmptySubsequences: false).count
        func key(_ name: String) -> String? {
            guard delimiter else { return nil }
            let segments = (name.hasSuffix("/") ? String(name.dropLast()) : name).split(separator: "/", omittingEmptySubsequences: false)
            return segments.count >= level ? String(segments[level - 1]) : name
        }
        return SupabaseJSON.response { json in
            json.beginObject()
            json.key("hasNext"); json.bool(page.hasNext)
            if let next = page.nextPosition ?? page.nextCursor.map({ ListPosition(name: $0) }), let last = page.entries.last {
                json.key("nextCursor"); json.string(ListCursor(position: next, order: order).encoded())
                json.key("nextCursorKey"); json.string(last.name.hasSuffix("/") ? String(last.name.dropLast()) : last.name)
            }
            json.key("folders")
            json.beginArray()
            for e in page.entries where e.object == nil {
                json.beginObject()
                if let k = key(e.name) { json.key("key"); json.string(k) }
                json.key("name"); json.string(e.name)
                for k in ["id", "last_accessed_at", "metadata"] { json.key(k); json.null() }
                for k in ["updated_at", "created_at"] {
                    json.key(k)
                    if let t = e.folderTime, !order.streams, order.column != .name { json.string(HTTPDate.iso8601(t)) } else { json.null() }
                }
                json.endObject()
            }
            json.endArray()
            json.key("objects")
            json.beginArray()
            for e in page.entries where e.object != nil { SupabaseJSON.entry(name: e.name, e.object, key: key(e.name), into: &json) }
            json.endArray()
            json.endObject()
        }
    }

    /// `sortBy: {column, order}`; absent means name, ascending.
    static func sortBy(_ body: SupabaseBody, allowed: [FolderSort]) throws(StorageError) -> (FolderSort, Bool) {
        guard let sortBy = body.object("sortBy") else { return (.name, false) }
        let column = try sortBy.string("column") ?? "name"
        guard let sort = FolderSort(rawValue: column), allowed.contains(sort) else {
            throw .invalidRequest("sortBy.column must be one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        let order = (try sortBy.string("order") ?? "asc").lowercased()
        guard order == "asc" || order == "desc" else { throw .invalidRequest("sortBy.order must be asc or desc") }
        return (sort, order == "desc")
    }
}
