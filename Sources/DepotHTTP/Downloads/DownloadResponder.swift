import AsyncAlgorithms
import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Renders a ``DownloadDecision`` as the router's GET or HEAD response: the status, ETag,
/// Last-Modified, Content-Length, Content-Type, Content-Range, Cache-Control, Content-Disposition
/// (attachments: `download=`, and every type not served inline), and on every answer
/// `X-Content-Type-Options: nosniff`, `Content-Security-Policy: sandbox` and
/// `Cross-Origin-Resource-Policy: cross-origin`. What to answer is decided in the core
/// (``StorageService/decideDownload``); this only writes it.
///
/// The store is read before the head is sent: a blob that cannot be read at all (missing, a store
/// that fails) is a clean JSON error; one found damaged later cuts the body off.
struct DownloadResponder: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    /// The headers every answer about `object` carries (200, 206, 304, 416 and HEAD alike).
    static func headers(for object: ObjectRecord, cacheControl: String, disposition: String?) -> HTTPFields {
        var headers: HTTPFields = [:]
        headers.reserveCapacity(10)
        for (name, value) in versionFields(of: object) { headers.append(HTTPField(name: name, value: value)) }
        headers.append(HTTPField(name: .cacheControl, value: cacheControl))
        if let disposition { headers.append(HTTPField(name: .contentDisposition, value: disposition)) }
        return headers
    }

    /// The headers of every answer about an object that depend on its version alone (the
    /// pipeline keeps them per version: ``ObjectHeaderCache``).
    static func versionFields(of object: ObjectRecord) -> [(HTTPField.Name, String)] {
        [
            (.eTag, object.etag), (.lastModified, HTTPDate.format(object.updatedAt)), (.acceptRanges, "bytes"),
            // Every object answer: the browser must not guess a type, a document opened from it runs
            // with no origin and no scripts, and other sites may embed it (an app's images).
            (.xContentTypeOptions, "nosniff"), (.contentSecurityPolicy, "sandbox"), (.crossOriginResourcePolicy, "cross-origin"),
        ]
    }

    /// The response to a GET (`head == false`) or HEAD.
    func render(_ decision: DownloadDecision, head: Bool) async throws -> Response {
        let object = decision.object
        var headers = Self.headers(for: object, cacheControl: decision.cacheControl, disposition: decision.disposition)
        switch decision.outcome {
        case .notModified:
            return Response(status: .notModified, headers: headers)
        case .unsatisfiable:
            headers[.contentRange] = decision.contentRange
            return StorageError(.rangeNotSatisfiable, "the range is not satisfiable").response(extraHeaders: headers)
        case .whole, .partial:
            break
        }
        headers[.contentType] = object.contentType
        headers[.contentRange] = decision.contentRange
        let bytes = decision.bytes ?? 0..<object.size
        let length = bytes.upperBound - bytes.lowerBound
        headers[.contentLength] = String(length)
        let status = HTTPResponse.Status(code: decision.status)
        if head { return Response(status: status, headers: headers) }
        let range: Range<Int64>? = decision.outcome == .whole ? nil : bytes
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

extension DownloadConditions {
    /// The request's conditions: Range, If-None-Match, If-Modified-Since, If-Range, `download=`.
    init(_ request: Request) {
        self.init(
            range: request.headers[.range], ifNoneMatch: request.headers[.ifNoneMatch],
            ifModifiedSince: request.headers[.ifModifiedSince], ifRange: request.headers[.ifRange],
            download: request.uri.queryParameters["download"].map(String.init))
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let crossOriginResourcePolicy = HTTPField.Name("Cross-Origin-Resource-Policy")!
}
