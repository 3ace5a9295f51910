import AsyncHTTPClient
import Crypto
import DepotCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One request to the bucket: the operation's method, key (nil for the bucket itself), query,
/// extra headers to sign and the body (always in memory: parts are bounded).
struct S3Request {
    var method: HTTPMethod
    var key: String?
    var query: [(name: String, value: String)] = []
    var headers: [(name: String, value: String)] = []
    var body: ByteBuffer?
    /// A body streamed as it is written (`UNSIGNED-PAYLOAD`: its hash is not known before it is
    /// sent), of this many bytes; such a request is never repeated.
    var stream: (pipe: ChunkPipe, length: Int64)?
    /// Whether repeating the request after a failure is safe.
    var idempotent = true
    /// Statuses returned to the caller instead of thrown (e.g. 404 for HEAD, 416 for a range).
    var accepting: Set<UInt> = []
    /// Short name for logs, e.g. "UploadPart".
    var operation: String
}

/// An S3 error answer, kept as the `cause` of the ``StorageError`` it is translated to.
struct S3Failure: Error, CustomStringConvertible {
    var status: UInt
    var code: String
    var message: String
    var operation: String

    var description: String {
        status == 0 ? "\(operation): \(message)" : "\(operation): HTTP \(status) \(code): \(message)"
    }

    /// Worth repeating (for idempotent requests): server errors, throttling, timeouts.
    var isRetryable: Bool {
        status == 0 || [500, 502, 503, 504].contains(status) || ["SlowDown", "RequestTimeout", "InternalError"].contains(code)
    }

    /// The translation at the backend's boundary.
    var storageError: StorageError {
        if status == 404 { return StorageError(.notFound, "blob not found", cause: self) }
        if isRetryable { return StorageError(.unavailable, "the object store is not answering; try again shortly", cause: self) }
        return StorageError(.internalError, "the object store refused a request", cause: self)
    }
}

/// Signed requests to one bucket over async-http-client, with retries (exponential backoff, full
/// jitter) for idempotent operations. Every failure leaves as a ``StorageError``.
final class S3Client: Sendable {
    let http: HTTPClient
    let config: S3Configuration
    let signer: SigV4Signer
    let logger: Logger
    private let ownsHTTPClient: Bool
    private let scheme: String
    /// The Host header as sent and signed: port only when not the scheme's default.
    private let host: String

