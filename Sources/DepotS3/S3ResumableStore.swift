import DepotCore
import Foundation
import Logging
import NIOCore
import Synchronization

/// Resumable uploads staged in the S3 bucket of the blobs, so that every server over that bucket
/// continues any upload (a restarted one, or another behind the same load balancer). Under
/// `<prefix>/resumable/`:
///
/// - `uploads/<id>.json` — the record (a `PutObject`: durable and whole once answered);
/// - `bytes/<id>/<offset, 20 digits>` — one segment per append, the bytes it brought, written as
///   any blob (one `PutObject`, or a multipart upload past a part): the offset is where the
///   segments that follow each other from 0 end, so an acknowledged append survives any crash;
/// - `holds/<owner in hex>/<id>.<length>.<expiry>` — the owner's unfinished uploads, counted by a
///   listing (a hold is written before it is counted, so uploads created at once, on any server,
///   never pass the bound together).
///
/// One append at a time per upload on each server (`.conflict`); of appends at the same offset on
/// two servers at once (a client bug, or a retry elsewhere while the first still runs), the first
/// stored wins and the other is refused (`.conflict`, nothing of it kept): a piece is created only
/// when its key is free (`If-None-Match: *`; an S3 without conditional writes ignores it, and
/// the later piece replaces the earlier). A piece that does not follow the others is dropped by
/// the next append. Holds are written before they are counted, so creations at the same moment on
/// several servers may all be refused, never all admitted.
public final class S3ResumableStore: ResumableStore {
    let client: S3Client
    let root: String
    private let busy = Mutex<Set<String>>([])

    /// Stages in the bucket (and under the prefix) of `blobs`, over its connections.
    public init(sharing blobs: S3BlobStore) {
        self.client = blobs.client
        self.root = blobs.client.config.normalizedPrefix + "resumable/"
    }

    struct Segment {
        var key: String
        var start: Int64
        var size: Int64
    }

    func recordKey(_ id: String) throws(StorageError) -> String {
        guard ResumableUpload.isValidID(id) else { throw .notFound("no such upload") }
        return root + "uploads/" + id + ".json"
    }

    func segmentPrefix(_ id: String) -> String { root + "bytes/" + id + "/" }

    func segmentKey(_ id: String, at offset: Int64) -> String {
        let digits = String(offset)
        return segmentPrefix(id) + String(repeating: "0", count: max(0, 20 - digits.utf8.count)) + digits
    }

    func holdPrefix(_ owner: String?) -> String { root + "holds/" + (owner.map { Array($0.utf8).hexString } ?? "-") + "/" }

    func holdKey(_ upload: ResumableUpload) -> String {
        holdPrefix(upload.owner) + "\(upload.id).\(upload.length).\(Int64(upload.expiresAt.timeIntervalSince1970))"
    }

    /// The segments that follow each other from offset 0, where they end, and the keys of the
    /// others (an append that lost a race, or cut short by a crash before its segment existed).
    func segments(_ id: String) async throws -> (chained: [Segment], end: Int64, stray: [String]) {
        let prefix = segmentPrefix(id)
        var chained: [Segment] = []
        var stray: [String] = []
        var end: Int64 = 0
        var broken = false
        for entry in try await client.list(prefix: prefix) {
            if !broken, let start = Int64(entry.key.dropFirst(prefix.utf8.count)), start == end, entry.size > 0 {
                chained.append(Segment(key: entry.key, start: start, size: entry.size))
                end += entry.size
            } else {
                if let start = Int64(entry.key.dropFirst(prefix.utf8.count)), start > end { broken = true }
                stray.append(entry.key)
            }
        }
        return (chained, end, stray)
    }

    func record(_ id: String) async throws -> ResumableUpload? {
        guard let data = try await client.get(key: try recordKey(id)) else { return nil }
        guard let upload = try? JSONDecoder().decode(ResumableUpload.self, from: Data(data.readableBytesView)) else {
            throw StorageError.internal("the record of resumable upload \(id) cannot be read")
        }
        return upload
    }

    func write(_ upload: ResumableUpload) async throws {
        try await client.put(key: try recordKey(upload.id), ByteBuffer(bytes: try JSONEncoder().encode(upload)))
    }

    public func create(_ upload: ResumableUpload) async throws {
        let claimed = busy.withLock { $0.insert(upload.id).inserted }
        guard claimed, try await record(upload.id) == nil else {
            if claimed { _ = busy.withLock { $0.remove(upload.id) } }
            throw StorageError(.conflict, "an upload with this id is already under way")
        }
        defer { _ = busy.withLock { $0.remove(upload.id) } }
        try await write(upload)
    }

    public func upload(id: String) async throws -> (upload: ResumableUpload, offset: Int64)? {
        guard let upload = try await record(id) else { return nil }
        if upload.finishedAt != nil { return (upload, upload.length) }
        let end = try await segments(id).end
        // Finished meanwhile (record rewritten, then its pieces dropped): not an offset gone back.
        if end < upload.length, let again = try await record(id), again.finishedAt != nil { return (again, again.length) }
        return (upload, end)
    }

