import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The server-side upload shared by `POST /v1/assets` and the seed's `POST /upload`: a raw body
/// with its Content-Type, or `multipart/form-data` with a `file` part (fields `jobId`, `suffix`,
/// `visibility` may come before or after it). The file part streams straight into the blob store.
struct AssetUploadReceiver: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    func upload(_ request: Request, identity: Identity, jobId: String?, suffix: String?, visibility: String?) async throws -> Asset {
        let declaration = try request.uploadDeclaration()
        let contentType = declaration.contentType ?? ""
        let asset: Asset
        if contentType.lowercased().hasPrefix("multipart/") {
            asset = try await multipart(request, identity: identity, declaration: declaration, query: (jobId, suffix, visibility))
        } else {
            guard let jobId else { throw StorageError.invalidRequest("jobId is required") }
            asset = try await service.uploadAsset(
                as: identity, jobId: jobId, suffix: suffix ?? "", visibility: Self.visibility(visibility ?? "private"),
                declaration: declaration, body: request.body)
        }
        metrics.recordBytesIn(asset.fileSize)
        return asset
    }

    private func multipart(
        _ request: Request, identity: Identity, declaration: UploadDeclaration,
        query: (jobId: String?, suffix: String?, visibility: String?)
    ) async throws -> Asset {
        guard let boundary = MultipartReader<RequestBody.AsyncIterator>.boundary(from: declaration.contentType ?? "") else {
            throw StorageError.invalidRequest("multipart/form-data needs a boundary")
        }
        _ = try identity.tenant()
        if let jobId = query.jobId { try StorageService.validate(jobId: jobId) }
        let limit = service.settings.maxFileSize
        if let len = declaration.contentLength, len > limit + 64 * 1024 {
            throw StorageError(.payloadTooLarge, "the body is larger than \(limit) bytes")
        }
        let reader = MultipartReader(boundary: boundary, body: request.body.makeAsyncIterator())
        var fields: [String: String] = [:]
        var blob: IngestedBlob? = nil
        do {
            while let part = try await reader.nextPart() {
                if part.name == "file" || (part.filename != nil && blob == nil) {
                    guard blob == nil else { throw StorageError.invalidRequest("only one file part is allowed") }
                    var d = declaration
                    d.contentType = part.contentType
                    d.contentLength = nil
                    let rules = service.assetRules(d)
                    try service.precheck(rules, contentLength: nil)
                    blob = try await service.ingest(PartBody(reader: reader), rules: rules)
                } else if let name = part.name {
                    var value = ByteBuffer()
                    while var chunk = try await reader.nextBodyChunk() {
                        guard value.readableBytes + chunk.readableBytes <= 1024 else {
                            throw StorageError.invalidRequest("form field '\(name)' is too long")
                        }
                        value.writeBuffer(&chunk)
                    }
                    fields[name] = String(buffer: value)
                }
            }
        } catch {
            if let blob { await service.discard(blob.id) }
            throw error
        }
        guard let blob else { throw StorageError.invalidRequest("the form has no 'file' part") }
        let jobId: String, vis: Visibility
        do {
            guard let j = query.jobId ?? fields["jobId"] ?? fields["job_id"] else {
                throw StorageError.invalidRequest("jobId is required")
            }
            jobId = j
            vis = try Self.visibility(query.visibility ?? fields["visibility"] ?? "private")
        } catch {
            await service.discard(blob.id)
            throw error
        }
        // `commitAsset` validates the job id and suffix, and discards the blob when they are refused.
        return try await service.commitAsset(
            blob, as: identity, jobId: jobId, suffix: query.suffix ?? fields["suffix"] ?? "", visibility: vis)
    }

    static func visibility(_ s: String) throws -> Visibility {
        guard let v = Visibility(rawValue: s) else { throw StorageError.invalidRequest("visibility must be 'public' or 'private'") }
        return v
    }
}

/// The body of the current multipart part as an async sequence of chunks.
struct PartBody<Base: AsyncIteratorProtocol>: AsyncSequence where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let reader: MultipartReader<Base>

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: MultipartReader<Base>
        mutating func next() async throws -> ByteBuffer? { try await reader.nextBodyChunk() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader) }
}
