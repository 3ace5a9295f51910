import DepotCore
import Foundation
import NIOCore

/// Blobs held in memory, for unit tests. Same contract as the durable stores.
public actor InMemoryBlobStore: BlobStore {
    var blobs: [BlobID: (bytes: ByteBuffer, writtenAt: Date)] = [:]
    var unfinished: Set<BlobID> = []
    let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = { Date() }) { self.now = now }

    public func makeWriter(for id: BlobID) async throws -> any BlobWriter {
        unfinished.insert(id)
        return Writer(store: self, id: id)
    }

    func store(_ id: BlobID, _ bytes: ByteBuffer) {
        unfinished.remove(id)
        blobs[id] = (bytes, now())
    }

    func drop(unfinished id: BlobID) { unfinished.remove(id) }

    func bytes(of id: BlobID) -> ByteBuffer? { blobs[id]?.bytes }

    public nonisolated func read(_ id: BlobID, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        guard let blob = await bytes(of: id) else { throw StorageError.notFound("blob not found") }
        let size = Int64(blob.readableBytes)
        let r = range ?? 0..<size
        let lower = Int(max(0, r.lowerBound)), upper = Int(min(size, r.upperBound))
        guard lower < upper else { return }
        var offset = lower
        while offset < upper {
            let n = min(64 * 1024, upper - offset)
            try await consume(blob.getSlice(at: blob.readerIndex + offset, length: n)!)
            offset += n
        }
    }

    public func size(of id: BlobID) async throws -> Int64? { blobs[id].map { Int64($0.bytes.readableBytes) } }
    public func delete(_ id: BlobID) async throws { blobs[id] = nil }

    public func blobs(writtenBefore date: Date) async throws -> [BlobID] {
        blobs.filter { $0.value.writtenAt < date }.map(\.key)
    }

    public func ping() async throws {}

    /// How many blobs are stored (finished), for tests.
    public var count: Int { blobs.count }
    /// How many writers are open and not yet finished or aborted, for tests.
    public var openWriters: Int { unfinished.count }

    final class Writer: BlobWriter, @unchecked Sendable {
        // @unchecked: owned by one task at a time (see `BlobWriter`).
        let store: InMemoryBlobStore
        let id: BlobID
        var buffer = ByteBuffer()
        init(store: InMemoryBlobStore, id: BlobID) {
            self.store = store
            self.id = id
        }
        func write(_ chunk: ByteBuffer) async throws {
            var c = chunk
            buffer.writeBuffer(&c)
        }
        func finish() async throws -> Int64 {
            await store.store(id, buffer)
            return Int64(buffer.readableBytes)
        }
        func abort() async { await store.drop(unfinished: id) }
    }
}
