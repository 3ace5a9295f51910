import DepotCore
import DepotLocal
import DepotS3
import DepotTesting
import Foundation
import NIOCore
import Testing

/// Every `ResumableStore` implementation, for the one conformance suite.
enum ResumableStoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case files, s3
    var testDescription: String { rawValue }

    static let testable: [ResumableStoreKind] = allCases.filter { $0 != .s3 || S3TestServer.enabled }

    /// A store, a way to open another instance over the same place (a restarted or another
    /// server), and what removes it.
    func make() async throws -> (any ResumableStore, another: @Sendable () throws -> any ResumableStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .s3:
            let blobs = try await S3TestServer.makeStore()
            return (S3ResumableStore(sharing: blobs), { S3ResumableStore(sharing: blobs) }, {})
        case .files:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-resumable-\(UUID().uuidString)").path
            return (
                try FileResumableStore(directory: dir), { try FileResumableStore(directory: dir) },
                { try? FileManager.default.removeItem(atPath: dir) }
            )
        }
    }
}

/// A body that sends `chunks` and then fails, as a client that goes away does.
struct FailingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [[UInt8]]
    struct Gone: Error {}
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [[UInt8]]
        mutating func next() async throws -> ByteBuffer? {
            guard !rest.isEmpty else { throw Gone() }
            return ByteBuffer(bytes: rest.removeFirst())
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks) }
}

@Suite("ResumableStore conformance")
struct ResumableStoreConformanceTests {
    static func upload(owner: String? = "alice", length: Int64, expires: Date = Date().addingTimeInterval(3600)) -> ResumableUpload {
        ResumableUpload(
            id: ResumableUpload.newID(), bucket: "b", path: "alice/x.bin", owner: owner, role: "authenticated", upsert: false,
            length: length, contentType: nil, cacheControl: nil, userMetadata: nil, createdAt: Date(), expiresAt: expires)
    }

    static func body(_ bytes: [UInt8], chunk: Int = 1000) -> AsyncStream<ByteBuffer> {
        AsyncStream { c in
            var at = 0
            while at < bytes.count {
                c.yield(ByteBuffer(bytes: bytes[at..<min(at + chunk, bytes.count)]))
                at += chunk
            }
            c.finish()
        }
    }

