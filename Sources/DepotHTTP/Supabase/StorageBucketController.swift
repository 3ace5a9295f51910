import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Supabase's bucket routes under `/storage/v1/bucket`: list, get, create, update, empty, delete.
/// Buckets are managed with the `service_role` key; other callers see none.
struct StorageBucketController: Sendable {
    let service: StorageService
    static let prefix = "/storage/v1/bucket/"

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.get("/storage/v1/bucket", use: list)
        router.post("/storage/v1/bucket", use: create)
        router.get("/storage/v1/bucket/:id", use: get)
        router.put("/storage/v1/bucket/:id", use: update)
        router.delete("/storage/v1/bucket/:id", use: delete)
        router.post("/storage/v1/bucket/:id/empty", use: empty)
        for path in ["/storage/v1/cdn", "/storage/v1/cdn/**"] { router.delete(RouterPath(stringLiteral: path), use: purgeCache) }
    }

    /// `DELETE /cdn[/{bucket}[/{path}]]` (storage-js `purgeCache`): Depot has no CDN to purge,
    /// so a `service_role` call succeeds as a no-op.
    @Sendable func purgeCache(_ request: Request, context: DepotRequestContext) async throws -> Response {
        guard try context.requireIdentity().role == .serviceRole else {
            throw SupabaseStatusError(status: .forbidden, error: .forbidden("Access denied: Invalid role"))
        }
        return SupabaseJSON.object(["message": "success", "statusCode": "200"])
    }

    @Sendable func list(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var buckets = try await service.listBuckets(as: identity)
        let q = request.uri.queryParameters
        if let search = q["search"].map({ String($0).lowercased() }), !search.isEmpty {
            buckets = buckets.filter { $0.name.lowercased().contains(search) }
        }
        let column = q["sortColumn"].map(String.init) ?? "name"
        guard ["id", "name", "created_at", "updated_at"].contains(column) else {
            throw StorageError.invalidRequest("sortColumn must be id, name, created_at or updated_at")
        }
        buckets.sort { a, b in
            switch column {
            case "created_at": return a.createdAt == b.createdAt ? a.name < b.name : a.createdAt < b.createdAt
            case "updated_at": return a.updatedAt == b.updatedAt ? a.name < b.name : a.updatedAt < b.updatedAt
            default: return a.name < b.name
            }
        }
        if q["sortOrder"].map({ $0.lowercased() == "desc" }) == true { buckets.reverse() }
        let offset = try Self.nonNegative(q["offset"], "offset") ?? 0
        let page = buckets.dropFirst(offset).prefix(try Self.nonNegative(q["limit"], "limit") ?? Int.max)
        return SupabaseJSON.response { json in
            json.beginArray()
            for b in page { SupabaseJSON.bucket(b, into: &json, withType: true) }
            json.endArray()
        }
    }

    private static func nonNegative(_ v: Substring?, _ name: String) throws(StorageError) -> Int? {
        guard let v else { return nil }
        guard let n = RequestNumber.parse(v).flatMap(Int.init(exactly:)) else {
            throw .invalidRequest("querystring/\(name) must be a non-negative integer")
        }
        return n
    }

    @Sendable func get(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let bucket = try await service.bucket(as: identity, named: try request.segment(after: Self.prefix))
        return SupabaseJSON.response { json in SupabaseJSON.bucket(bucket, into: &json, withType: true) }
    }

    @Sendable func create(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let body = try await SupabaseBody.read(request)
        let name = try body.requiredString("name")
        let id = try body.string("id") ?? name
        do {
            try await service.createBucket(
                as: identity, name: id, isPublic: try body.bool("public") ?? false,
                fileSizeLimit: try Self.sizeLimit(body, "file_size_limit") ?? nil,
                allowedMimeTypes: try body.strings("allowed_mime_types"), variants: try body.strings("variants"),
                rules: try Self.rules(body, bucket: id) ?? nil)
        } catch let e as StorageError where e.code == .alreadyExists {
            throw SupabaseStatusError(error: e, code: "BucketAlreadyExists")
        }
        return SupabaseJSON.object(["name": id])
    }

    @Sendable func update(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let name = try request.segment(after: Self.prefix)
        let body = try await SupabaseBody.read(request)
        guard body.has("public") || body.has("file_size_limit") || body.has("allowed_mime_types") || body.has("variants") || body.has("rules")
        else {
            throw StorageError.invalidRequest("body must have at least one of public, file_size_limit, allowed_mime_types, variants, rules")
        }
        let types: [String]?? = body.has("allowed_mime_types") ? .some(try body.strings("allowed_mime_types")) : nil
        try await service.updateBucket(
            as: identity, name: name, isPublic: try body.bool("public"),
            fileSizeLimit: try Self.sizeLimit(body, "file_size_limit"), allowedMimeTypes: types,
            variants: body.has("variants") ? try body.strings("variants") ?? [] : nil, rules: try Self.rules(body, bucket: name))
        return SupabaseJSON.message("Successfully updated")
    }

    /// `rules` (Depot's: a bucket's own access rules): absent → nil (unchanged); null or `[]` →
    /// .some(nil) (none); an array of rule objects → their checked text.
    static func rules(_ body: SupabaseBody, bucket: String) throws(StorageError) -> String?? {
        guard body.has("rules") else { return nil }
        if body.isNull("rules") { return .some(nil) }
        do { return .some(try AccessPolicy.checkedBucketRules(body.fields["rules"]!, bucket: bucket)) } catch {
            throw .invalidRequest("rules: \(error)")
        }
    }

    @Sendable func empty(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let name = try request.segment(after: Self.prefix)
        guard service.mayManageBucket(as: identity, named: name) else {
            throw SupabaseStatusError(status: .forbidden, error: .forbidden("Access denied: Invalid role"))
        }
        try await service.emptyBucket(as: identity, name: name)
        return SupabaseJSON.message("Successfully emptied")
    }

    @Sendable func delete(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        try await service.deleteBucket(as: identity, name: try request.segment(after: Self.prefix))
        return SupabaseJSON.message("Successfully deleted")
    }

    /// `file_size_limit`: absent → nil (unchanged); null → .some(nil) (no limit); an integer, a
    /// numeric string or `<decimal><b|kb|mb|gb>` (decimal units, 1 MB = 1 000 000 bytes).
    static func sizeLimit(_ body: SupabaseBody, _ key: String) throws(StorageError) -> Int64?? {
        guard body.has(key) else { return nil }
        if body.isNull(key) { return .some(nil) }
        if let s = try? body.string(key) {
            guard let n = parseSize(s) else { throw .invalidRequest("\(key) must be a size like 1048576, \"10mb\" or \"1.5GB\"") }
            return .some(n)
        }
        return .some(try body.int(key))
    }

    static func parseSize(_ raw: String) -> Int64? {
        let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("gb", 1e9), ("mb", 1e6), ("kb", 1e3), ("b", 1)]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            let number = s.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let v = Double(number), v >= 0, v * factor < 9e18 else { return nil }
            return Int64((v * factor).rounded(.down))
        }
        return RequestNumber.parse(s)
    }
}
