import AsyncHTTPClient
import Crypto
import DepotCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Blobs as objects in an S3-compatible bucket, one object per blob at `<prefix>/blobs/<id>`.
///
/// Small blobs are one `PutObject`; a blob that outgrows one part is sent as a multipart upload
/// (see ``S3BlobWriter``), so memory stays bounded whatever the size. Reads are ranged GETs
/// streamed to the caller; a read cut off mid-way resumes from the next byte. Nothing is visible
/// under a blob's key until `PutObject` or `CompleteMultipartUpload` succeeded, and S3 stores an
/// object durably before it answers either.
public final class S3BlobStore: BlobStore {
    let client: S3Client
    private let blobPrefix: String

    /// Validates the configuration; makes no request (see ``ping()`` and ``createBucketIfMissing()``).
    /// - Parameter httpClient: a client shared with other stores (made with
    ///   ``makeHTTPClient(maxConnections:)``; its owner shuts it down), or nil for one of its own.
    public init(configuration: S3Configuration, httpClient: HTTPClient? = nil, logger: Logger) throws(StorageError) {
        self.client = try S3Client(config: configuration, httpClient: httpClient, logger: logger)
        self.blobPrefix = configuration.normalizedPrefix + "blobs/"
    }

    /// An HTTP client with the settings S3 stores want, to share between stores.
    public static func makeHTTPClient(maxConnections: Int = 64) -> HTTPClient {
        S3Client.makeHTTPClient(maxConnections: maxConnections)
    }

    /// Closes the connections (unless the HTTP client was shared). Call once, after the last request.
    public func shutdown() async throws { try await client.shutdown() }

    func key(_ id: BlobID) -> String { blobPrefix + id.rawValue }

    public func makeWriter(for id: BlobID) async throws -> any BlobWriter {
        S3BlobWriter(client: client, key: key(id))
    }

    /// Larger than a part and at most `streamedPutMax` (by default: over https only): one
    /// streamed `PutObject`; otherwise
    /// buffered (one `PutObject`) or in parts, as a blob of unknown size.
    public func makeWriter(for id: BlobID, size: Int64) async throws -> any BlobWriter {
        guard size > client.config.partSize, size <= client.config.effectiveStreamedPutMax else { return try await makeWriter(for: id) }
        return S3StreamedWriter(client: client, key: key(id), size: size)
    }

    public func read(_ id: BlobID, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        if let range, range.isEmpty {
            guard try await size(of: id) != nil else { throw StorageError.notFound("blob not found") }
            return
        }
        try await client.read(key: key(id), range: range, into: consume)
    }

    public func size(of id: BlobID) async throws -> Int64? {
        let response = try await client.send(S3Request(method: .HEAD, key: key(id), accepting: [404], operation: "HeadObject"))
        if response.status == .notFound { return nil }
        guard let length = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw StorageError.internal("the object store sent no Content-Length for a blob")
        }
        return length
    }

    public func delete(_ id: BlobID) async throws {
        try await client.delete(key: key(id))
    }

    /// `DeleteObjects`, 1,000 keys a request. Keys that are already gone count as deleted.
    public func delete(_ ids: [BlobID]) async throws {
        try await client.delete(keys: ids.map(key))
    }

    /// Blobs last written before `date`; multipart uploads started before `date` and never
    /// finished (a crash mid-upload) are aborted on the way, so they stop costing storage.
    public func blobs(writtenBefore date: Date) async throws -> [BlobID] {
        try await abortUploads(startedBefore: date)
        return try await client.list(prefix: blobPrefix).compactMap { entry in
            guard let modified = entry.modified, modified < date else { return nil }
            let id = String(entry.key.dropFirst(blobPrefix.count))
            return BlobID.isWellFormed(id) ? BlobID(rawValue: id) : nil
        }
    }

    private func abortUploads(startedBefore date: Date) async throws {
        for upload in try await unfinishedUploads() where upload.started < date {
            try await S3BlobWriter.abortUpload(client: client, key: upload.key, uploadID: upload.uploadID)
        }
    }

    /// A multipart upload that was started and neither completed nor aborted.
    public struct UnfinishedUpload: Sendable {
        public var key: String
        public var uploadID: String
        public var started: Date
    }

    /// Multipart uploads of blobs in progress, or left behind by a crash (garbage collection
    /// aborts those older than its grace period).
    public func unfinishedUploads() async throws -> [UnfinishedUpload] {
        var found: [UnfinishedUpload] = []
        var markers: (key: String, upload: String)?
        repeat {
            var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", blobPrefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.upload)] }
            let response = try await client.send(S3Request(method: .GET, key: nil, query: query, operation: "ListMultipartUploads"))
            let xml = try await client.xml(of: response, operation: "ListMultipartUploads")
            for upload in xml.elements("Upload") {
                guard let key = upload.value("Key"), key.hasPrefix(blobPrefix), let id = upload.value("UploadId"),
                    let started = upload.value("Initiated").flatMap(S3Date.parse)
                else { continue }
                found.append(UnfinishedUpload(key: key, uploadID: id, started: started))
            }
            if xml.value("IsTruncated") == "true", let key = xml.value("NextKeyMarker"), let upload = xml.value("NextUploadIdMarker") {
                markers = (key, upload)
            } else {
                markers = nil
            }
        } while markers != nil
        return found
    }

    /// Checks that the bucket answers (`HeadBucket`).
    public func ping() async throws {
        _ = try await client.send(S3Request(method: .HEAD, key: nil, operation: "HeadBucket"))
    }

    /// Creates the bucket when it does not exist (for development set-ups and tests; production
    /// buckets are usually made with their provider's tools). Returns whether it was created.
    @discardableResult
    public func createBucketIfMissing() async throws -> Bool {
        let head = try await client.send(S3Request(method: .HEAD, key: nil, accepting: [404], operation: "HeadBucket"))
        guard head.status == .notFound else { return false }
        var request = S3Request(method: .PUT, key: nil, accepting: [409], operation: "CreateBucket")
        let region = client.config.region
        if region != "us-east-1" && region != "auto" {
            request.body = ByteBuffer(
                string: """
                    <CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\
                    <LocationConstraint>\(S3XML.escape(region))</LocationConstraint></CreateBucketConfiguration>
                    """)
        }
        let response = try await client.send(request)
        return response.status != .conflict
    }
}

extension S3BlobStore: BlobRedirecting {
    /// A presigned `GetObject` URL whose answer carries the object's type, disposition and cache
    /// policy (`response-content-type` …, signed with the URL). Lifetime: 1 s … 7 days.
    public func directURL(for id: BlobID, lifetime: Int, headers: DirectDownloadHeaders) -> String {
        var query: [(name: String, value: String)] = [("response-content-type", headers.contentType)]
        if let d = headers.contentDisposition { query.append(("response-content-disposition", d)) }
        if let c = headers.cacheControl { query.append(("response-cache-control", c)) }
        return client.presignedURL(method: .GET, key: key(id), query: query, expires: min(max(lifetime, 1), 604_800))
    }
}

/// ISO 8601 timestamps in S3's XML (`2026-11-29T03:16:19.000Z`, milliseconds optional).
enum S3Date {
    static func parse(_ s: String) -> Date? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = fractional.date(from: s) { return d }
        return ISO8601DateFormatter().date(from: s)
    }
}
