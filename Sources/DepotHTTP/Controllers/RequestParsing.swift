import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Shared request parsing: raw paths, JSON bodies with a size limit, upload declarations.
extension Request {
    /// The object path after a route prefix, parsed from the *raw* URI path so that encoded slashes
    /// and dot segments are seen (and refused) rather than normalised away.
    func objectPath(after prefix: String) throws -> ObjectPath {
        let raw = uri.path
        guard raw.hasBytePrefix(prefix) else { throw StorageError.invalidPath("the path is missing") }
        return try ObjectPath(percentEncoded: raw.dropBytePrefix(prefix))
    }

    /// `{bucket}/{path...}` after a route prefix.
    func bucketAndPath(after prefix: String) throws -> (String, ObjectPath) {
        let raw = uri.path
        guard raw.hasBytePrefix(prefix) else { throw StorageError.invalidPath("the path is missing") }
        return try Self.bucketAndPath(raw.dropBytePrefix(prefix))
    }

    /// Parses `{bucket}/{path...}` as it appears in a URL (percent-encoded).
    static func bucketAndPath(_ rest: Substring) throws(StorageError) -> (String, ObjectPath) {
        // The first `/` byte (a `/` character may be followed by a combining mark).
        guard let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")), let bucket = PercentEncoding.decode(Substring(rest.utf8[..<slash])) else {
            throw StorageError.invalidPath("expected /{bucket}/{path}")
        }
        try BucketRecord.validate(name: bucket)
        return (bucket, try ObjectPath(percentEncoded: Substring(rest.utf8[rest.utf8.index(after: slash)...])))
    }

    /// The whole body, at most `limit` bytes: `.payloadTooLarge` past it, `.invalidRequest` when
    /// it cannot be read (a transfer coding NIO's decoder refuses, a body cut off).
    func collectBody(upTo limit: Int) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw StorageError(.payloadTooLarge, "the body is larger than \(limit) bytes")
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.invalidRequest("the request body could not be read")
        }
    }

    /// Decodes a JSON body of at most `limit` bytes.
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int = JSONBodyLimit.small) async throws -> T {
        let buffer = try await collectBody(upTo: limit)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let e as DecodingError {
            throw StorageError.invalidRequest("invalid JSON body: \(Self.describe(e))")
        } catch {
            throw StorageError.invalidRequest("invalid JSON body")
        }
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted: return "not valid JSON"
        @unknown default: return "not valid JSON"
        }
    }

    /// Content-Type, Content-Length and a declared SHA-256 (`x-checksum-sha256: <hex>` or
    /// `Content-Digest: sha-256=:<base64>:`).
    func uploadDeclaration() throws -> UploadDeclaration {
        var d = UploadDeclaration()
        d.contentType = headers[.contentType]
        if let len = headers[.contentLength] {
            guard let n = RequestNumber.parse(len) else { throw StorageError.invalidRequest("invalid Content-Length") }
            d.contentLength = n
        }
        if let hex = headers[HTTPField.Name("x-checksum-sha256")!] {
            d.sha256 = hex.lowercased()
        } else if let digest = headers[HTTPField.Name("Content-Digest")!] {
            d.sha256 = try Self.sha256(fromContentDigest: digest)
        }
        if let sha = d.sha256, !(sha.utf8.count == 64 && sha.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })) {
            throw StorageError.invalidRequest("the checksum must be 64 hex digits (SHA-256)")
        }
        return d
    }

    static func sha256(fromContentDigest header: String) throws -> String {
        for item in header.split(separator: ",") {
            let t = item.trimmingSpaces()
            guard t.lowercased().hasPrefix("sha-256=:"), t.hasSuffix(":") else { continue }
            let b64 = t.dropFirst("sha-256=:".count).dropLast()
            guard let data = Data(base64Encoded: String(b64)), data.count == 32 else {
                throw StorageError.invalidRequest("invalid Content-Digest")
            }
            return data.hexString
        }
        throw StorageError.invalidRequest("Content-Digest must carry sha-256")
    }

    func query(_ name: String) -> String? { uri.queryParameters[name[...]].map(String.init) }
}

/// The largest JSON body each kind of request can legally need: anything longer is refused (413)
/// before it is parsed, so a body's cost in memory stays near its size.
enum JSONBodyLimit {
    /// Settings, one name or two (visibility, move, copy, sign one, bucket settings, list): 64 KiB.
    static let small = 64 * 1024
    /// A batch of up to 1,000 names of up to 1,024 bytes, each quoted and separated, plus the
    /// other members: 1,046,384 bytes (just under 1 MiB).
    static let batch = 1_000 * (ObjectPath.maxBytes + 6) + 16 * 1024
}

/// JSON responses with the project's encoder (RFC 3339 dates).
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        // Sorted keys: the same object reads the same every time (the encoder's own order changes
        // from one process to the next). The 1,000-URL batch answer is written by hand (JSONWriter).
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        make(json: ByteBuffer(bytes: try encoder.encode(value)), status: status)
    }

    /// The one way a JSON body leaves Depot: typed `application/json`, ended by a newline (so a
    /// terminal's prompt starts on a line of its own after `curl`).
    static func make(json: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: body(json)))
    }

    /// The `Content-Type` of every JSON body.
    static let contentType = "application/json; charset=utf-8"

    /// `json` as it is sent: ended by a newline (also for answers written outside the router).
    static func body(_ json: ByteBuffer) -> ByteBuffer {
        var body = json
        body.writeInteger(UInt8(ascii: "\n"))
        return body
    }
}
