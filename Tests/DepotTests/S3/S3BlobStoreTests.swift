import DepotCore
import DepotS3
import Foundation
import HTTPTypes
import Logging
import NIOCore
import Testing

/// What the S3 blob store does beyond the conformance suite: multipart uploads, their abort and
/// clean-up, retries and the translation of failures — all against moto with signature checking on.
@Suite("S3 blob store", .enabled(if: S3TestServer.enabled, Comment(rawValue: S3TestServer.skipNote)))
struct S3BlobStoreTests {
    static let mib = 1024 * 1024

    @Test func largeBlobsGoMultipartAndReadBack() async throws {
        let store = try await S3TestServer.makeStore {
            $0.partSize = 5 * Self.mib
            $0.partsInFlight = 2
        }
        // 4 full parts and a short last one, written in odd-sized chunks.
        let bytes = Fixture.png(21 * Self.mib + 12345)
        let id = try await writeBlob(store, bytes, chunk: 777_777)
        #expect(try await store.size(of: id) == Int64(bytes.count))
        #expect(try await readBlob(store, id) == bytes)
        // A range across the boundary of parts 1 and 2.
        let lo = Int64(5 * Self.mib - 10)
        #expect(try await readBlob(store, id, lo..<(lo + 20)) == Array(bytes[Int(lo)..<Int(lo + 20)]))
        #expect(try await store.unfinishedUploads().isEmpty)
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)) == [id])
    }

    /// A blob whose size is known in advance goes as one streamed `PutObject`: no multipart
    /// upload while it is written, the bytes read back whole; the bound on it is honoured.
    @Test func aBlobOfKnownSizeIsOneStreamedPut() async throws {
        let store = try await S3TestServer.makeStore {
            $0.partSize = 5 * Self.mib
            $0.streamedPutMax = 1 << 30
        }
        let bytes = Fixture.png(13 * Self.mib + 7)
        let id = BlobID.random()
        let writer = try await store.makeWriter(for: id, size: Int64(bytes.count))
        var i = 0
        while i < bytes.count {
            try await writer.write(ByteBuffer(bytes: bytes[i..<min(i + 999_999, bytes.count)]))
            i += 999_999
            if i > 6 * Self.mib && i < 7 * Self.mib { #expect(try await store.unfinishedUploads().isEmpty) }
        }
        #expect(try await writer.finish() == Int64(bytes.count))
        #expect(try await readBlob(store, id) == bytes)
        #expect(try await store.unfinishedUploads().isEmpty)
        // Sized blobs of a part or less, or past `streamedPutMax`, go as blobs of unknown size.
        let capped = try await S3TestServer.makeStore {
            $0.partSize = 5 * Self.mib
            $0.streamedPutMax = 6 * Int64(Self.mib)
        }
        let big = BlobID.random()
        let parts = try await capped.makeWriter(for: big, size: 7 * Int64(Self.mib))
        try await parts.write(ByteBuffer(bytes: Fixture.png(6 * Self.mib)))
        #expect(try await capped.unfinishedUploads().count == 1)
        await parts.abort()
        let small = Fixture.gif(3000)
        #expect(try await readBlob(capped, try await writeBlob(capped, small, sized: true)) == small)
    }

    /// An aborted streamed `PutObject` leaves nothing: cut off half-way, or after its last byte
    /// (when S3 may already hold the object) and before `finish()`. More bytes than declared are
    /// refused.
    @Test func anAbortedStreamedPutLeavesNothing() async throws {
        let store = try await S3TestServer.makeStore {
            $0.partSize = 5 * Self.mib
            $0.streamedPutMax = 1 << 30
        }
        let size = 8 * Self.mib
        for sent in [3 * Self.mib, size] {
            let id = BlobID.random()
            let writer = try await store.makeWriter(for: id, size: Int64(size))
            for _ in 0..<(sent / Self.mib) { try await writer.write(ByteBuffer(bytes: Fixture.png(Self.mib))) }
            await writer.abort()
            #expect(try await store.size(of: id) == nil)
        }
        let id = BlobID.random()
        let writer = try await store.makeWriter(for: id, size: Int64(size))
        try await writer.write(ByteBuffer(bytes: Fixture.png(size - 10)))
        await #expect(throws: StorageError.self) { try await writer.write(ByteBuffer(bytes: Fixture.png(11))) }
        await writer.abort()
        #expect(try await store.size(of: id) == nil)
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)).isEmpty)
        #expect(try await store.unfinishedUploads().isEmpty)
    }

    /// A streamed `PutObject` that S3 refuses (503) fails the write or the finish with the
    /// store's error, once (it cannot be repeated), and leaves nothing.
    @Test func aRefusedStreamedPutFailsAndLeavesNothing() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore {
                $0.endpoint = endpoint
                $0.partSize = 5 * Self.mib
                $0.streamedPutMax = 1 << 30
            }
            proxy.inject(.init(status: .serviceUnavailable, code: "SlowDown", count: nil, method: .put))
            let id = BlobID.random()
            let size = 8 * Self.mib
            let writer = try await store.makeWriter(for: id, size: Int64(size))
            await #expect(throws: StorageError.self) {
                for _ in 0..<8 { try await writer.write(ByteBuffer(bytes: Fixture.png(Self.mib))) }
                try await writer.finish()
            }
            await writer.abort()
            #expect(proxy.counts.failed == 1, "not repeated: \(proxy.counts)")
            proxy.inject(nil)
            #expect(try await store.size(of: id) == nil)
        }
    }

    @Test func blobOfExactlyOnePartIsOneUpload() async throws {
        let store = try await S3TestServer.makeStore { $0.partSize = 5 * Self.mib }
        let bytes = Fixture.gif(5 * Self.mib)
        let id = try await writeBlob(store, bytes, chunk: 1024 * 1024)
        #expect(try await readBlob(store, id) == bytes)
        #expect(try await store.unfinishedUploads().isEmpty)
    }

    @Test func abortMidMultipartLeavesNothing() async throws {
        let store = try await S3TestServer.makeStore { $0.partSize = 5 * Self.mib }
        let id = BlobID.random()
        let writer = try await store.makeWriter(for: id)
        for _ in 0..<12 { try await writer.write(ByteBuffer(bytes: Fixture.png(Self.mib))) }
        #expect(try await store.unfinishedUploads().count == 1)
        await writer.abort()
        #expect(try await store.size(of: id) == nil)
        #expect(try await store.unfinishedUploads().isEmpty)
        #expect(try await store.blobs(writtenBefore: Date().addingTimeInterval(60)).isEmpty)
    }

    @Test func garbageCollectionAbortsUploadsLeftByACrash() async throws {
        let store = try await S3TestServer.makeStore { $0.partSize = 5 * Self.mib }
        // A writer that is never finished nor aborted: the process died mid-upload.
        let writer = try await store.makeWriter(for: .random())
        try await writer.write(ByteBuffer(bytes: Fixture.png(6 * Self.mib)))
        let left = try await store.unfinishedUploads()
        #expect(left.count == 1)
        // (moto reports every upload as started in 2010, so "younger than the grace period is
        // kept" cannot be shown here; the cut-off is the same comparison as for blobs.)
        _ = try await store.blobs(writtenBefore: try #require(left.first?.started).addingTimeInterval(1))
        #expect(try await store.unfinishedUploads().isEmpty)
    }

    @Test func throttlingIsRetriedWithBackoff() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore { $0.endpoint = endpoint }
            let bytes = Fixture.png(3000)
            // Two 503 SlowDown answers, then S3 again: the write and the read succeed.
            proxy.inject(.init(status: .serviceUnavailable, code: "SlowDown", count: 2, method: .put))
            let id = try await writeBlob(store, bytes, chunk: 1024 * 1024)
            #expect(proxy.counts == (seen: 3, failed: 2))
            proxy.inject(.init(status: .internalServerError, code: "InternalError", count: 1, method: .get))
            #expect(try await readBlob(store, id) == bytes)
            #expect(proxy.counts == (seen: 2, failed: 1))
        }
    }

    @Test func anObjectStoreThatKeepsFailingIsUnavailable() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore {
                $0.endpoint = endpoint
                $0.maxAttempts = 3
            }
            let id = BlobID.random()
            proxy.inject(.init(status: .serviceUnavailable, code: "SlowDown", method: .put))
            let writer = try await store.makeWriter(for: id)
            try await writer.write(ByteBuffer(bytes: Fixture.png(100)))
            await #expect(throws: StorageError.self) { try await writer.finish() }
            do { try await writer.finish() } catch let e as StorageError { #expect(e.code == .unavailable) }
            #expect(proxy.counts.failed == 6)  // two finishes, three attempts each
            proxy.inject(nil)
            #expect(try await store.size(of: id) == nil)
        }
    }

    @Test func refusalsAreNotRetried() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore { $0.endpoint = endpoint }
            proxy.inject(.init(status: .forbidden, code: "AccessDenied", method: .put))
            let writer = try await store.makeWriter(for: .random())
            try await writer.write(ByteBuffer(bytes: Fixture.png(100)))
            do {
                try await writer.finish()
                Issue.record("a refused PutObject must fail")
            } catch let e as StorageError {
                #expect(e.code == .internalError)
                #expect(!e.message.contains("AccessDenied"))  // details go to the logs, not clients
            }
            #expect(proxy.counts == (seen: 1, failed: 1))
        }
    }

    @Test func anUnreachableEndpointIsUnavailableQuickly() async throws {
        // A port nothing listens on: the connection is refused at once, every attempt.
        let store = try await S3TestServer.makeStore()
        let dead = try S3BlobStore(
            configuration: {
                var c = try S3TestServer.configuration(); c.endpoint = "http://127.0.0.1:9"; return c
            }(),
            httpClient: S3TestServer.httpClient, logger: TestLogging.logger("depot-test-s3", level: .error))
        _ = store
        let start = ContinuousClock.now
        do {
            try await dead.ping()
            Issue.record("ping must fail")
        } catch let e as StorageError {
            #expect(e.code == .unavailable)
        }
        // Not a timing test: only far below what waiting for connections would take (async-http-client
        // retrying a refused connection until its 5 s connect timeout, per attempt: 20 s).
        #expect(ContinuousClock.now - start < .seconds(15))
    }
}

