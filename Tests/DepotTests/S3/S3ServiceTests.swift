import DepotCore
import DepotHTTP
import DepotS3
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// The whole service over HTTP with its blobs in S3 (moto, signatures checked) and its rows in
/// SQLite: what `depot serve --blob-store s3` runs.
@Suite("Assets API over S3", .enabled(if: S3TestServer.enabled, Comment(rawValue: S3TestServer.skipNote)))
struct S3ServiceTests {
    static let mib = 1024 * 1024

    /// Every blob the store holds (finished ones).
    func blobs(_ store: S3BlobStore) async throws -> [BlobID] {
        try await store.blobs(writtenBefore: Date().addingTimeInterval(3600))
    }

    @Test func uploadDownloadFlipDeleteWithBlobsInS3() async throws {
        let store = try await S3TestServer.makeStore { $0.partSize = 5 * Self.mib }
        let env = try await TestEnvironment.make({ $0.maxFileSize = 64 * Int64(Self.mib) }, blobs: store)
        try await env.live { client in
            let alice = try await env.auth("alice")
            for size in [5000, 13 * Self.mib + 7] {
                let png = Fixture.png(size)
                let up = try await client.upload(png, headers: alice)
                #expect(up.status == .created)
                #expect(up.json["checksum"] as? String == png.sha256Hex)
                let path = try #require(up.json["path"] as? String)
                let signed = TestEnvironment.local(try #require(up.json["url"] as? String))
                #expect(try await client.request(.get, signed).bytes == png)
                var range = HTTPFields()
                range[.range] = "bytes=\(size - 100)-"
                let tail = try await client.request(.get, signed, headers: range)
                #expect(tail.status == .partialContent)
                #expect(tail.bytes == Array(png[(size - 100)...]))

                // The flip moves no bytes: the same single blob serves the public URL.
                let flip = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
                let publicURL = TestEnvironment.local(try #require(flip.json["url"] as? String))
                #expect(try await client.request(.get, publicURL).bytes == png)
                #expect(try await blobs(store).count == 1)

                #expect(try await client.request(.delete, "/v1/assets/\(path)", headers: alice).status == .noContent)
                #expect(try await client.request(.get, publicURL).status == .notFound)
                #expect(try await blobs(store).isEmpty)
            }
            #expect(try await store.unfinishedUploads().isEmpty)
        }
    }

    /// A presigned upload (size declared in advance) larger than a part is streamed to S3 as one
    /// `PutObject`; one whose bytes do not match its declared checksum leaves no blob behind
    /// (S3 had the whole object before the checksum was known wrong).
    @Test func presignedUploadsAreStreamedAndARefusedOneLeavesNothing() async throws {
        let store = try await S3TestServer.makeStore {
            $0.partSize = 5 * Self.mib
            $0.streamedPutMax = 1 << 30
        }
        let env = try await TestEnvironment.make({ $0.maxFileSize = 64 * Int64(Self.mib) }, blobs: store)
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png(13 * Self.mib + 7)
            func presign(checksum: String) async throws -> String {
                let r = try await client.json(
                    .post, "/v1/presigned-uploads", headers: alice,
                    ["jobId": "big", "contentType": "image/png", "size": png.count, "checksum": checksum])
                #expect(r.status == .created, "\(r.text)")
                return TestEnvironment.local(try #require(r.json["uploadUrl"] as? String))
            }
            let wrong = try await client.request(
                .put, try await presign(checksum: Fixture.png(10).sha256Hex), headers: [.contentType: "image/png"], body: png)
            #expect(wrong.status == .badRequest || wrong.status == .unprocessableContent, "\(wrong.status) \(wrong.text)")
            #expect(try await blobs(store).isEmpty)
            #expect(try await store.unfinishedUploads().isEmpty)

            let put = try await client.request(.put, try await presign(checksum: png.sha256Hex), headers: [.contentType: "image/png"], body: png)
            #expect(put.status == .created, "\(put.text)")
            #expect(put.json["checksum"] as? String == png.sha256Hex)
            let signed = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": [put.json["path"] as! String]])
            let url = TestEnvironment.local(try #require((signed.json["urls"] as? [String: String])?.values.first))
            #expect(try await client.request(.get, url).bytes == png)
            #expect(try await blobs(store).count == 1)
        }
    }

    @Test func anObjectStoreOutageFailsUploadsWith503AndStoresNothing() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore {
                $0.endpoint = endpoint; $0.maxAttempts = 2
            }
            let env = try await TestEnvironment.make(blobs: store)
            try await env.live { client in
                let alice = try await env.auth("alice")
                let before = try await client.upload(Fixture.png(2000), jobId: "before", headers: alice)
                #expect(before.status == .created)

                // S3 answers nothing but 503: uploads fail with 503 and Retry-After …
                proxy.inject(.init(status: .serviceUnavailable, code: "ServiceUnavailable"))
                for _ in 0..<3 {
                    let up = try await client.upload(Fixture.png(3000), jobId: "during", headers: alice)
                    #expect(up.status == .serviceUnavailable)
                    #expect(up.errorCode == "unavailable")
                    #expect(up.headers[.retryAfter] != nil)
                }
                // … listing (rows only) keeps working, and shows no object of the failed uploads;
                let list = try await client.request(.get, "/v1/assets", headers: alice)
                #expect(list.status == .ok)
                #expect((list.json["items"] as? [[String: Any]])?.count == 1)
                #expect(try await client.request(.get, "/health").status == .serviceUnavailable)
                #expect(try await client.request(.head, "/health").status == .serviceUnavailable)

                // … and when S3 is back, so is everything, with no blob left by the failures.
                proxy.inject(nil)
                #expect(try await client.request(.get, "/health").status == .ok)
                let after = try await client.upload(Fixture.png(3000), jobId: "after", headers: alice)
                #expect(after.status == .created)
                #expect(try await blobs(store).count == 2)
                #expect(try await store.unfinishedUploads().isEmpty)
            }
        }
    }

    /// The store is read before the head is sent: a blob gone from S3, or S3 down, is a clean JSON
    /// error (500, 503) on a connection that goes on, never a 200 cut short.
    @Test func aDownloadS3CannotServeIsACleanError() async throws {
        let proxy = FaultProxy(target: try S3TestServer.configuration().endpoint)
        try await proxy.run { endpoint in
            let store = try await S3TestServer.makeStore {
                $0.endpoint = endpoint; $0.maxAttempts = 2
            }
            let env = try await TestEnvironment.make(blobs: store, cacheBlobs: false)
            try await env.live { client in
                let alice = try await env.auth("alice")
                let png = Fixture.png(5000)
                let kept = TestEnvironment.local(try #require(try await client.upload(png, jobId: "kept", headers: alice).json["url"] as? String))
                let lost = try await client.upload(Fixture.png(6000), jobId: "lost", headers: alice)
                let lostURL = TestEnvironment.local(try #require(lost.json["url"] as? String))
                let path = try ObjectPath(try #require(lost.json["path"] as? String))
                let row = try #require(try await env.service.metadata.object(at: ObjectKey(bucket: env.service.settings.privateBucket, path: path)))
                try await store.delete(row.blobID)

                let missing = try await client.request(.get, lostURL)
                #expect(missing.status == .internalServerError && missing.errorCode == "internal_error")
                #expect(try await client.request(.get, kept).bytes == png)

                proxy.inject(.init(status: .serviceUnavailable, code: "ServiceUnavailable"))
                let down = try await client.request(.get, kept)
                #expect(down.status == .serviceUnavailable && down.errorCode == "unavailable")
                proxy.inject(nil)
                #expect(try await client.request(.get, kept).bytes == png)
            }
        }
    }

    @Test func redirectModeSendsSignedGETsStraightToS3() async throws {
        let plain = try #require(S3TestServer.plainEndpoint, "DEPOT_TEST_S3_PLAIN_ENDPOINT is not set")
        let store = try await S3TestServer.makeStore { $0.endpoint = plain }
        var env = try await TestEnvironment.make(blobs: store)
        env.http.pipelineDownloads = false
        env.http.directDownloads = store
        let live = env
        try await live.live { client in
            let env = live
            let alice = try await env.auth("alice")
            let png = Fixture.png(70_000)
            let up = try await client.upload(png, headers: alice)
            let path = try #require(up.json["path"] as? String)
            let signed = TestEnvironment.local(try #require(up.json["url"] as? String))

            // Depot checks the token, then redirects; the redirect itself is not cached.
            let got = try await client.request(.get, signed + "&download=photo.png")
            #expect(got.status == .found)
            #expect(got.headers[.cacheControl] == "no-store")
            let location = try #require(got.headers[.location])
            #expect(location.hasPrefix("\(plain)/\(S3TestServer.bucket)/"))
            #expect(location.contains("X-Amz-Signature="))
            #expect(location.contains("X-Amz-Expires=60&"))

            // The URL serves the bytes, with the object's type and disposition, and ranges.
            var direct = HTTPClientRequest(url: location)
            let whole = try await HTTPClient.shared.execute(direct, timeout: .seconds(30))
            #expect(whole.status == .ok)
            #expect(whole.headers.first(name: "content-type") == "image/png")
            #expect(whole.headers.first(name: "content-disposition")?.contains("photo.png") == true)
            #expect(Array(try await whole.body.collect(upTo: 1 << 20).readableBytesView) == png)
            direct.headers.add(name: "range", value: "bytes=100-199")
            let part = try await HTTPClient.shared.execute(direct, timeout: .seconds(30))
            #expect(part.status == .partialContent)
            #expect(Array(try await part.body.collect(upTo: 1 << 20).readableBytesView) == Array(png[100..<200]))

            // HEAD is answered by Depot; a bad or revoked token never gets a redirect.
            #expect(try await client.request(.head, signed).status == .ok)
            #expect(try await client.request(.get, signed.replacingOccurrences(of: "token=", with: "token=x")).status != .found)
            _ = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
            #expect(try await client.request(.get, signed).status != .found)
        }
    }
}