    static func read(_ store: any ResumableStore, _ id: String) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await store.read(id: id) { out += Array($0.readableBytesView) }
        return out
    }

    @Test(arguments: ResumableStoreKind.testable)
    func appendsFollowEachOtherAndSurviveAnotherInstance(_ kind: ResumableStoreKind) async throws {
        let (store, another, cleanup) = try await kind.make()
        defer { cleanup() }
        let bytes = Fixture.png(30_000)
        let upload = Self.upload(length: Int64(bytes.count))
        _ = try await store.reserve(upload, most: 0, now: Date())
        try await store.create(upload)
        #expect(try await store.upload(id: upload.id)?.offset == 0)
        await #expect(throws: StorageError.self) { try await store.create(upload) }

        var seen = 0
        let first = try await store.append(id: upload.id, at: 0, limit: 30_000, keepPartial: true, body: Self.body(Array(bytes[..<12_000]))) {
            seen += $0.readableBytes
        }
        #expect(first == 12_000 && seen == 12_000)
        // A wrong offset, past the length: refused, nothing kept.
        await #expect(throws: StorageError.self) {
            _ = try await store.append(id: upload.id, at: 0, limit: 30_000, keepPartial: true, body: Self.body([1])) { _ in }
        }
        await #expect(throws: StorageError.self) {
            _ = try await store.append(
                id: upload.id, at: 12_000, limit: 30_000, keepPartial: true, body: Self.body(Array(repeating: 0, count: 18_001))
            ) {
                _ in
            }
        }
        #expect(try await store.upload(id: upload.id)?.offset == 12_000)
        // What `observe` refuses is not kept either.
        await #expect(throws: StorageError.self) {
            _ = try await store.append(id: upload.id, at: 12_000, limit: 30_000, keepPartial: true, body: Self.body([1, 2, 3])) { _ in
                throw StorageError.invalidRequest("no")
            }
        }
        #expect(try await store.upload(id: upload.id)?.offset == 12_000)
        // A client that goes away keeps what arrived when it may, nothing when it may not.
        let cut = FailingBody(chunks: [Array(bytes[12_000..<15_000])])
        await #expect(throws: StorageError.self) {
            _ = try await store.append(id: upload.id, at: 12_000, limit: 30_000, keepPartial: false, body: cut) { _ in }
        }
        #expect(try await store.upload(id: upload.id)?.offset == 12_000)
        await #expect(throws: StorageError.self) {
            _ = try await store.append(id: upload.id, at: 12_000, limit: 30_000, keepPartial: true, body: cut) { _ in }
        }
        #expect(try await store.upload(id: upload.id)?.offset == 15_000)
        // Cut back to where an append began (a checksum that did not match).
        _ = try await store.append(id: upload.id, at: 15_000, limit: 30_000, keepPartial: true, body: Self.body([9, 9, 9])) { _ in }
        try await store.truncate(id: upload.id, to: 15_000)
        #expect(try await store.upload(id: upload.id)?.offset == 15_000)

        // Another instance over the same place (a restarted or another server) continues it.
        let other = try another()
        #expect(try await other.upload(id: upload.id)?.offset == 15_000)
        _ = try await other.append(id: upload.id, at: 15_000, limit: 30_000, keepPartial: true, body: Self.body(Array(bytes[15_000...]))) { _ in }
        #expect(try await Self.read(other, upload.id) == bytes)
        #expect(Array(try await other.head(id: upload.id, count: 16).readableBytesView) == Array(bytes[..<16]))

        try await other.finish(id: upload.id, at: Date())
        let finished = try await other.upload(id: upload.id)
        #expect(finished?.offset == 30_000 && finished?.upload.finishedAt != nil)
        #expect(await other.openUploads(owner: "alice", now: Date()).count == 0)
        try await other.delete(id: upload.id)
        #expect(try await other.upload(id: upload.id) == nil)
    }

    @Test(arguments: ResumableStoreKind.testable)
    func holdsCountOpenUploadsUntilTheyEnd(_ kind: ResumableStoreKind) async throws {
        let (store, _, cleanup) = try await kind.make()
        defer { cleanup() }
        let owner = "holder-\(UUID().uuidString.prefix(6))"
        let a = Self.upload(owner: owner, length: 100)
        let b = Self.upload(owner: owner, length: 200)
        #expect(try await store.reserve(a, most: 2, now: Date()) == 100)
        try await store.create(a)
        #expect(try await store.reserve(b, most: 2, now: Date()) == 300)
        try await store.create(b)
        let c = Self.upload(owner: owner, length: 1)
        await #expect(throws: StorageError.self) { _ = try await store.reserve(c, most: 2, now: Date()) }
        #expect(await store.openUploads(owner: owner, now: Date()) == (2, 300))
        #expect(await store.openUploads(owner: "someone-else", now: Date()).count == 0)
        // Released, deleted or expired: no longer held.
        try await store.delete(id: a.id)
        #expect(await store.openUploads(owner: owner, now: Date()) == (1, 200))
        #expect(await store.openUploads(owner: owner, now: Date().addingTimeInterval(7200)).count == 0)
        let d = Self.upload(owner: owner, length: 5)
        #expect(try await store.reserve(d, most: 2, now: Date()) == 205)
        await store.release(d)
        #expect(await store.openUploads(owner: owner, now: Date()) == (1, 200))
    }

    @Test(arguments: ResumableStoreKind.testable)
    func expiredUploadsAreListedForCollection(_ kind: ResumableStoreKind) async throws {
        let (store, _, cleanup) = try await kind.make()
        defer { cleanup() }
        let old = Self.upload(length: 10, expires: Date().addingTimeInterval(-10))
        let fresh = Self.upload(length: 10)
        for u in [old, fresh] {
            _ = try await store.reserve(u, most: 0, now: Date())
            try await store.create(u)
        }
        let expired = try await store.expired(before: Date())
        #expect(expired.contains(old.id) && !expired.contains(fresh.id))
    }
}

extension ResumableStoreConformanceTests {
    /// Two servers over one bucket: an append still running on one (a slow client) while another
    /// server takes the same offset and goes on. The first stored wins; the late one is refused
    /// and keeps nothing, so acknowledged bytes stay and the offset never goes back. (Files are
    /// one server's: a second process on the same data directory is not supported.)
    @Test(arguments: ResumableStoreKind.testable.filter { $0 == .s3 })
    func aLateAppendElsewhereNeverReplacesAcknowledgedBytes(_ kind: ResumableStoreKind) async throws {
        let (a, another, cleanup) = try await kind.make()
        defer { cleanup() }
        let b = try another()
        let upload = Self.upload(length: 30_000)
        _ = try await a.reserve(upload, most: 0, now: Date())
        try await a.create(upload)
        let (slow, feed) = AsyncStream<ByteBuffer>.makeStream()
        feed.yield(ByteBuffer(bytes: Array(repeating: 0xAA, count: 5_000)))
        let late = Task { try await a.append(id: upload.id, at: 0, limit: 30_000, keepPartial: true, body: slow) { _ in } }
        try await Task.sleep(for: .milliseconds(200))
        let fast = Array(repeating: UInt8(0xBB), count: 10_000)
        #expect(try await b.append(id: upload.id, at: 0, limit: 30_000, keepPartial: true, body: Self.body(fast)) { _ in } == 10_000)
        #expect(try await b.append(id: upload.id, at: 10_000, limit: 30_000, keepPartial: true, body: Self.body(fast)) { _ in } == 20_000)
        feed.yield(ByteBuffer(bytes: Array(repeating: 0xAA, count: 5_000)))
        feed.finish()
        await #expect(throws: StorageError.self) { _ = try await late.value }
        #expect(try await b.upload(id: upload.id)?.offset == 20_000)
        #expect(try await Self.read(b, upload.id) == fast + fast)
    }
}
