import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Resumable uploads, TUS 1.0.0 with `creation`, `creation-with-upload`, `termination`,
/// `expiration` and `checksum` (sha1, sha256), at Supabase's `/storage/v1/upload/resumable`.
/// `Upload-Metadata` carries `bucketName`, `objectName`, `contentType`, `cacheControl` and
/// `metadata`; `x-upsert: true` replaces. A missing or bad token is answered in Supabase's JSON
/// envelope, as every Storage API route; what the upload itself refuses, with its real status and
/// a plain-text message (as upstream's TUS handler does), 460 for a checksum mismatch.
struct ResumableController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    static let path = "/storage/v1/upload/resumable"
    static let checksumMismatch = HTTPResponse.Status(code: 460, reasonPhrase: "Checksum Mismatch")

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.on("/storage/v1/upload/resumable", method: .options, use: options)
        router.on("/storage/v1/upload/resumable/{id}", method: .options, use: options)
        router.post("/storage/v1/upload/resumable", use: create)
        router.head("/storage/v1/upload/resumable/{id}", use: head)
        router.patch("/storage/v1/upload/resumable/{id}", use: patch)
        router.delete("/storage/v1/upload/resumable/{id}", use: terminate)
    }

    @Sendable func options(_ request: Request, context: DepotRequestContext) async throws -> Response {
        var headers: HTTPFields = [
            .tusResumable: TusHeaders.version, .tusVersion: TusHeaders.version, .tusExtension: TusHeaders.extensions,
            .tusChecksumAlgorithm: TusHeaders.checksumAlgorithms, .tusMaxSize: String(service.settings.maxFileSize),
        ]
        headers[.cacheControl] = "no-store"
        return Response(status: .noContent, headers: headers)
    }

    @Sendable func create(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try await tus(request) {
            guard request.headers[.uploadDeferLength] == nil else {
                throw StorageError.invalidRequest("Upload-Defer-Length is not supported: send Upload-Length")
            }
            guard let length = try TusHeaders.number(request.headers[.uploadLength], name: "Upload-Length") else {
                throw StorageError.invalidRequest("Upload-Length is required")
            }
            let meta = try TusHeaders.metadata(request.headers[.uploadMetadata])
            guard let bucket = meta["bucketName"], let name = meta["objectName"] else {
                throw StorageError.invalidRequest("Metadata header is required: Upload-Metadata needs bucketName and objectName")
            }
            let key = ObjectKey(bucket: bucket, path: try ObjectPath(name))
            var write = ObjectWrite(upsert: request.headers[.xUpsert] == "true")
            write.contentType = meta["contentType"].flatMap { $0.isEmpty ? nil : $0 }
            write.cacheControl = meta["cacheControl"].flatMap(SupabaseUpload.cacheControl(field:)) ?? "no-cache"
            if let text = meta["metadata"] {
                guard let json = SupabaseUpload.jsonObjectText(Data(text.utf8)) else {
                    throw StorageError.invalidRequest("the Upload-Metadata value 'metadata' must be a JSON object")
                }
                write.userMetadata = json
            }
            let upload = try await service.createResumable(as: identity, at: key, length: length, write)
            var headers = Self.headers(upload)
            headers[.location] = service.settings.publicBaseURL + Self.path + "/" + upload.id
            // creation-with-upload: the request's body is the first append.
            // creation-with-upload, or an empty upload (complete at once, as tusd does). A refused
            // first append ends the upload too: the client never learnt its URL.
            let withBytes = request.headers[.contentType] == "application/offset+octet-stream"
            if withBytes || length == 0 {
                let body: any AsyncSequence<ByteBuffer, any Error> =
                    withBytes ? request.body : AsyncThrowingStream<ByteBuffer, any Error> { $0.finish() }
                do {
                    let state = try await service.appendResumable(
                        as: identity, id: upload.id, offset: 0, checksum: try TusHeaders.checksum(request.headers[.uploadChecksum]),
                        body: body)
                    headers[.uploadOffset] = String(state.offset)
                    if let object = state.object { metrics.recordBytesIn(object.size) }
                } catch {
                    try? await service.terminateResumable(as: identity, id: upload.id)
                    throw error
                }
            }
            return Response(status: .created, headers: headers)
        }
    }

    @Sendable func head(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try await tus(request) {
            let state = try await service.resumableState(as: identity, id: try id(context))
            var headers = Self.headers(state.upload)
            headers[.uploadOffset] = String(state.offset)
            headers[.uploadLength] = String(state.upload.length)
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers)
        }
    }

    @Sendable func patch(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try await tus(request) {
            guard request.headers[.contentType] == "application/offset+octet-stream" else {
                throw StorageError(.unsupportedMediaType, "a PATCH must have Content-Type: application/offset+octet-stream")
            }
            guard let offset = try TusHeaders.number(request.headers[.uploadOffset], name: "Upload-Offset") else {
                throw StorageError.invalidRequest("Upload-Offset is required")
            }
            let state = try await service.appendResumable(
                as: identity, id: try id(context), offset: offset, checksum: try TusHeaders.checksum(request.headers[.uploadChecksum]),
                body: request.body)
            if let object = state.object { metrics.recordBytesIn(object.size) }
            var headers = Self.headers(state.upload)
            headers[.uploadOffset] = String(state.offset)
            return Response(status: .noContent, headers: headers)
        }
    }

    @Sendable func terminate(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try await tus(request) {
            try await service.terminateResumable(as: identity, id: try id(context))
            return Response(status: .noContent, headers: [.tusResumable: TusHeaders.version])
        }
    }

    private func id(_ context: DepotRequestContext) throws -> String {
        try context.parameters.require("id")
    }

    static func headers(_ upload: ResumableUpload) -> HTTPFields {
        [.tusResumable: TusHeaders.version, .uploadExpires: HTTPDate.format(upload.expiresAt)]
    }

    /// Checks `Tus-Resumable`, runs `body`, and answers what it refuses as TUS servers do: the
    /// real status and a plain-text message. Internal failures go to the error middleware.
    private func tus(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        guard request.headers[.tusResumable] == TusHeaders.version else {
            return Response(
                status: .preconditionFailed, headers: [.tusVersion: TusHeaders.version, .contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "Tus-Resumable: \(TusHeaders.version) is required\n")))
        }
        do {
            return try await body()
        } catch let e as StorageError where e.code != .internalError && e.code != .unavailable {
            let status = e.code == .checksumMismatch ? Self.checksumMismatch : e.code.httpStatus
            var headers: HTTPFields = [.tusResumable: TusHeaders.version, .contentType: "text/plain; charset=utf-8"]
            if let seconds = e.retryAfter { headers[.retryAfter] = String(seconds) }
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: e.message + "\n")))
        }
    }
}
