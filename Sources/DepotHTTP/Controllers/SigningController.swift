import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/v1/signed-urls` (batch signing) and `/v1/presigned-uploads` (phase one of a direct upload).
struct SigningController: Sendable {
    let service: StorageService

    func addRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.post("signed-urls", use: signMany)
        group.post("presigned-uploads", use: presign)
    }

    struct SignRequest: Decodable {
        var paths: [String]
        var expiresIn: FlexibleInt?
    }

    @Sendable func signMany(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(SignRequest.self, limit: JSONBodyLimit.batch)
        let batch = try await service.signedURLs(as: context.requireIdentity(), paths: body.paths, expiresIn: body.expiresIn?.value)
        return try Self.response(batch)
    }

    /// `{"urls": {path: url}, "expiresAt": "…", "errors": {path: {code, message}}}`, written by hand:
    /// `JSONEncoder` took a quarter of a 1,000-path request.
    static func response(_ batch: SignedURLBatch) throws -> Response {
        var json = JSONWriter(capacity: 64 + batch.urls.count * 256)
        json.beginObject()
        json.key("urls")
        json.beginObject()
        for (path, url) in batch.urls {
            json.key(path)
            json.string(url)
        }
        json.endObject()
        json.key("expiresAt")
        json.string(batch.expiresAt.formatted(.iso8601))
        json.key("errors")
        json.raw(try JSONResponse.encoder.encode(batch.errors.mapValues(\.detail)))
        json.endObject()
        return JSONResponse.make(json: json.buffer)
    }

    struct PresignRequest: Decodable {
        var jobId: String
        var contentType: String
        var size: FlexibleInt
        var checksum: String?
        var suffix: String?
        var visibility: String?
    }

    @Sendable func presign(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(PresignRequest.self)
        let upload = try await service.createPresignedUpload(
            as: context.requireIdentity(), jobId: body.jobId, contentType: body.contentType, size: body.size.value,
            checksum: body.checksum, suffix: body.suffix ?? "",
            visibility: Visibility.parse(body.visibility ?? "private"))
        return try JSONResponse.make(upload, status: .created)
    }
}

/// An integer that clients may also send as a numeric string (`"3600"`).
struct FlexibleInt: Decodable, Sendable {
    var value: Int64
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self) {
            value = n
        } else if let s = try? c.decode(String.self), let n = Int64(s) {
            value = n
        } else {
            throw StorageError.invalidRequest("expected an integer")
        }
    }
}
