import DepotCore
import Foundation
import HTTPTypes
import Hummingbird

/// Folder operations as durable jobs: `POST /v1/folders/delete`, `POST /v1/folders/move`,
/// `DELETE /v1/assets?prefix=` (202 with the job), and `GET /v1/folders/jobs/{id}` (how far it got).
struct FolderController: Sendable {
    let service: StorageService

    func addRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.post("folders/delete", use: delete)
        group.post("folders/move", use: move)
        group.get("folders/jobs/:id", use: show)
        group.delete("assets", use: deleteAssets)
    }

    struct DeleteBody: Decodable {
        var bucket: String
        var prefix: String
    }

    struct MoveBody: Decodable {
        var bucket: String
        var prefix: String
        var destination: String
        var destinationBucket: String?
    }

    /// A folder job as the API shows it.
    struct JobView: Encodable {
        var id, operation, state, bucket, prefix, url: String
        var destinationBucket, destination: String?
        /// Objects deleted or moved so far; left alone (the rules do not allow it); refused.
        var done, skipped, failed: Int
        var errors: [FolderProgress.Failure]
        var attempts: Int
        var lastError: String?
        var createdAt, updatedAt: Date

        init(_ s: FolderJobStatus) {
            id = s.job.id
            operation = s.spec.operation.rawValue
            state = s.job.state.rawValue
            bucket = s.spec.buckets.joined(separator: ",")
            prefix = s.spec.prefix
            url = "/v1/folders/jobs/\(s.job.id)"
            destinationBucket = s.spec.destinationBucket
            destination = s.spec.destinationPrefix
            done = s.progress.done
            skipped = s.progress.skipped
            failed = s.progress.failed
            errors = s.progress.errors
            attempts = s.job.attempts
            lastError = s.job.lastError
            createdAt = s.job.createdAt
            updatedAt = s.job.updatedAt
        }
    }

    static func accepted(_ status: FolderJobStatus) throws -> Response {
        let body = try JSONResponse.encoder.encode(JobView(status))
        return JSONResponse.make(json: ByteBuffer(bytes: body), status: .accepted, headers: [.location: "/v1/folders/jobs/\(status.job.id)"])
    }

    @Sendable func delete(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(DeleteBody.self, limit: JSONBodyLimit.small)
        return try Self.accepted(try await service.queueFolderDelete(as: context.requireIdentity(), bucket: body.bucket, prefix: body.prefix))
    }

    @Sendable func move(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(MoveBody.self, limit: JSONBodyLimit.small)
        return try Self.accepted(
            try await service.queueFolderMove(
                as: context.requireIdentity(), bucket: body.bucket, prefix: body.prefix, destination: body.destination,
                destinationBucket: body.destinationBucket))
    }

    @Sendable func deleteAssets(_ request: Request, context: DepotRequestContext) async throws -> Response {
        guard let prefix = request.query("prefix") else {
            throw StorageError.invalidRequest("name the folder to delete: DELETE /v1/assets?prefix=FOLDER/ (relative to your user id)")
        }
        return try Self.accepted(try await service.queueAssetFolderDelete(as: context.requireIdentity(), prefix: prefix))
    }

    @Sendable func show(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        return try JSONResponse.make(JobView(try await service.folderJob(as: context.requireIdentity(), id: id)))
    }
}