    public func append<Body: AsyncSequence>(
        id: String, at offset: Int64, limit: Int64, keepPartial: Bool, body: Body, observe: (ByteBuffer) async throws -> Void
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        _ = try recordKey(id)
        let claimed = busy.withLock { $0.insert(id).inserted }
        guard claimed else { throw StorageError(.conflict, "another request is appending to this upload; retry once it ends") }
        defer { _ = busy.withLock { $0.remove(id) } }
        let (_, current, stray) = try await segments(id)
        guard current == offset else {
            throw StorageError(
                .conflict,
                "Upload-Offset \(offset) is not the upload's offset (\(current) now): HEAD the upload for its offset, then continue from it")
        }
        // Segments that do not follow the others must never join them later.
        if !stray.isEmpty { try await client.delete(keys: stray) }
        // Created only if no other request (on any server) stored a piece at this offset first: an
        // acknowledged piece is never replaced (S3's conditional write, `If-None-Match: *`).
        let writer = S3BlobWriter(client: client, key: segmentKey(id, at: offset), createOnly: true)
        var end = offset
        do {
            var chunks = body.makeAsyncIterator()
            while true {
                let next: ByteBuffer?
                do { next = try await chunks.next() } catch {
                    // The client went away mid-body: what arrived is kept (durable) when it may be.
                    guard keepPartial, end > offset else {
                        throw StorageError.invalidRequest("the request body ended early; nothing of it is kept")
                    }
                    _ = try await writer.finish()
                    throw CutShort(offset: end)
                }
                guard let chunk = next else { break }
                end = RequestNumber.saturatingAdd(end, Int64(chunk.readableBytes))
                if end > limit { throw StorageError(.payloadTooLarge, "the upload is larger than its \(limit) bytes") }
                try await observe(chunk)
                try await writer.write(chunk)
            }
            if end > offset { _ = try await writer.finish() } else { await writer.abort() }
            return end
        } catch let cut as CutShort {
            throw StorageError.invalidRequest("the request body ended early; the upload's offset is now \(cut.offset)")
        } catch {
            await writer.abort()
            throw error
        }
    }

    private struct CutShort: Error {
        var offset: Int64
    }

    /// Only at a segment's start (where a refused append began): what follows is removed.
    public func truncate(id: String, to offset: Int64) async throws {
        let (chained, _, stray) = try await segments(id)
        let dropped = chained.filter { $0.start + $0.size > offset }
        if let first = dropped.first, first.start < offset {
            throw StorageError.internal("a resumable upload in S3 is cut at the start of an append only")
        }
        try await client.delete(keys: dropped.map(\.key) + stray)
    }

    public func localFile(id: String) -> String? { nil }

    public func head(id: String, count: Int) async throws -> ByteBuffer {
        var out = ByteBuffer()
        for segment in try await segments(id).chained where out.readableBytes < count {
            let want = Int64(count - out.readableBytes)
            try await client.read(key: segment.key, range: 0..<min(want, segment.size)) { chunk in
                var chunk = chunk
                out.writeBuffer(&chunk)
            }
        }
        return out
    }

    public func read(id: String, into consume: (ByteBuffer) async throws -> Void) async throws {
        for segment in try await segments(id).chained {
            try await client.read(key: segment.key, range: nil, into: consume)
        }
    }

    public func finish(id: String, at date: Date) async throws {
        guard var upload = try await record(id), upload.finishedAt == nil else { return }
        upload.finishedAt = date
        try await write(upload)
        await release(upload)
        try await client.delete(keys: try await client.list(prefix: segmentPrefix(id)).map(\.key))
    }

    public func delete(id: String) async throws {
        let upload = try await record(id)
        try await client.delete(keys: try await client.list(prefix: segmentPrefix(id)).map(\.key))
        try await client.delete(key: try recordKey(id))
        if let upload { await release(upload) }
    }

    public func expired(before date: Date) async throws -> [String] {
        var ids: [String] = []
        let prefix = root + "uploads/"
        for entry in try await client.list(prefix: prefix) where entry.key.hasSuffix(".json") {
            let id = String(entry.key.dropFirst(prefix.utf8.count).dropLast(5))
            guard ResumableUpload.isValidID(id) else { continue }
            // A record that cannot be read is of no use to anyone: collected too.
            let upload = try? await record(id)
            if upload.map({ $0.expiresAt < date }) ?? true { ids.append(id) }
        }
        return ids
    }

    /// The owner's unexpired holds: (id, declared bytes) from their keys.
    private func holds(_ owner: String?, now: Date) async throws -> [(id: String, length: Int64)] {
        let prefix = holdPrefix(owner)
        return try await client.list(prefix: prefix).compactMap { entry in
            let parts = entry.key.dropFirst(prefix.utf8.count).split(separator: ".")
            guard parts.count == 3, let length = Int64(parts[1]), let expiry = Int64(parts[2]), TimeInterval(expiry) > now.timeIntervalSince1970
            else { return nil }
            return (String(parts[0]), length)
        }
    }

    public func reserve(_ upload: ResumableUpload, most: Int, now: Date) async throws -> Int64 {
        try await client.put(key: holdKey(upload), ByteBuffer())
        do {
            let mine = try await holds(upload.owner, now: now)
            if most > 0, mine.count > most {
                throw StorageError(
                    .rateLimited,
                    "the user has \(mine.count - 1) resumable uploads open or being created (at most \(most)); finish or terminate some, or let them expire",
                    retryAfter: 60)
            }
            return mine.reduce(0) { RequestNumber.saturatingAdd($0, $1.length) }
        } catch {
            await release(upload)
            throw error
        }
    }

    public func release(_ upload: ResumableUpload) async {
        do { try await client.delete(key: holdKey(upload)) } catch {
            client.logger.warning("could not release the hold of resumable upload \(upload.id); it ends when the upload expires: \(error)")
        }
    }

    public func openUploads(owner: String?, now: Date) async -> (count: Int, bytes: Int64) {
        guard let mine = try? await holds(owner, now: now) else { return (0, 0) }
        return (mine.count, mine.reduce(0) { RequestNumber.saturatingAdd($0, $1.length) })
    }
}
