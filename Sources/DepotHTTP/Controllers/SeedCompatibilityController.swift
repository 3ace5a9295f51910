import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The seed backend's two routes, with its names and shapes (snake_case, 200), so a front end
/// written against the seed works unchanged. They behave exactly like their `/v1` counterparts.
struct SeedCompatibilityController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    func addRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.post("upload", use: upload)
        group.post("presigned-upload", use: presign)
    }

    struct UploadResponse: Encodable {
        var path: String
        var url: String
    }

    @Sendable func upload(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let asset = try await AssetUploadReceiver(service: service, metrics: metrics).upload(
            request, identity: context.requireIdentity(), jobId: request.query("job_id"),
            suffix: request.query("suffix"), visibility: request.query("visibility"))
        return try JSONResponse.make(UploadResponse(path: asset.path, url: asset.url))
    }

    struct PresignResponse: Encodable {
        var upload_url: String
        var path: String
    }

    @Sendable func presign(_ request: Request, context: DepotRequestContext) async throws -> Response {
        guard let type = request.query("content_type"), let sizeText = request.query("file_size"),
            let jobId = request.query("job_id")
        else { throw StorageError.invalidRequest("content_type, file_size and job_id are required") }
        guard let size = Int64(sizeText) else { throw StorageError.invalidRequest("file_size must be a number") }
        let upload = try await service.createPresignedUpload(
            as: context.requireIdentity(), jobId: jobId, contentType: type, size: size,
            suffix: request.query("suffix") ?? "")
        return try JSONResponse.make(PresignResponse(upload_url: upload.uploadUrl, path: upload.path))
    }
}
