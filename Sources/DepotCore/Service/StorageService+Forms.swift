import Foundation
import NIOCore

// MARK: - Form uploads (the Assets API's multipart/form-data)

/// One part of an upload form, as the HTTP layer reads it: a text field (already bounded), or the
/// file, whose bytes stream from the request and must be read before the next part is asked for.
public enum UploadFormPart<FileBody: AsyncSequence> where FileBody.Element == ByteBuffer {
    case field(name: String, value: String)
    case file(contentType: String?, body: FileBody)
}

/// The parts of an upload form, in the order the client sent them.
public protocol UploadForm {
    associatedtype FileBody: AsyncSequence where FileBody.Element == ByteBuffer
    mutating func nextPart() async throws -> UploadFormPart<FileBody>?
}

/// The Assets API's upload settings given in the URL's query; a form field of the same name is
/// used when the query has none.
public struct AssetUploadQuery: Sendable {
    public var jobId: String?
    public var suffix: String?
    public var visibility: String?
    public init(jobId: String? = nil, suffix: String? = nil, visibility: String? = nil) {
        self.jobId = jobId
        self.suffix = suffix
        self.visibility = visibility
    }
}

extension StorageService {
    /// Uploads an asset sent as a form: one file part (streamed into the blob store, checked like
    /// a raw upload) and the fields `jobId` (or `job_id`), `suffix`, `visibility`, before or after
    /// it. The blob is discarded on every error, the form's and the commit's alike.
    /// - Parameter declaration: the request's; its Content-Length bounds the whole form.
    /// - Throws: `.invalidRequest` (no or two file parts, no job id, a bad field), and what
    ///   ``uploadAsset(as:jobId:suffix:visibility:declaration:body:)`` throws.
    public func uploadAsset<Form: UploadForm>(
        as identity: Identity, form: Form, declaration: UploadDeclaration, query: AssetUploadQuery
    ) async throws -> Asset {
        _ = try identity.tenant()
        if let jobId = query.jobId { try Self.validate(jobId: jobId) }
        let limit = settings.maxFileSize
        if let length = declaration.contentLength, length > RequestNumber.saturatingAdd(limit, 64 * 1024) {
            throw StorageError(.payloadTooLarge, "the body is larger than \(limit) bytes")
        }
        var form = form
        var fields: [String: String] = [:]
        var blob: IngestedBlob? = nil
        do {
            while let part = try await form.nextPart() {
                switch part {
                case .field(let name, let value):
                    fields[name] = value
                case .file(let contentType, let body):
                    guard blob == nil else { throw StorageError.invalidRequest("only one file part is allowed") }
                    var d = declaration
                    d.contentType = contentType
                    d.contentLength = nil
                    let rules = assetRules(d)
                    try precheck(rules, contentLength: nil)
                    blob = try await ingest(body, rules: rules)
                }
            }
        } catch {
            if let blob { await discard(blob.id) }
            throw error
        }
        guard let blob else { throw StorageError.invalidRequest("the form has no 'file' part") }
        let jobId: String, visibility: Visibility
        do {
            guard let j = query.jobId ?? fields["jobId"] ?? fields["job_id"] else {
                throw StorageError.invalidRequest("jobId is required")
            }
            jobId = j
            visibility = try Visibility.parse(query.visibility ?? fields["visibility"] ?? "private")
        } catch {
            await discard(blob.id)
            throw error
        }
        // `commitAsset` validates the job id and suffix, and discards the blob when they are refused.
        return try await commitAsset(blob, as: identity, jobId: jobId, suffix: query.suffix ?? fields["suffix"] ?? "", visibility: visibility)
    }
}
