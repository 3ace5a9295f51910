import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Supabase's listings: `POST /object/list/{bucket}` (one folder level, names relative to it) and
/// `POST /object/list-v2/{bucket}` (full names, cursor pages, optional folder collapsing).
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
        let (sort, descending) = try Self.sortBy(body, allowed: [.name])
        guard sort == .name, !descending else {
            throw StorageError.invalidRequest("list-v2 pages in name order (ascending) only")
        }
        var cursor: String? = nil
        if let opaque = try body.string("cursor"), !opaque.isEmpty {
            guard let data = Data(base64Encoded: opaque), let decoded = String(data: data, encoding: .utf8) else {
                throw StorageError.invalidRequest("invalid cursor")
            }
            cursor = decoded
        }
        let page = try await service.listObjects(
            as: identity, bucket: bucket, prefix: try body.string("prefix") ?? "", cursor: cursor,
            limit: Int(try body.int("limit") ?? 1000), delimiter: try body.bool("with_delimiter") ?? false)
        return SupabaseJSON.response { json in
            json.beginObject()
            json.key("hasNext"); json.bool(page.nextCursor != nil)
            if let next = page.nextCursor {
                json.key("nextCursor"); json.string(Data(next.utf8).base64EncodedString())
            }
            json.key("folders")
            json.beginArray()
            for e in page.entries where e.object == nil {
                json.beginObject()
                json.key("name"); json.string(e.name)
                json.key("key"); json.string(e.name)
                json.endObject()
            }
            json.endArray()
            json.key("objects")
            json.beginArray()
            for e in page.entries where e.object != nil { SupabaseJSON.entry(name: e.name, e.object, key: e.name, into: &json) }
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
