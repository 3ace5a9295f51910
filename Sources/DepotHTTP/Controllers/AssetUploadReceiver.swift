import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The server-side upload shared by `POST /v1/assets` and the seed's `POST /upload`: a raw body
/// with its Content-Type, or `multipart/form-data` with a `file` part (fields `jobId`, `suffix`,
/// `visibility` may come before or after it). The HTTP layer reads the request into a raw body or
/// a form (``MultipartUploadForm``); the core ingests, checks and commits
/// (``StorageService/uploadAsset(as:form:declaration:query:)``).
struct AssetUploadReceiver: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    func upload(_ request: Request, identity: Identity, jobId: String?, suffix: String?, visibility: String?) async throws -> Asset {
        let declaration = try request.uploadDeclaration()
        let contentType = declaration.contentType ?? ""
        let asset: Asset
        if contentType.lowercased().hasPrefix("multipart/") {
            guard let boundary = MultipartReader<RequestBody.AsyncIterator>.boundary(from: contentType) else {
                throw StorageError.invalidRequest("multipart/form-data needs a boundary")
            }
            let form = MultipartUploadForm(reader: MultipartReader(boundary: boundary, body: request.body.makeAsyncIterator()))
            asset = try await service.uploadAsset(
                as: identity, form: form, declaration: declaration,
                query: AssetUploadQuery(jobId: jobId, suffix: suffix, visibility: visibility))
        } else {
            guard let jobId else { throw StorageError.invalidRequest("jobId is required") }
            asset = try await service.uploadAsset(
                as: identity, jobId: jobId, suffix: suffix ?? "", visibility: Visibility.parse(visibility ?? "private"),
                declaration: declaration, body: request.body)
        }
        metrics.recordBytesIn(asset.fileSize)
        return asset
    }
}

/// A `multipart/form-data` body as the core's ``UploadForm``: the part named `file` (or the first
/// with a filename) is the file; every other part is a field of at most 1 KiB.
struct MultipartUploadForm<Base: AsyncIteratorProtocol>: UploadForm where Base.Element == ByteBuffer {
    let reader: MultipartReader<Base>
    private var sawFile = false

    init(reader: MultipartReader<Base>) {
        self.reader = reader
    }

    static var fieldLimit: Int { 1024 }

    /// The next file or named field; a part with neither a name nor a filename is skipped.
    mutating func nextPart() async throws -> UploadFormPart<PartBody<Base>>? {
        while let part = try await reader.nextPart() {
            if part.name == "file" || (part.filename != nil && !sawFile) {
                sawFile = true
                return .file(contentType: part.contentType, body: PartBody(reader: reader))
            }
            guard let name = part.name else { continue }
            let value = try await reader.fieldValue(limit: Self.fieldLimit) { .invalidRequest("form field '\(name)' is too long") }
            return .field(name: name, value: value)
        }
        return nil
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