    /// `httpClient`: a client to share (its owner shuts it down); nil makes one for this store.
    init(config: S3Configuration, httpClient: HTTPClient?, logger: Logger) throws(StorageError) {
        try config.validate()
        let url = URLComponents(string: config.endpoint)!
        let scheme = url.scheme!
        var host = url.host!
        if let port = url.port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) { host += ":\(port)" }
        if !config.pathStyle { host = config.bucket + "." + host }
        self.scheme = scheme
        self.host = host
        self.config = config
        self.logger = logger
        self.signer = SigV4Signer(
            credentials: .init(accessKey: config.accessKey, secretKey: config.secretKey), region: config.region)
        self.ownsHTTPClient = httpClient == nil
        self.http = httpClient ?? Self.makeHTTPClient(maxConnections: config.maxConnections)
    }

    /// The HTTP client settings an S3 store wants: HTTP/1.1, no redirects, a refused connection
    /// failing at once (our retries, with backoff, decide what happens next), 60 s without a byte
    /// ends a request.
    public static func makeHTTPClient(maxConnections: Int = 64) -> HTTPClient {
        var pool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections)
        pool.retryConnectionEstablishment = false
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(5), read: .seconds(60)), connectionPool: pool)
        configuration.httpVersion = .http1Only
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async throws {
        if ownsHTTPClient { try await http.shutdown() }
    }

    /// The request's path, decoded: `/bucket/key` (path style) or `/key`.
    func path(for key: String?) -> String {
        let base = config.pathStyle ? "/" + config.bucket : ""
        guard let key else { return base.isEmpty ? "/" : base }
        return base + "/" + key
    }

    /// Sends a request, repeating it when that is safe and useful. Returns a 2xx answer or one
    /// whose status the request accepts; throws ``StorageError`` otherwise.
    func send(_ request: S3Request) async throws -> HTTPClientResponse {
        var attempt = 1
        while true {
            let failure: S3Failure
            do {
                let response = try await execute(request)
                if (200..<300).contains(response.status.code) || request.accepting.contains(response.status.code) {
                    return response
                }
                failure = await Self.failure(from: response, operation: request.operation, isHead: request.method == .HEAD)
            } catch let e as CancellationError {
                throw e
            } catch {
                failure = S3Failure(status: 0, code: "", message: "\(error)", operation: request.operation)
            }
            guard request.idempotent, request.stream == nil, failure.isRetryable, attempt < config.maxAttempts, !Task.isCancelled else {
                throw failure.storageError
            }
            let delay = backoff(attempt: attempt)
            logger.warning("S3 \(failure); attempt \(attempt + 1) of \(config.maxAttempts) in \(delay)")
            try await Task.sleep(for: delay)
            attempt += 1
        }
    }

    /// A presigned URL (query authentication, `UNSIGNED-PAYLOAD`) for one request on a key.
    func presignedURL(method: HTTPMethod, key: String, query: [(name: String, value: String)], expires: Int) -> String {
        let path = path(for: key)
        let signedQuery = signer.presignedQuery(
            method: method.rawValue, host: host, path: path, query: query, expires: expires, date: Date())
        return "\(scheme)://\(host)\(SigV4Signer.uriEncode(path, encodeSlash: false))?\(signedQuery)"
    }

    /// Random delay in `0 … min(maxBackoff, baseBackoff × 2^(attempt-1))` (full jitter).
    func backoff(attempt: Int) -> Duration {
        let cap = min(config.maxBackoff, config.baseBackoff * (1 << min(attempt - 1, 20)))
        let ms = cap.components.seconds * 1000 + cap.components.attoseconds / 1_000_000_000_000_000
        return .milliseconds(Int64.random(in: 0...max(ms, 1)))
    }

    private func execute(_ request: S3Request) async throws -> HTTPClientResponse {
        let path = path(for: request.key)
        var url = "\(scheme)://\(host)\(SigV4Signer.uriEncode(path, encodeSlash: false))"
        if !request.query.isEmpty { url += "?" + SigV4Signer.canonicalQuery(request.query) }
        var body = request.body
        if body == nil && (request.method == .POST || request.method == .PUT) { body = ByteBuffer() }
        let payloadHash = request.stream != nil ? SigV4Signer.unsignedPayload : body.map(Self.sha256Hex) ?? SigV4Signer.emptyPayloadHash
        let headers = signer.sign(
            method: request.method.rawValue, path: path, query: request.query,
            headers: [("host", host)] + request.headers, payloadHash: payloadHash, date: Date())
        var req = HTTPClientRequest(url: url)
        req.method = request.method
        for (name, value) in headers { req.headers.add(name: name, value: value) }
        if let stream = request.stream {
            req.body = .stream(stream.pipe, length: .known(stream.length))
        } else if let body {
            req.body = .bytes(body)
        }
        return try await http.execute(req, deadline: .distantFuture, logger: logger)
    }

    /// Reads an error answer's `<Code>` and `<Message>` (HEAD answers have no body: the status
    /// stands in for the code, as botocore does).
    private static func failure(from response: HTTPClientResponse, operation: String, isHead: Bool) async -> S3Failure {
        let status = response.status.code
        guard !isHead, let body = try? await response.body.collect(upTo: 64 * 1024) else {
            return S3Failure(status: status, code: String(status), message: response.status.reasonPhrase, operation: operation)
        }
        let xml = S3XML(Array(body.readableBytesView))
        return S3Failure(
            status: status, code: xml.value("Code") ?? String(status),
            message: xml.value("Message") ?? response.status.reasonPhrase, operation: operation)
    }

    /// Reads a small XML answer whole; an `<Error>` inside a 200 (CompleteMultipartUpload may do
    /// that) is a failure.
    func xml(of response: HTTPClientResponse, operation: String) async throws -> S3XML {
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: 16 * 1024 * 1024) } catch {
            throw S3Failure(status: 0, code: "", message: "reading the answer: \(error)", operation: operation).storageError
        }
        let xml = S3XML(Array(body.readableBytesView))
        if let error = xml.elements("Error").first {
            let failure = S3Failure(
                status: response.status.code, code: error.value("Code") ?? "", message: error.value("Message") ?? "",
                operation: operation)
            throw failure.status == 200 ? StorageError(.unavailable, "the object store failed a request", cause: failure) : failure.storageError
        }
        return xml
    }

    /// The SHA-256 of a request body (parts up to 8 MiB), by swift-crypto (BoringSSL, with the
    /// CPU's SHA extensions).
    static func sha256Hex(_ buffer: ByteBuffer) -> String {
        guard buffer.readableBytes > 0 else { return SigV4Signer.emptyPayloadHash }
        return buffer.withUnsafeReadableBytes { SHA256.hash(data: $0) }.hexString
    }
}
