import Foundation
import NIOCore

/// Immutable bytes, addressed by server-generated ``BlobID``s.
///
/// Lifecycle: the storage service asks for a ``BlobWriter`` for a fresh id, pushes the body into it
/// chunk by chunk while it counts, sniffs and hashes, then calls ``BlobWriter/finish()``. Only when
/// `finish()` returns are the bytes durable (fsynced, or acknowledged by the object store), and only
/// then does the service commit the metadata row that makes the object visible. A writer that is
/// not finished must be aborted: `abort()` removes whatever was written. A blob is never modified;
/// an overwrite writes a new blob and repoints the object.
///
/// Errors: implementations throw ``StorageError`` only — `.notFound` for a missing blob,
/// `.unavailable` when the backing store cannot be reached, `.internalError` otherwise.
public protocol BlobStore: Sendable {
    /// Starts writing a new blob. Nothing is visible under `id` until ``BlobWriter/finish()``.
    func makeWriter(for id: BlobID) async throws -> any BlobWriter

    /// ``makeWriter(for:)`` for a blob whose size is known before its first byte (the writer's
    /// user then writes exactly `size` bytes or aborts): a store may send it differently (S3: one
    /// streamed `PutObject` instead of parts). The default ignores the size.
    func makeWriter(for id: BlobID, size: Int64) async throws -> any BlobWriter

    /// Streams the blob's bytes (or the given byte range of them) into `consume`, in order.
    /// Chunks are bounded in size; memory stays flat whatever the blob's size.
    func read(
        _ id: BlobID, range: Range<Int64>?,
        into consume: (ByteBuffer) async throws -> Void
    ) async throws

    /// The blob's size, or `nil` when there is no such blob.
    func size(of id: BlobID) async throws -> Int64?

    /// Removes a blob. Removing a missing blob is not an error.
    func delete(_ id: BlobID) async throws

    /// Removes many blobs (garbage collection); missing ones are not an error. The default
    /// removes them one by one; stores with a batch operation (S3 `DeleteObjects`) use it.
    func delete(_ ids: [BlobID]) async throws

    /// Blobs last written before `date` (candidates for garbage collection), and unfinished
    /// writes older than `date` are removed on the way.
    func blobs(writtenBefore date: Date) async throws -> [BlobID]

    /// Checks that the store is reachable and writable.
    func ping() async throws
}

extension BlobStore {
    public func makeWriter(for id: BlobID, size: Int64) async throws -> any BlobWriter {
        try await makeWriter(for: id)
    }

    public func delete(_ ids: [BlobID]) async throws {
        for id in ids { try await delete(id) }
    }
}

/// One blob being written. Owned by one task at a time: calls are never concurrent.
public protocol BlobWriter: AnyObject, Sendable {
    /// Appends bytes.
    func write(_ chunk: ByteBuffer) async throws
    /// Makes the blob durable and visible under its id. Returns its size.
    @discardableResult func finish() async throws -> Int64
    /// Discards what was written. Never throws; safe to call after a failed `write` or `finish`.
    func abort() async
}
