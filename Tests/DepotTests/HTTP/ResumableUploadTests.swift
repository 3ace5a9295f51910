import Crypto
import Depot
import DepotCore
import DepotTesting
import Foundation
import HTTPTypes
import Testing

/// Resumable uploads (TUS 1.0) at `/storage/v1/upload/resumable`, over real HTTP: pieces become
/// one object only when the last arrives; every refusal is its real status with nothing kept.
@Suite("Resumable uploads (TUS)")
struct ResumableUploadTests {
    static func metadata(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0) \(Data($0.1.utf8).base64EncodedString())" }.joined(separator: ",")
    }

    static func tus(_ auth: HTTPFields, _ extra: HTTPFields = [:]) -> HTTPFields {
        var h = auth
        h[HTTPField.Name("Tus-Resumable")!] = "1.0.0"
        for f in extra { h[f.name] = f.value }
        return h
    }

    static func creation(_ auth: HTTPFields, bucket: String, name: String, length: Int, type: String = "image/png") -> HTTPFields {
        tus(
            auth,
            [
                HTTPField.Name("Upload-Length")!: String(length),
                HTTPField.Name("Upload-Metadata")!: metadata([("bucketName", bucket), ("objectName", name), ("contentType", type)]),
            ])
    }

    static func patch(_ auth: HTTPFields, offset: Int, checksum: [UInt8]? = nil) -> HTTPFields {
        var extra: HTTPFields = [HTTPField.Name("Upload-Offset")!: String(offset), .contentType: "application/offset+octet-stream"]
        if let checksum { extra[HTTPField.Name("Upload-Checksum")!] = "sha256 " + Data(SHA256.hash(data: checksum)).base64EncodedString() }
        return tus(auth, extra)
    }

    static func location(_ r: LiveClient.Reply) -> String {
        TestEnvironment.local(r.headers[.location] ?? "")
    }

    /// With blobs in files, the staged file becomes the blob (a hard link, no copy); with another
    /// blob store (memory here, S3 in production) it is copied through the upload pipeline.
    @Test(arguments: [true, false])
    func piecesBecomeOneObjectWhenTheLastArrives(filesBlobStore: Bool) async throws {
        let env = try await TestEnvironment.make(blobs: filesBlobStore ? nil : InMemoryBlobStore())
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let options = try await client.request(.options, "/storage/v1/upload/resumable")
            #expect(options.status == .noContent && options.headers[HTTPField.Name("Tus-Extension")!]?.contains("checksum") == true)

            let bytes = Fixture.png(100_000)
            let created = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "docs", name: "alice/big.png", length: bytes.count))
            #expect(created.status == .created, "\(created.text)")
            let url = Self.location(created)
            #expect(url.hasPrefix("/storage/v1/upload/resumable/") && created.headers[HTTPField.Name("Upload-Expires")!] != nil)

            let first = Array(bytes[..<40_000])
            let p1 = try await client.request(.patch, url, headers: Self.patch(alice, offset: 0, checksum: first), body: first)
            #expect(p1.status == .noContent && p1.headers[HTTPField.Name("Upload-Offset")!] == "40000", "\(p1.text)")
            let key = ObjectKey(bucket: "docs", path: try ObjectPath("alice/big.png"))
            #expect(try await env.service.metadata.object(at: key) == nil, "nothing visible before the last byte")
            let head = try await client.request(.head, url, headers: Self.tus(alice))
            #expect(head.headers[HTTPField.Name("Upload-Offset")!] == "40000" && head.headers[HTTPField.Name("Upload-Length")!] == "100000")

            // A stale offset, another user's attempt, a lying checksum: each refused, nothing kept.
            let stale = try await client.request(.patch, url, headers: Self.patch(alice, offset: 0), body: first)
            #expect(stale.status == .conflict, "\(stale.text)")
            let bob = try await env.auth("bob")
            #expect(try await client.request(.patch, url, headers: Self.patch(bob, offset: 40_000), body: [1, 2, 3]).status == .notFound)
            #expect(try await client.request(.head, url, headers: Self.tus(bob)).status == .notFound)
            let rest = Array(bytes[40_000...])
            var wrong = rest
            wrong[5] ^= 1
            let lie = try await client.request(.patch, url, headers: Self.patch(alice, offset: 40_000, checksum: wrong), body: rest)
            #expect(lie.status.code == 460, "\(lie.status) \(lie.text)")
            let tooMuch = try await client.request(.patch, url, headers: Self.patch(alice, offset: 40_000), body: rest + [0])
            #expect(tooMuch.status == .contentTooLarge, "\(tooMuch.text)")
            #expect(try await client.request(.head, url, headers: Self.tus(alice)).headers[HTTPField.Name("Upload-Offset")!] == "40000")

            let last = try await client.request(.patch, url, headers: Self.patch(alice, offset: 40_000, checksum: rest), body: rest)
            #expect(last.status == .noContent && last.headers[HTTPField.Name("Upload-Offset")!] == "100000", "\(last.text)")
            let object = try #require(try await env.service.metadata.object(at: key))
            #expect(object.size == 100_000 && object.contentType == "image/png" && object.owner == "alice")
            #expect(object.sha256 == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
            let read = try await client.request(.get, "/storage/v1/object/authenticated/docs/alice/big.png", headers: alice)
            #expect(read.bytes == bytes)
            #expect(last.headers[HTTPField.Name("Tus-Complete")!] == "1" && last.headers[HTTPField.Name("Depot-Checksum")!] == object.sha256)
            // Asked again (a client that lost the answer), the upload is complete; it takes no
            // more bytes and cannot be terminated; only its record is left.
            let done = try await client.request(.head, url, headers: Self.tus(alice))
            #expect(done.status == .ok && done.headers[HTTPField.Name("Upload-Offset")!] == "100000", "\(done.text)")
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 100_000), body: []).status == .noContent)
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 100_000), body: [1]).status == .contentTooLarge)
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 0), body: [1]).status == .conflict)
            #expect(try await client.request(.delete, url, headers: Self.tus(alice)).status == .badRequest)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/docs/alice/big.png", headers: alice).bytes == bytes)
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").allSatisfy { $0.hasSuffix(".json") })
        }
    }

    /// The whole upload's SHA-256 is carried from PATCH to PATCH, hashed in 1 MiB batches beside
    /// the writes: pieces that do not fall on a batch's edge give the hash of the whole.
    @Test func aMultiMegabyteUploadInUnevenPiecesHasTheWholesHash() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let bytes = Fixture.png(3_700_000)
            let created = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "docs", name: "alice/long.png", length: bytes.count))
            let url = Self.location(created)
            var offset = 0
            for size in [1_500_000, 1_048_576, 3, 1_151_421] {
                let piece = Array(bytes[offset..<offset + size])
                let r = try await client.request(.patch, url, headers: Self.patch(alice, offset: offset), body: piece)
                offset += size
                #expect(r.status == .noContent && r.headers[HTTPField.Name("Upload-Offset")!] == String(offset), "\(r.text)")
            }
            let key = ObjectKey(bucket: "docs", path: try ObjectPath("alice/long.png"))
            let object = try #require(try await env.service.metadata.object(at: key))
            #expect(object.sha256 == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
            let read = try await client.request(.get, "/storage/v1/object/authenticated/docs/alice/long.png", headers: alice)
            #expect(read.bytes == bytes)
        }
    }

    @Test func creationWithUploadAndTermination() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(3000)
            var headers = Self.creation(alice, bucket: "assets", name: "alice/one.png", length: bytes.count)
            headers[.contentType] = "application/offset+octet-stream"
            let created = try await client.request(.post, "/storage/v1/upload/resumable", headers: headers, body: bytes)
            #expect(created.status == .created && created.headers[HTTPField.Name("Upload-Offset")!] == "3000", "\(created.text)")
            let read = try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/one.png", headers: alice)
            #expect(read.bytes == bytes)
            // Its SHA-256 was carried through the appends (no read-back): the same digest.
            let one = try await env.service.metadata.object(at: ObjectKey(bucket: "assets", path: try ObjectPath("alice/one.png")))
            #expect(one?.sha256 == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())

            let before = try await env.snapshot()
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/two.png", length: 5000))
            let url = Self.location(open)
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 0), body: Fixture.png(2000)).status == .noContent)
            #expect(try await client.request(.delete, url, headers: Self.tus(alice)).status == .noContent)
            #expect(try await client.request(.head, url, headers: Self.tus(alice)).status == .notFound)
            #expect(try await env.snapshot() == before)
            // Only the finished upload's record (no bytes) is left.
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").count == 1)

            // A refused first append ends the upload it created (its URL never reached the client).
            var lying = Self.patch(alice, offset: 0, checksum: [1, 2, 3])
            for f in Self.creation(alice, bucket: "assets", name: "alice/three.png", length: 3000) { lying[f.name] = f.value }
            let refused = try await client.request(.post, "/storage/v1/upload/resumable", headers: lying, body: bytes)
            #expect(refused.status.code == 460, "\(refused.status) \(refused.text)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").count == 1)

            // The name was taken while the upload ran (no upsert): the last PATCH gets 409 and the
            // upload ends (no retry could finish it; its quota hold and slot are freed).
            let racing = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/four.png", length: bytes.count))
            let racingURL = Self.location(racing)
            let firstPart = Array(bytes[..<1000])
            #expect(try await client.request(.patch, racingURL, headers: Self.patch(alice, offset: 0), body: firstPart).status == .noContent)
            let taken = try await client.request(
                .post, "/storage/v1/object/assets/alice/four.png", headers: alice + [.contentType: "image/png"], body: Fixture.png(500))
            #expect(taken.status == .ok)
            let clash = try await client.request(.patch, racingURL, headers: Self.patch(alice, offset: 1000), body: Array(bytes[1000...]))
            #expect(clash.status == .conflict && clash.text.contains("the upload is ended"), "\(clash.text)")
            #expect(try await client.request(.head, racingURL, headers: Self.tus(alice)).status == .notFound)
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").count == 1, "its bytes and record are gone")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/four.png", headers: alice).bytes.count == 500)

            // An empty upload is complete at its creation (in a bucket that takes any type).
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "files"]).status == .ok)
            let empty = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "files", name: "alice/empty.bin", length: 0, type: ""))
            #expect(empty.status == .created, "\(empty.text)")
            let stored = try await client.request(.get, "/storage/v1/object/authenticated/files/alice/empty.bin", headers: alice)
            #expect(stored.status == .ok && stored.bytes.isEmpty, "\(stored.text)")
        }
    }

    /// What an upload would be refused for is refused at creation (or at the first bytes, for
    /// the type), with the real status and a plain-text reason; nothing is stored.
    @Test func refusalsComeEarlyAndKeepNothing() async throws {
        let env = try await TestEnvironment.make { $0.maxFileSize = 50_000 }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(
                try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "pngs", "allowed_mime_types": ["image/png"]]).status
                    == .ok)
            let before = try await env.snapshot()
            let path = "/storage/v1/upload/resumable"
            let cases: [(HTTPFields, Int, String)] = [
                (Self.creation(alice, bucket: "pngs", name: "alice/huge.png", length: 50_001), 413, "over the size limit"),
                (Self.creation(alice, bucket: "pngs", name: "bob/x.png", length: 10), 403, "another tenant's name"),
                (Self.creation(alice, bucket: "nope", name: "alice/x.png", length: 10), 404, "no such bucket"),
                (Self.creation(alice, bucket: "pngs", name: "alice/x.txt", length: 10, type: "text/plain"), 415, "a type the bucket refuses"),
                (Self.creation(alice, bucket: "pngs", name: "alice/../x.png", length: 10), 400, "a path trick"),
                (Self.tus(alice, [HTTPField.Name("Upload-Length")!: "10"]), 400, "no metadata"),
                (
                    Self.tus(
                        alice,
                        [HTTPField.Name("Upload-Length")!: "99999999999999999999999", HTTPField.Name("Upload-Metadata")!: "bucketName cG5ncw=="]),
                    400, "a length past Int64"
                ),
                (
                    Self.tus(alice, [HTTPField.Name("Upload-Length")!: "10", HTTPField.Name("Upload-Metadata")!: "bucketName !!!"]), 400,
                    "metadata not base64"
                ),
                (
                    Self.tus(
                        alice,
                        [
                            HTTPField.Name("Upload-Length")!: "10",
                            HTTPField.Name("Upload-Metadata")!: Self.metadata([("bucketName", "pngs\u{0}x"), ("objectName", "alice/x.png")]),
                        ]), 400, "a NUL in the bucket name"
                ),
                (
                    Self.tus(
                        alice,
                        [
                            HTTPField.Name("Upload-Length")!: "10",
                            HTTPField.Name("Upload-Metadata")!: Self.metadata([
                                ("bucketName", "pngs"), ("objectName", "alice/x.png"), ("metadata", "[1]"),
                            ]),
                        ]), 400, "metadata that is not a JSON object"
                ),
            ]
            for (headers, status, what) in cases {
                let r = try await client.request(.post, path, headers: headers)
                #expect(Int(r.status.code) == status, "\(what): \(r.status) \(r.text)")
                #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true && !r.text.isEmpty, "\(what): \(r.text)")
            }
            var noVersion = Self.creation(alice, bucket: "pngs", name: "alice/x.png", length: 10)
            noVersion[HTTPField.Name("Tus-Resumable")!] = nil
            #expect(try await client.request(.post, path, headers: noVersion).status == .preconditionFailed)
            #expect(
                try await client.request(.post, path, headers: Self.creation([:], bucket: "pngs", name: "alice/x.png", length: 10)).status != .created
            )

            // Text sent as a PNG: refused at the first bytes, not after the last, even when they
            // come in several appends; the upload ends (no later byte could make it a PNG), so an
            // acknowledged offset never goes back: the upload is gone instead.
            let open = try await client.request(.post, path, headers: Self.creation(alice, bucket: "pngs", name: "alice/t.png", length: 40_000))
            let url = Self.location(open)
            let text = Array(repeating: UInt8(ascii: "a"), count: 20_000)
            let r = try await client.request(.patch, url, headers: Self.patch(alice, offset: 0), body: text)
            #expect(r.status == .unsupportedMediaType && r.text.contains("the upload is ended"), "\(r.text)")
            #expect(try await client.request(.head, url, headers: Self.tus(alice)).status == .notFound)
            let again = try await client.request(.post, path, headers: Self.creation(alice, bucket: "pngs", name: "alice/t.png", length: 40_000))
            let url2 = Self.location(again)
            #expect(try await client.request(.patch, url2, headers: Self.patch(alice, offset: 0), body: [0x89, 0x50, 0x4E]).status == .noContent)
            let second = try await client.request(.patch, url2, headers: Self.patch(alice, offset: 3), body: Array(text[..<100]))
            #expect(second.status == .unsupportedMediaType, "\(second.text)")
            let head = try await client.request(.head, url2, headers: Self.tus(alice))
            #expect(head.status == .notFound, "ended, not back to offset 0: \(head.status) \(head.headers)")
            let retry = try await client.request(.patch, url2, headers: Self.patch(alice, offset: 3), body: Array(text[..<100]))
            #expect(retry.status == .notFound, "\(retry.text)")
            #expect(try await env.snapshot() == before)
        }
    }

    /// Open uploads count toward `--max-open-uploads` (per user, also after a restart): no one
    /// stages unbounded uploads.
    @Test func openUploadsAreBoundedPerUser() async throws {
        let env = try await TestEnvironment.make { $0.quota.pendingUploads = 2 }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            var urls: [String] = []
            for i in 0..<2 {
                let r = try await client.request(
                    .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/\(i).png", length: 100))
                #expect(r.status == .created)
                urls.append(Self.location(r))
            }
            let third = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/2.png", length: 100))
            #expect(third.status == .tooManyRequests && third.headers[.retryAfter] != nil, "\(third.text)")
            let bob = try await env.auth("bob")
            #expect(
                try await client.request(
                    .post, "/storage/v1/upload/resumable", headers: Self.creation(bob, bucket: "assets", name: "bob/0.png", length: 100)
                ).status == .created, "another user has his own bound")
            // A restarted server counts what is staged.
            let restarted = await (try FileResumableStore(directory: env.dir + "/resumable")).openUploads(owner: "alice", now: Date())
            #expect(restarted.count == 2 && restarted.bytes == 200)
            #expect(try await client.request(.delete, urls[0], headers: Self.tus(alice)).status == .noContent)
            let again = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/2.png", length: 100))
            #expect(again.status == .created, "\(again.text)")
        }
    }

    /// A connection lost mid-PATCH keeps what arrived (a client resumes from there); with a
    /// checksum, which the part cannot match, nothing of it.
    @Test func aDroppedConnectionKeepsWhatArrived() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(200_000)
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/cut.png", length: bytes.count))
            let url = Self.location(open)
            func cut(checksum: Bool) async throws -> String? {
                var head = "PATCH \(url) HTTP/1.1\r\nHost: x\r\nAuthorization: \(alice[.authorization]!)\r\nTus-Resumable: 1.0.0\r\n"
                head += "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: \(bytes.count)\r\n"
                if checksum { head += "Upload-Checksum: sha256 \(Data(SHA256.hash(data: bytes)).base64EncodedString())\r\n" }
                let fd = try RawSocket.connect(port: client.port)
                RawSocket.send(fd, Array((head + "\r\n").utf8) + Array(bytes[..<100_000]))
                try await Task.sleep(for: .milliseconds(300))
                close(fd)
                // Until the server has seen the connection end (then the offset holds still).
                var last: String? = nil
                for _ in 0..<50 {
                    try await Task.sleep(for: .milliseconds(200))
                    let offset = try await client.request(.head, url, headers: Self.tus(alice)).headers[HTTPField.Name("Upload-Offset")!]
                    if offset == last, let offset, offset == "0" || offset == "100000" { return offset }
                    last = offset
                }
                return last
            }
            #expect(try await cut(checksum: true) == "0", "a part that cannot match its checksum is not kept")
            let kept = try await cut(checksum: false)
            #expect(kept == "100000", "\(kept ?? "nil")")
            let rest = Array(bytes[100_000...])
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 100_000), body: rest).status == .noContent)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/cut.png", headers: alice).bytes == bytes)
        }
    }

    /// Unfinished uploads hold their declared bytes against the quota: many open uploads cannot
    /// stage more than the user may store.
    @Test func stagedBytesCountAgainstTheQuota() async throws {
        let env = try await TestEnvironment.make { $0.quota.bytes = 10_000 }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            #expect(try await client.upload(Fixture.png(3000), headers: alice).status == .created)
            let first = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/a.png", length: 6000))
            #expect(first.status == .created)
            let second = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/b.png", length: 2000))
            #expect(second.status == .contentTooLarge, "3000 stored + 6000 staged + 2000 > 10000: \(second.text)")
            #expect(try await client.request(.delete, Self.location(first), headers: Self.tus(alice)).status == .noContent)
            let again = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/b.png", length: 2000))
            #expect(again.status == .created)
        }
    }

    /// An upload not finished in `resumableTTL` answers 404 and garbage collection removes it.
    @Test func expiredUploadsAreGoneAndCollected() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make({ $0.resumableTTL = 3600 }, clock: clock.now)
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: Self.creation(alice, bucket: "assets", name: "alice/late.png", length: 5000))
            let url = Self.location(open)
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 0), body: Fixture.png(1000)).status == .noContent)
            #expect(try await env.service.collectGarbage().expiredResumables == 0)
            clock.advance(3601)
            #expect(try await client.request(.head, url, headers: Self.tus(alice)).status == .notFound)
            #expect(try await client.request(.patch, url, headers: Self.patch(alice, offset: 1000), body: Fixture.png(10)).status == .notFound)
            #expect(try await env.service.collectGarbage().expiredResumables == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").isEmpty)
        }
    }
}
