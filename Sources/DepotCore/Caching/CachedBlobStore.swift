import Foundation
import NIOCore

/// A ``BlobStore`` decorator that keeps the bytes of small blobs in memory. Blobs are immutable, so
/// a cached blob is never stale, whatever other servers do; deletes drop it.
public struct CachedBlobStore: BlobStore {
    let base: any BlobStore
    /// `base` when its blobs are local files (cast once, not on every download).
    let baseFiles: (any BlobFiles)?
    let cache: BoundedCache<BlobID, ByteBuffer>
    let maxBlobSize: Int

    /// - Parameters:
    ///   - maxBlobSize: blobs up to this many bytes are cached.
    ///   - capacity: the most bytes kept in all.
    public init(_ base: any BlobStore, maxBlobSize: Int = 64 * 1024, capacity: Int = 64 * 1024 * 1024) {
        self.base = base
        self.baseFiles = base as? any BlobFiles
        // A gallery larger than the cache, scrolled through, keeps a stable part of it in memory
        // rather than evicting every blob before it is asked for again.
        self.cache = BoundedCache(capacity: capacity, admission: .secondMissWhenFull(window: 8192))
        self.maxBlobSize = maxBlobSize
    }

    public func read(_ id: BlobID, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        if let bytes = cache.value(for: id) {
            let size = Int64(bytes.readableBytes)
            let r = range ?? 0..<size
            let lower = Int(max(0, r.lowerBound)), upper = Int(min(size, r.upperBound))
            if lower < upper { try await consume(bytes.getSlice(at: bytes.readerIndex + lower, length: upper - lower)!) }
            return
        }
        guard range == nil else { return try await base.read(id, range: range, into: consume) }
        // Read through, keeping a copy while the blob stays small.
        let version = cache.version
        var copy: ByteBuffer? = ByteBuffer()
        try await base.read(id, range: nil) { chunk in
            if var c = copy {
                if c.readableBytes + chunk.readableBytes <= maxBlobSize {
                    var chunk = chunk
                    c.writeBuffer(&chunk)
                    copy = c
                } else {
                    copy = nil
                }
            }
            try await consume(chunk)
        }
        if let copy { cache.insert(copy, for: id, cost: Self.cost(of: copy), ifVersion: version) }
    }

    /// What a cached blob counts against the capacity: its buffer's storage (a power of two: a
    /// 5,000-byte blob takes 8 KiB; every buffer inserted owns its storage, no slice of a larger
    /// one), and at least 256 for the entry.
    static func cost(of bytes: ByteBuffer) -> Int { max(bytes.capacity, 256) }

    public func delete(_ id: BlobID) async throws {
        defer { cache.invalidate([id]) }
        try await base.delete(id)
    }

    public func delete(_ ids: [BlobID]) async throws {
        defer { cache.invalidate(ids) }
        try await base.delete(ids)
    }

    public func makeWriter(for id: BlobID) async throws -> any BlobWriter { try await base.makeWriter(for: id) }
    public func makeWriter(for id: BlobID, size: Int64) async throws -> any BlobWriter {
        try await base.makeWriter(for: id, size: size)
    }
    public func size(of id: BlobID) async throws -> Int64? {
        if let bytes = cache.value(for: id) { return Int64(bytes.readableBytes) }
        return try await base.size(of: id)
    }
    public func blobs(writtenBefore date: Date) async throws -> [BlobID] { try await base.blobs(writtenBefore: date) }
    public func ping() async throws { try await base.ping() }
}
