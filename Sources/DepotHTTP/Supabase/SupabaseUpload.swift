import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An upload as Supabase's clients send it: a `multipart/form-data` form (text fields
/// `cacheControl`, `metadata`, `contentType` before one file part, whatever its field name), or a
/// raw body with `content-type`, `cache-control` and `x-metadata` (base64 JSON) headers. The file
/// part is streamed, never collected.
struct SupabaseUpload {
    var write: ObjectWrite
    var body: any AsyncSequence<ByteBuffer, any Error>

    static let maxMetadataBytes = 1024 * 1024

    static func read(_ request: Request, upsert: Bool, maxFileSize: Int64) async throws -> SupabaseUpload {
        let declaration = try request.uploadDeclaration()
        var write = ObjectWrite(upsert: upsert)
        let contentType = declaration.contentType ?? ""
        guard contentType.lowercased().hasPrefix("multipart/form-data") else {
            write.contentType = declaration.contentType
            write.contentLength = declaration.contentLength
            write.cacheControl = request.headers[.cacheControl].flatMap(headerValue) ?? "no-cache"
            if let encoded = request.headers[.xMetadata], let data = Data(base64Encoded: encoded) {
                write.userMetadata = jsonObjectText(data)
            }
            return SupabaseUpload(write: write, body: request.body)
        }
        guard let boundary = MultipartReader<RequestBody.AsyncIterator>.boundary(from: contentType) else {
            throw StorageError.invalidRequest("multipart/form-data needs a boundary")
        }
        if let length = declaration.contentLength, length > maxFileSize + Int64(maxMetadataBytes) + 64 * 1024 {
            throw StorageError(.payloadTooLarge, "the object exceeded the maximum allowed size")
        }
        let reader = MultipartReader(boundary: boundary, body: request.body.makeAsyncIterator())
        var fields: [String: String] = [:]
        while let part = try await reader.nextPart() {
            if part.filename != nil || part.name == "file" || part.name == "" || part.name == nil {
                write.contentType = fields["contentType"] ?? part.contentType
                write.cacheControl = try fields["cacheControl"].map { try cacheControl(given: $0, in: "the form field") } ?? "no-cache"
                write.userMetadata = (fields["metadata"] ?? fields["userMetadata"]).flatMap { jsonObjectText(Data($0.utf8)) }
                return SupabaseUpload(write: write, body: PartBody(reader: reader))
            }
            let name = part.name ?? ""
            let limit = name == "metadata" || name == "userMetadata" ? maxMetadataBytes : 8 * 1024
            fields[name] = try await reader.fieldValue(limit: limit) {
                StorageError(.payloadTooLarge, "form field '\(name)' is larger than \(limit) bytes")
            }
        }
        throw StorageError.invalidRequest("the form has no file part")
    }

    /// The form's `cacheControl`: seconds become `max-age=<n>` (what clients send); another
    /// header-safe value is kept as given.
    static func cacheControl(field: String) -> String? {
        let t = field.trimmingCharacters(in: .whitespaces)
        if !t.isEmpty, t.utf8.allSatisfy({ (48...57).contains($0) }) { return "max-age=\(t)" }
        return headerValue(t)
    }

    /// A `cacheControl` given in a body (a form field, a copy's or a resumable upload's metadata):
    /// as ``cacheControl(field:)``, and one that cannot be a header value is refused rather than
    /// replaced by the default.
    /// - Throws: `.invalidRequest` naming `place`.
    static func cacheControl(given: String, in place: String) throws(StorageError) -> String {
        guard let value = cacheControl(field: given) else {
            throw StorageError.invalidRequest("\(place) 'cacheControl' must be seconds or a header value (printable ASCII, at most 256 bytes)")
        }
        return value
    }

    /// A value safe to send back as a header: printable ASCII, at most 256 bytes.
    static func headerValue(_ s: String) -> String? {
        guard !s.isEmpty, s.utf8.count <= 256, s.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { return nil }
        return s
    }

    /// `data` if it is a JSON object (user metadata); nil otherwise (ignored, as upstream does).
    static func jsonObjectText(_ data: Data) -> String? {
        guard data.count <= maxMetadataBytes, (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
