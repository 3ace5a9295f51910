import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/v1/assets`: upload, put, get, flip, delete, list, batch delete, revoke.
struct AssetsController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    static let prefix = "/v1/assets/"

    func addRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.post("assets", use: upload)
        group.get("assets", use: list)
        group.post("assets/delete", use: deleteMany)
        group.post("assets/revoke", use: revoke)
        group.put("assets/**", use: put)
        group.get("assets/**", use: get)
        group.patch("assets/**", use: patch)
        group.delete("assets/**", use: delete)
        group.get("usage", use: usage)
    }

    /// `GET /v1/usage[?user=U]`: the caller's usage and limits (the service role: any user's).
    @Sendable func usage(_ request: Request, context: DepotRequestContext) async throws -> Response {
        try JSONResponse.make(try await service.usageReport(as: context.requireIdentity(), of: request.query("user")))
    }

    // MARK: Upload

    @Sendable func upload(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let asset = try await AssetUploadReceiver(service: service, metrics: metrics).upload(
            request, identity: context.requireIdentity(),
            jobId: request.query("jobId"), suffix: request.query("suffix"), visibility: request.query("visibility"))
        return try JSONResponse.make(asset, status: .created)
    }

    @Sendable func put(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let path = try request.objectPath(after: Self.prefix)
        let visibility = try request.query("visibility").map(Visibility.parse)
        let overwrite = request.headers[.ifNoneMatch]?.trimmingCharacters(in: .whitespaces) != "*"
        let (asset, replaced) = try await service.putAsset(
            as: context.requireIdentity(), path: path, visibility: visibility, overwrite: overwrite,
            declaration: request.uploadDeclaration(), body: request.body)
        metrics.recordBytesIn(asset.fileSize)
        return try JSONResponse.make(asset, status: replaced ? .ok : .created)
    }

    // MARK: Read and change

    @Sendable func get(_ request: Request, context: DepotRequestContext) async throws -> Response {
        try JSONResponse.make(try await service.asset(as: context.requireIdentity(), path: request.objectPath(after: Self.prefix)))
    }

    struct VisibilityChange: Decodable { var visibility: String }

    @Sendable func patch(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let path = try request.objectPath(after: Self.prefix)
        let change = try await request.decodeJSON(VisibilityChange.self)
        let asset = try await service.setVisibility(
            as: context.requireIdentity(), path: path, to: Visibility.parse(change.visibility))
        return try JSONResponse.make(asset)
    }

    @Sendable func delete(_ request: Request, context: DepotRequestContext) async throws -> Response {
        try await service.deleteAsset(as: context.requireIdentity(), path: request.objectPath(after: Self.prefix))
        return Response(status: .noContent)
    }

    // MARK: Lists and batches

    struct Page: Encodable {
        var items: [Asset]
        var nextCursor: String?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(items, forKey: .items)
            try c.encode(nextCursor, forKey: .nextCursor)  // explicit null on the last page
        }
        enum CodingKeys: String, CodingKey { case items, nextCursor }
    }

    @Sendable func list(_ request: Request, context: DepotRequestContext) async throws -> Response {
        var limit = 100
        if let l = request.query("limit") {
            guard let n = RequestNumber.parse(l).flatMap(Int.init(exactly:)) else {
                throw StorageError.invalidRequest("limit must be a number")
            }
            limit = n
        }
        let page = try await service.listAssets(
            as: context.requireIdentity(), prefix: request.query("prefix") ?? "", limit: limit, cursor: request.query("cursor"))
        return try JSONResponse.make(Page(items: page.items, nextCursor: page.nextCursor))
    }

    struct Paths: Decodable { var paths: [String] }

    struct DeleteResult: Encodable {
        var deleted: [String]
        var errors: [String: StorageError.ErrorBody.Detail]
    }

    @Sendable func deleteMany(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(Paths.self, limit: JSONBodyLimit.batch)
        let result = try await service.deleteAssets(as: context.requireIdentity(), paths: body.paths)
        return try JSONResponse.make(DeleteResult(deleted: result.deleted, errors: result.errors.mapValues(\.detail)))
    }

    struct RevokeResult: Encodable {
        var revoked: [String]
        var errors: [String: StorageError.ErrorBody.Detail]
    }

    struct RevokeBody: Decodable {
        var paths: [String]
        var bucket: String?
    }

    /// `POST /v1/assets/revoke {"paths":[…], "bucket"?}`: every earlier signed URL of these assets
    /// stops working — or, with `bucket`, of these objects of that bucket (any bucket, the Storage
    /// API's too; names as that API spells them).
    @Sendable func revoke(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(RevokeBody.self, limit: JSONBodyLimit.batch)
        guard (1...service.settings.maxBatch).contains(body.paths.count) else {
            throw StorageError.invalidRequest("paths must hold 1 … \(service.settings.maxBatch) items")
        }
        let identity = try context.requireIdentity()
        if let bucket = body.bucket { try await service.requireBucket(bucket) }
        var result = RevokeResult(revoked: [], errors: [:])
        for raw in body.paths {
            do {
                if let bucket = body.bucket {
                    _ = try await service.revokeObjectLinks(as: identity, at: ObjectKey(bucket: bucket, path: ObjectPath(raw)))
                } else {
                    _ = try await service.revokeLinks(as: identity, path: ObjectPath(raw))
                }
                result.revoked.append(raw)
            } catch let e as StorageError where e.code != .internalError && e.code != .unavailable {
                result.errors[raw] = e.detail
            }
        }
        return try JSONResponse.make(result)
    }
}
