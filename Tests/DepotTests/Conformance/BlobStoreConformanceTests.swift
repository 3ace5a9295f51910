import DepotCore
import DepotLocal
import DepotS3
import DepotTesting
import Foundation
import NIOCore
import Testing

/// Every `BlobStore` implementation, for the one conformance suite.
enum BlobStoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, filesystem, cachedFilesystem, s3
    var testDescription: String { rawValue }

    /// Every kind whose backing server is there (S3 needs moto, see ``S3TestServer``).
    static let testable: [BlobStoreKind] = allCases.filter { $0 != .s3 || S3TestServer.enabled }

    func make() async throws -> (any BlobStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .s3:
            // Each store has a prefix of its own in the shared test bucket; moto forgets it all
            // when it stops.
            return (try await S3TestServer.makeStore(), {})
        case .memory:
            return (InMemoryBlobStore(), {})
        case .filesystem, .cachedFilesystem:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-blobs-\(UUID().uuidString)").path
            let store = try FileSystemBlobStore(directory: dir)
            let cleanup: @Sendable () -> Void = { try? FileManager.default.removeItem(atPath: dir) }
            return self == .filesystem ? (store, cleanup) : (CachedBlobStore(store, maxBlobSize: 8192, capacity: 20_000), cleanup)
        }
    }
}

@Suite("BlobStore conformance")
struct BlobStoreConformanceTests {
    @Test(arguments: BlobStoreKind.testable)
    func writeThenReadBack(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        for size in [0, 1, 4096, 1_000_003] {
            let bytes = Fixture.png(size)
            let id = try await writeBlob(store, bytes)
            #expect(try await readBlob(store, id) == bytes)
            #expect(try await store.size(of: id) == Int64(size))
        }
    }

    /// Past several background-sync stretches of the file store (32 MiB) and S3 parts (8 MiB),
    /// in uneven chunks; then an abort part-way through a large one leaves nothing.
    @Test(arguments: BlobStoreKind.testable)
    func largeBlobsRoundTripAndAbort(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let bytes = Fixture.png(70 * 1024 * 1024 + 123)
        let id = try await writeBlob(store, bytes, chunk: 700_001)
        #expect(try await store.size(of: id) == Int64(bytes.count))
        #expect(try await readBlob(store, id).sha256Hex == bytes.sha256Hex)
        #expect(try await readBlob(store, id, 67_108_860..<67_108_870) == Array(bytes[67_108_860..<67_108_870]))

        let aborted = BlobID.random()
        let w = try await store.makeWriter(for: aborted)
        for _ in 0..<50 { try await w.write(ByteBuffer(bytes: bytes[0..<1_000_000])) }
        await w.abort()
        #expect(try await store.size(of: aborted) == nil)
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)) == [id])
    }

    @Test(arguments: BlobStoreKind.testable)
    func rangedReads(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let bytes = Fixture.png(700_000)
        let id = try await writeBlob(store, bytes)
        #expect(try await readBlob(store, id, 0..<10) == Array(bytes[0..<10]))
        #expect(try await readBlob(store, id, 300_000..<650_001) == Array(bytes[300_000..<650_001]))
        #expect(try await readBlob(store, id, 699_990..<800_000) == Array(bytes[699_990...]))
    }

    @Test(arguments: BlobStoreKind.testable)
    func abortLeavesNothing(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let id = BlobID.random()
        let w = try await store.makeWriter(for: id)
        try await w.write(ByteBuffer(bytes: Fixture.png(600_000)))
        await w.abort()
        #expect(try await store.size(of: id) == nil)
        await #expect(throws: StorageError.self) { try await readBlob(store, id) }
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)).isEmpty)
    }

    @Test(arguments: BlobStoreKind.testable)
    func missingAndDelete(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        do {
            try await store.read(.random(), range: nil) { _ in }
            Issue.record("reading a missing blob must fail")
        } catch let e as StorageError {
            #expect(e.code == .notFound)
        }
        let id = try await writeBlob(store, Fixture.gif(10))
        try await store.delete(id)
        try await store.delete(id)  // idempotent
        #expect(try await store.size(of: id) == nil)
    }

    @Test(arguments: BlobStoreKind.testable)
    func repeatedReadsAndDeleteOfSmallBlobs(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let bytes = Fixture.png(3000)
        let id = try await writeBlob(store, bytes)
        for _ in 0..<3 { #expect(try await readBlob(store, id) == bytes) }
        #expect(try await readBlob(store, id, 10..<20) == Array(bytes[10..<20]))
        #expect(try await store.size(of: id) == 3000)
        try await store.delete(id)
        await #expect(throws: StorageError.self) { try await readBlob(store, id) }
    }

    @Test(arguments: BlobStoreKind.testable)
    func deletesManyAtOnce(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        var ids: [BlobID] = []
        for i in 0..<5 { ids.append(try await writeBlob(store, Fixture.png(100 + i))) }
        let kept = try await writeBlob(store, Fixture.png(50))
        try await store.delete(Array(ids[0..<3]) + [.random()])  // a missing one is no error
        for id in ids[0..<3] { #expect(try await store.size(of: id) == nil) }
        #expect(try await store.size(of: ids[3]) == 103)
        try await store.delete(Array(ids[3...]))
        try await store.delete([])
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)) == [kept])
        #expect(try await store.size(of: kept) == 50)
    }

    @Test(arguments: BlobStoreKind.testable)
    func listsOldBlobsForGC(_ kind: BlobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let a = try await writeBlob(store, Fixture.png(10))
        let b = try await writeBlob(store, Fixture.png(10))
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(-3600)).isEmpty)
        #expect(Set(try await store.blobs(writtenBefore: Date().addingTimeInterval(5))) == [a, b])
        try await store.ping()
    }
}
