import AsyncHTTPClient
import Crypto
import DepotCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The object operations the stores share: streamed reads that resume, listings, small puts and
/// batched deletes.
extension S3Client {
    /// One entry of a listing.
    struct Listed: Sendable {
        var key: String
        var size: Int64
        var modified: Date?
    }

    /// Streams `key` (or `range` of it) to `consume`; a body cut off mid-way is asked for again from
    /// the next byte (reads are idempotent). A range starting at or past the end sends nothing.
    /// - Throws: `.notFound` for a missing object.
    func read(key: String, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        var offset = range?.lowerBound ?? 0
        var attempt = 1
        while true {
            var request = S3Request(method: .GET, key: key, accepting: [416], operation: "GetObject")
            if offset > 0 || range != nil {
                let end = range.map { String($0.upperBound - 1) } ?? ""
                request.headers.append(("range", "bytes=\(offset)-\(end)"))
            }
            let response = try await send(request)
            // 416: the range starts at or past the end; there is nothing to send.
            if response.status == .rangeNotSatisfiable { return }
            var iterator = response.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do { chunk = try await iterator.next() } catch {
                    // The connection broke mid-body: ask again for the rest.
                    let failure = S3Failure(status: 0, code: "", message: "\(error)", operation: "GetObject")
                    guard attempt < config.maxAttempts, !Task.isCancelled else { throw failure.storageError }
                    logger.warning("S3 \(failure) after \(offset) bytes; resuming")
                    try await Task.sleep(for: backoff(attempt: attempt))
                    attempt += 1
                    break
                }
                guard let chunk else { return }
                offset += Int64(chunk.readableBytes)
                try await consume(chunk)
            }
        }
    }

    /// A small object whole (records), or nil when there is none.
    func get(key: String, upTo limit: Int = 1 << 20) async throws -> ByteBuffer? {
        let response = try await send(S3Request(method: .GET, key: key, accepting: [404], operation: "GetObject"))
        if response.status == .notFound { return nil }
        do { return try await response.body.collect(upTo: limit) } catch {
            throw S3Failure(status: 0, code: "", message: "reading \(key): \(error)", operation: "GetObject").storageError
        }
    }

    /// Writes a small object whole (`PutObject`, durable once answered).
    func put(key: String, _ body: ByteBuffer) async throws {
        _ = try await send(S3Request(method: .PUT, key: key, body: body, operation: "PutObject"))
    }

    /// Deletes one object; a missing one is not an error.
    func delete(key: String) async throws {
        _ = try await send(S3Request(method: .DELETE, key: key, accepting: [404], operation: "DeleteObject"))
    }

    /// Every object whose key starts with `prefix`, in key order (`ListObjectsV2`, all pages).
    func list(prefix: String) async throws -> [Listed] {
        var found: [Listed] = []
        var token: String?
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if let token { query.append(("continuation-token", token)) }
            let response = try await send(S3Request(method: .GET, key: nil, query: query, operation: "ListObjectsV2"))
            let xml = try await xml(of: response, operation: "ListObjectsV2")
            for entry in xml.elements("Contents") {
                guard let key = entry.value("Key"), key.hasPrefix(prefix) else { continue }
                found.append(
                    Listed(
                        key: key, size: entry.value("Size").flatMap { Int64($0) } ?? 0,
                        modified: entry.value("LastModified").flatMap(S3Date.parse)))
            }
            token = xml.value("IsTruncated") == "true" ? xml.value("NextContinuationToken") : nil
        } while token != nil
        return found
    }

    /// `DeleteObjects`, 1,000 keys a request. Keys that are already gone count as deleted.
    func delete(keys: [String]) async throws {
        var start = 0
        while start < keys.count {
            let batch = keys[start..<min(start + 1000, keys.count)]
            start += batch.count
            let objects = batch.map { "<Object><Key>\(S3XML.escape($0))</Key></Object>" }.joined()
            let body = ByteBuffer(string: "<Delete><Quiet>true</Quiet>\(objects)</Delete>")
            // S3 requires a body checksum on DeleteObjects; Content-MD5 is the one every S3 knows.
            let md5 = Data(Insecure.MD5.hash(data: Array(body.readableBytesView))).base64EncodedString()
            let response = try await send(
                S3Request(
                    method: .POST, key: nil, query: [("delete", "")], headers: [("content-md5", md5)], body: body,
                    operation: "DeleteObjects"))
            let answer = try await response.body.collect(upTo: 16 * 1024 * 1024)
            // Quiet mode lists only the keys that failed.
            let failed = S3XML(Array(answer.readableBytesView)).elements("Error").filter { $0.value("Code") != "NoSuchKey" }
            if let first = failed.first {
                let failure = S3Failure(
                    status: 200, code: first.value("Code") ?? "", message: "\(failed.count) key(s) not deleted: \(first.value("Message") ?? "")",
                    operation: "DeleteObjects")
                throw StorageError(.internalError, "the object store refused to delete objects", cause: failure)
            }
        }
    }
}