@Suite("S3 configuration")
struct S3ConfigurationTests {
    func config(_ change: (inout S3Configuration) -> Void) -> S3Configuration {
        var c = S3Configuration(endpoint: "http://127.0.0.1:9000", bucket: "depot", accessKey: "a", secretKey: "s")
        change(&c)
        return c
    }

    @Test func aGoodConfigurationPasses() throws {
        try config { _ in }.validate()
        try config {
            $0.endpoint = "https://s3.eu-west-1.amazonaws.com"; $0.pathStyle = false; $0.prefix = "prod/depot"
        }.validate()
    }

    @Test(arguments: [
        ("ftp://host", "endpoint"), ("http://host/path", "endpoint"), ("not a url", "endpoint"),
    ])
    func badEndpoints(_ endpoint: String, _ word: String) {
        do {
            try config { $0.endpoint = endpoint }.validate()
            Issue.record("\(endpoint) must be refused")
        } catch {
            #expect(error.message.contains(word), "the message names the setting: \(error.message)")
        }
    }

    @Test func eachBadSettingIsNamed() {
        func message(_ change: (inout S3Configuration) -> Void) -> String {
            do { try config(change).validate() } catch { return error.message }
            return ""
        }
        #expect(message { $0.bucket = "Bad_Bucket" }.contains("bucket"))
        #expect(message { $0.bucket = "ab" }.contains("bucket"))
        #expect(message { $0.prefix = "a/../b" }.contains("prefix"))
        #expect(message { $0.prefix = "a b" }.contains("prefix"))
        #expect(message { $0.secretKey = "" }.contains("secret key"))
        #expect(message { $0.region = "us east" }.contains("region"))
        #expect(message { $0.partSize = 1024 }.contains("part size"))
        #expect(message { $0.streamedPutMax = 6 * 1024 * 1024 * 1024 }.contains("streamed"))
    }

    /// Streamed `PutObject`s (no body hash in the signature) are on by default over https only.
    @Test func streamedPutsAreOnByDefaultOverHTTPSOnly() {
        #expect(config { _ in }.effectiveStreamedPutMax == 0)
        #expect(config { $0.endpoint = "https://s3.amazonaws.com" }.effectiveStreamedPutMax == 1024 * 1024 * 1024)
        #expect(config { $0.streamedPutMax = 77 }.effectiveStreamedPutMax == 77)
    }
}
