import DepotCore
@testable import DepotHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An upload's headers: `Request.uploadDeclaration()` (Content-Type, Content-Length,
/// `x-checksum-sha256`, `Content-Digest`), the declared type's `MediaType.normalize`, and the
/// Storage API's `SupabaseUpload.read` (raw body with `cache-control`/`x-metadata`, or a multipart
/// form), whose body is then read to its end; the TUS headers (`TusHeaders`).
/// Input: header lines `Name: value`, a blank line, the body.
enum UploadHeadersTarget {
    static func run(_ input: FuzzInput) {
        let (head, body) = input.headAndBody()
        var fields = HTTPFields()
        for line in head.split(separator: "\n") {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else { continue }
            fields.append(HTTPField(name: name, value: String(line[line.index(after: colon)...].trimmingSpaces())))
        }
        let request = Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "depot", path: "/storage/v1/object/b/alice/a.png", headerFields: fields),
            body: RequestBody(buffer: ByteBuffer(bytes: body)))

        if let declaration = try? request.uploadDeclaration() {
            if let n = declaration.contentLength { check(n >= 0, "negative Content-Length") }
            if let sha = declaration.sha256 {
                check(
                    sha.utf8.count == 64 && sha.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
                    "checksum \(sha.debugDescription)")
            }
            if let type = declaration.contentType { _ = try? MediaType.normalize(type) }
        }
        for digest in fields[values: HTTPField.Name("Content-Digest")!] {
            if let hex = try? Request.sha256(fromContentDigest: digest) { check(hex.utf8.count == 64, "digest \(hex)") }
        }

        // TUS: Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum.
        for name in ["Upload-Length", "Upload-Offset"] {
            if let n = try? TusHeaders.number(fields[HTTPField.Name(name)!], name: name) { check(n >= 0, "negative \(name)") }
        }
        if let meta = try? TusHeaders.metadata(fields[HTTPField.Name("Upload-Metadata")!]) {
            check(meta.count <= TusHeaders.maxMetadataPairs, "\(meta.count) metadata pairs")
            check(meta.keys.allSatisfy { !$0.isEmpty && !$0.contains(",") && !$0.contains(" ") }, "metadata key")
        }
        switch try? TusHeaders.checksum(fields[HTTPField.Name("Upload-Checksum")!]) {
        case .sha256(let d)?: check(d.count == 32, "sha256 digest of \(d.count) bytes")
        case .sha1(let d)?: check(d.count == 20, "sha1 digest of \(d.count) bytes")
        default: break
        }

        runToCompletion {
            guard let upload = try? await SupabaseUpload.read(request, upsert: false, maxFileSize: 1 << 20) else { return }
            if let c = upload.write.cacheControl { check(SupabaseUpload.headerValue(c) != nil, "cache-control \(c.debugDescription)") }
            var total = 0
            do {
                for try await chunk in upload.body {
                    total += chunk.readableBytes
                    check(total <= body.count, "the file part is longer than the body")
                }
            } catch {}
        }
    }
}
