import AsyncAlgorithms
import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Builds GET and HEAD responses for an object: single Range (206/416), ETag with If-None-Match
/// (304), If-Range, Last-Modified, Content-Length, Content-Type, Cache-Control,
/// `download=` → Content-Disposition, and on every answer `X-Content-Type-Options: nosniff`,
/// `Content-Security-Policy: sandbox` and `Cross-Origin-Resource-Policy: cross-origin`. Only
/// images (not SVG), audio, video and plain text are served inline (``MediaType/servesInline(_:)``);
/// everything else is an attachment.
///
/// The store is read before the head is sent: a blob that cannot be read at all (missing, a store
/// that fails) is a clean JSON error; one found damaged later cuts the body off.
struct DownloadResponder: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    /// The headers every answer about `object` carries (200, 206, 304 and HEAD alike).
    static func headers(for object: ObjectRecord, cacheControl: String, download: String?) -> HTTPFields {
        var headers: HTTPFields = [:]
        headers.reserveCapacity(10)
        headers[.eTag] = object.etag
        headers[.lastModified] = HTTPDate.format(object.updatedAt)
        headers[.cacheControl] = cacheControl
        headers[.acceptRanges] = "bytes"
        // Every object answer: the browser must not guess a type, a document opened from it runs
        // with no origin and no scripts, and other sites may embed it (an app's images).
        headers[.xContentTypeOptions] = "nosniff"
        headers[.contentSecurityPolicy] = "sandbox"
        headers[.crossOriginResourcePolicy] = "cross-origin"
        if download != nil || !MediaType.servesInline(object.contentType) {
            headers[.contentDisposition] = Self.disposition(download: download, path: object.path)
        }
        return headers
    }

    func respond(to request: Request, object: ObjectRecord, cacheControl: String) async throws -> Response {
        let download = try Self.downloadName(of: request)
        var headers = Self.headers(for: object, cacheControl: cacheControl, download: download)

        if let inm = request.headers[.ifNoneMatch] {
            if Self.etagMatches(inm, object.etag) { return Response(status: .notModified, headers: headers) }
        } else if let ims = request.headers[.ifModifiedSince].flatMap(HTTPDate.parse),
            object.updatedAt.timeIntervalSince1970.rounded(.down) <= ims.timeIntervalSince1970
        {
            // Only without If-None-Match (RFC 9110 §13.1.3), at the header's one-second precision.
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = object.contentType

        var range: Range<Int64>? = nil
        if let rangeHeader = request.headers[.range], ifRangeAllows(request, object) {
            switch ByteRangeRequest.parse(rangeHeader, size: object.size) {
            case .none: break
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(object.size)"
                return StorageError(.rangeNotSatisfiable, "the range is not satisfiable").response(extraHeaders: headers)
            case .range(let r):
                range = r
                headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(object.size)"
            }
        }
        let length = range.map { $0.upperBound - $0.lowerBound } ?? object.size
        headers[.contentLength] = String(length)
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        if request.method == .head {
            return Response(status: status, headers: headers)
        }
        return Response(status: status, headers: headers, body: try await body(of: object, range: range, length: length))
    }

    /// Bytes of small chunks (an object store's body parts, ~16–64 KiB) handed over together.
    static let handOverBytes = 256 * 1024

    /// The body, read by a task of its own a batch or two ahead of the socket. Its first chunk —
    /// or the store's error — is awaited here, before the head is sent; after it, small chunks go
    /// over in batches of ``handOverBytes`` (one hand-off per 16 KiB part cost S3 downloads a
    /// quarter more CPU), never copied.
    private func body(of object: ObjectRecord, range: Range<Int64>?, length: Int64) async throws -> ResponseBody {
        guard length > 0 else { return ResponseBody() }
        let chunks = AsyncThrowingChannel<[ByteBuffer], any Error>()
        let reader = ReadTask { [service] in
            do {
                var batch: [ByteBuffer] = []
                var batched = 0
                var first = true
                try await service.read(object, range: range) { chunk in
                    batch.append(chunk)
                    batched += chunk.readableBytes
                    guard first || batched >= Self.handOverBytes else { return }
                    first = false
                    let full = batch
                    (batch, batched) = ([], 0)
                    await chunks.send(full)
                    try Task.checkCancellation()
                }
                if !batch.isEmpty { await chunks.send(batch) }
                chunks.finish()
            } catch {
                chunks.fail(error)
            }
        }
        var start = chunks.makeAsyncIterator()
        guard let first = try await start.next() else { throw StorageError.internal("the blob store sent nothing") }
        let (service, metrics) = (self.service, self.metrics)
        return ResponseBody(contentLength: Int(length)) { writer in
            // The head has promised `length` bytes: a blob that turns out damaged (the read
            // checks it against the row) fails the response, which closes the connection, so that
            // the client sees a cut-off body instead of waiting for the rest.
            var sent = 0
            do {
                var next: [ByteBuffer]? = first
                var rest = chunks.makeAsyncIterator()
                while let batch = next {
                    for chunk in batch {
                        sent += chunk.readableBytes
                        metrics.recordBytesOut(chunk.readableBytes)
                        try await writer.write(chunk)
                    }
                    next = try await rest.next()
                }
            } catch {
                reader.cancel()
                // The store failing is the operator's business; a client going away is not.
                service.logger.log(
                    level: error is StorageError ? .error : .debug, "download cut off after \(sent) of \(length) bytes",
                    metadata: ["object": "\(object.bucket)/\(object.path)", "error": "\(error)"])
                throw error
            }
            try await writer.finish(nil)
        }
    }

    /// `If-Range` (RFC 9110 §13.1.5): the range applies when the header is the object's ETag, or
    /// a date equal to its `Last-Modified` once that is a strong validator — at least 60 s old
    /// (§8.8.2.2), so that no second replacement within the same second can share it; anything
    /// else gets the whole object.
    private func ifRangeAllows(_ request: Request, _ object: ObjectRecord) -> Bool {
        guard let ifRange = request.headers[.ifRange] else { return true }
        if ifRange == object.etag { return true }
        let modified = object.updatedAt.timeIntervalSince1970.rounded(.down)
        guard service.now().timeIntervalSince1970 - modified >= 60, let date = HTTPDate.parse(ifRange) else { return false }
        return date.timeIntervalSince1970 == modified
    }

    static func etagMatches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { item in
            let t = item.trimmingSpaces()
            return t == "*" || t == etag || t == "W/" + etag
        }
    }

    /// The `download=` name a request asks for: at most ``maxDownloadName`` bytes, else
    /// `.invalidRequest` (a header grows with it, and a long one would be dropped on the way).
    static func downloadName(of request: Request) throws(StorageError) -> String? {
        guard let name = request.uri.queryParameters["download"] else { return nil }
        guard name.utf8.count <= maxDownloadName else {
            throw .invalidRequest("the download name is longer than \(maxDownloadName) bytes")
        }
        return String(name)
    }

    static let maxDownloadName = 1024

    /// `attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266). Control and
    /// bidirectional characters are dropped from a `download=` name: it must not display as another.
    static func disposition(download: String?, path: ObjectPath) -> String {
        let raw = (download?.isEmpty == false ? download! : path.lastSegment)
        var name = ""
        name.unicodeScalars.append(contentsOf: raw.unicodeScalars.filter {
            $0.value >= 0x20 && $0.value != 0x7F && !ObjectPath.isBidiControl($0) && !ObjectPath.isHiddenControl($0)
        })
        let ascii = String(name.unicodeScalars.map { s -> Character in
            (s.isASCII && s.value >= 0x20 && s != "\"" && s != "\\" && s.value != 0x7F) ? Character(s) : "_"
        })
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(PercentEncoding.encodeSegment(name))"
    }
}

/// The task reading a download's blob; cancelled when the response drops it unsent (a client gone
/// before the body), so that it never waits forever to hand over a chunk.
private final class ReadTask: Sendable {
    private let task: Task<Void, Never>

    init(_ body: @escaping @Sendable () async -> Void) {
        task = Task(operation: body)
    }

    func cancel() { task.cancel() }

    deinit { task.cancel() }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let crossOriginResourcePolicy = HTTPField.Name("Cross-Origin-Resource-Policy")!
}
