import AsyncHTTPClient
import DepotCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One blob on its way to S3.
///
/// Bytes gather in a buffer of at most one part. A blob that never fills a part is one
/// `PutObject` at `finish()`. Once a part is full, a multipart upload starts and each full part is
/// sent in the background, at most `partsInFlight` at a time (a writer that gets ahead waits), so
/// memory per upload is bounded by `partSize × (partsInFlight + 1)` whatever the blob's size.
/// `finish()` sends the last part and completes the upload; `abort()` cancels the parts in flight
/// and aborts the upload, so S3 keeps nothing.
final class S3BlobWriter: BlobWriter, @unchecked Sendable {
    // @unchecked: owned by one task at a time (see `BlobWriter`); the part tasks touch only their
    // own copies of what they need.
    struct Part: Sendable {
        var number: Int
        var etag: String
    }

    private let client: S3Client
    private let key: String
    private let partSize: Int
    private var buffer = ByteBuffer()
    private var size: Int64 = 0
    private var uploadID: String?
    private var nextPart = 1
    private var inFlight: [Task<(Part, ByteBuffer), any Error>] = []
    private var sent: [Part] = []
    /// Buffers of parts already sent, kept for the next parts: an upload allocates at most
    /// `partsInFlight + 1` part buffers, whatever its size.
    private var spare: [ByteBuffer] = []

    /// Whether the object may only be created, never replace one (`If-None-Match: *` on the
    /// request that makes it visible): `finish()` then throws `.conflict` when the key exists.
    private let createOnly: Bool

    init(client: S3Client, key: String, createOnly: Bool = false) {
        self.client = client
        self.key = key
        self.partSize = client.config.partSize
        self.createOnly = createOnly
    }

    private var condition: [(name: String, value: String)] { createOnly ? [("if-none-match", "*")] : [] }

    /// 412 to a create-only write: another writer made the key first.
    private func refuseTaken(_ status: UInt) throws {
        if status == 412 { throw StorageError(.conflict, "another request stored this piece first") }
    }

    func write(_ chunk: ByteBuffer) async throws {
        var chunk = chunk
        size += Int64(chunk.readableBytes)
        while chunk.readableBytes > 0 {
            var slice = chunk.readSlice(length: min(partSize - buffer.readableBytes, chunk.readableBytes))!
            buffer.writeBuffer(&slice)
            if buffer.readableBytes == partSize { try await sendPart() }
        }
    }

    func finish() async throws -> Int64 {
        guard let uploadID else {
            let response = try await client.send(
                S3Request(method: .PUT, key: key, headers: condition, body: buffer, accepting: createOnly ? [412] : [], operation: "PutObject"))
            try refuseTaken(response.status.code)
            buffer = ByteBuffer()
            return size
        }
        if buffer.readableBytes > 0 { try await sendPart() }
        for task in inFlight { sent.append(try await task.value.0) }
        inFlight = []
        spare = []
        try await complete(uploadID: uploadID)
        return size
    }

    func abort() async {
        for task in inFlight { task.cancel() }
        for task in inFlight { _ = try? await task.value }
        inFlight = []
        buffer = ByteBuffer()
        spare = []
        if let uploadID {
            do { try await Self.abortUpload(client: client, key: key, uploadID: uploadID) } catch {
                // Garbage collection aborts uploads left behind (`blobs(writtenBefore:)`).
                client.logger.warning("S3 upload \(key) not aborted (garbage collection will retry): \(error)")
            }
        }
    }

    static func abortUpload(client: S3Client, key: String, uploadID: String) async throws {
        _ = try await client.send(
            S3Request(
                method: .DELETE, key: key, query: [("uploadId", uploadID)], accepting: [404],
                operation: "AbortMultipartUpload"))
    }

    /// Hands the full buffer to a background task, after waiting for room.
    private func sendPart() async throws {
        let uploadID = try await startUpload()
        if inFlight.count >= client.config.partsInFlight {
            var (done, storage) = try await inFlight.removeFirst().value
            sent.append(done)
            storage.clear()
            spare.append(storage)
        }
        let part = buffer
        if let reused = spare.popLast() {
            buffer = reused
        } else {
            buffer = ByteBuffer()
            buffer.reserveCapacity(partSize)
        }
        let number = nextPart
        nextPart += 1
        let (client, key) = (self.client, self.key)
        inFlight.append(
            Task {
                let request = S3Request(
                    method: .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: part,
                    operation: "UploadPart")
                let response = try await client.send(request)
                guard let etag = response.headers.first(name: "etag") else {
                    throw StorageError.internal("the object store sent no ETag for part \(number)")
                }
                // The part's storage goes back to the writer for a later part (once the request
                // above released it, `clear()` reuses it without copying).
                return (Part(number: number, etag: etag), part)
            })
    }

    private func startUpload() async throws -> String {
        if let uploadID { return uploadID }
        // Retrying a create that did reach S3 leaves an empty upload behind; garbage collection
        // aborts it.
        let response = try await client.send(
            S3Request(method: .POST, key: key, query: [("uploads", "")], operation: "CreateMultipartUpload"))
        guard let id = try await client.xml(of: response, operation: "CreateMultipartUpload").value("UploadId") else {
            throw StorageError.internal("the object store sent no UploadId")
        }
        uploadID = id
        return id
    }

    private func complete(uploadID: String) async throws {
        let parts = sent.sorted { $0.number < $1.number }.map {
            "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(S3XML.escape($0.etag))</ETag></Part>"
        }
        let body = "<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>"
        let request = S3Request(
            method: .POST, key: key, query: [("uploadId", uploadID)], headers: condition, body: ByteBuffer(string: body),
            accepting: createOnly ? [404, 412] : [404], operation: "CompleteMultipartUpload")
        let response = try await client.send(request)
        if response.status.code == 412 {
            await abort()
            try refuseTaken(412)
        }
        if response.status == .notFound {
            // A retried Complete whose first attempt did succeed finds no upload any more: the
            // blob is there when its size is right.
            let head = try await client.send(S3Request(method: .HEAD, key: key, accepting: [404], operation: "HeadObject"))
            guard head.status == .ok, head.headers.first(name: "content-length") == String(size) else {
                throw StorageError.internal("the multipart upload of a blob vanished before it completed")
            }
            return
        }
        _ = try await client.xml(of: response, operation: "CompleteMultipartUpload")
    }
}
