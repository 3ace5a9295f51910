import Crypto
import DepotCore
import DepotTesting
import Foundation
import HTTPTypes
import Testing

/// Resumable uploads at their edges: bodies cut short (judged as what they kept), bodies declared
/// past the length, held quota kept for its upload, and metadata refused rather than replaced.
@Suite("Resumable uploads at the edges")
struct ResumableEdgeTests {
    typealias T = ResumableUploadTests

    /// Sends a chunked PATCH whose one chunk is `bytes` and closes the connection without the
    /// last chunk: the body is cut short just after its bytes arrived.
    static func cutPatch(port: Int, url: String, auth: HTTPFields, bytes: [UInt8]) async throws {
        var head = "PATCH \(url) HTTP/1.1\r\nHost: x\r\nAuthorization: \(auth[.authorization]!)\r\nTus-Resumable: 1.0.0\r\n"
        head += "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
        head += String(bytes.count, radix: 16) + "\r\n"
        let fd = try RawSocket.connect(port: port)
        RawSocket.send(fd, Array(head.utf8) + bytes + Array("\r\n".utf8))
        try await Task.sleep(for: .milliseconds(300))
        close(fd)
    }

    /// Polls until `condition` holds (10 s at most).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<50 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    /// A PATCH cut off just as its last byte arrived still completes the upload: a client that
    /// sees the offset at the length takes it for done, so the object must exist.
    @Test func aCutBodyThatReachesTheLengthCommitsTheObject() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(50_000)
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: T.creation(alice, bucket: "assets", name: "alice/cut-last.png", length: bytes.count))
            let url = T.location(open)
            try await Self.cutPatch(port: client.port, url: url, auth: alice, bytes: bytes)
            let stored = try await Self.eventually {
                try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/cut-last.png", headers: alice).bytes == bytes
            }
            #expect(stored, "the object exists without another request")
            let head = try await client.request(.head, url, headers: T.tus(alice))
            #expect(head.headers[HTTPField.Name("Upload-Offset")!] == String(bytes.count) && head.headers[HTTPField.Name("Tus-Complete")!] == "1")
        }
    }

    /// The first bytes of a cut-off PATCH are type-checked as a complete one's are: bytes of the
    /// wrong type end the upload (it is gone, 404), so no PATCH can build on them.
    @Test func aCutBodyOfTheWrongTypeEndsTheUpload() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            func open() async throws -> String {
                let r = try await client.request(
                    .post, "/v1/uploads",
                    headers: T.tus(
                        alice,
                        [
                            HTTPField.Name("Upload-Length")!: "2000",
                            HTTPField.Name("Upload-Metadata")!: T.metadata([("jobId", "cut"), ("contentType", "image/png")]),
                        ]))
                #expect(r.status == .created, "\(r.text)")
                return T.location(r)
            }
            let url = try await open()
            let html = Array(("<html><script>alert(1)</script>" + String(repeating: " ", count: 70)).utf8)
            try await Self.cutPatch(port: client.port, url: url, auth: alice, bytes: html)
            let gone = try await Self.eventually {
                try await client.request(.head, url, headers: T.tus(alice)).status == .notFound
            }
            #expect(gone, "the upload ends once its cut first bytes are judged")
            // Cut before the type can be told (5 bytes): kept, then the next PATCH is refused and
            // ends the upload, as no later byte could make it right.
            let url2 = try await open()
            try await Self.cutPatch(port: client.port, url: url2, auth: alice, bytes: Array("<html".utf8))
            let five = try await Self.eventually {
                try await client.request(.head, url2, headers: T.tus(alice)).headers[HTTPField.Name("Upload-Offset")!] == "5"
            }
            #expect(five)
            let next = try await client.request(.patch, url2, headers: T.patch(alice, offset: 5), body: [UInt8](repeating: 0x20, count: 100))
            #expect(next.status == .unsupportedMediaType, "\(next.text)")
            #expect(try await client.request(.head, url2, headers: T.tus(alice)).status == .notFound)
            let rest = try await client.request(.patch, url2, headers: T.patch(alice, offset: 5), body: [UInt8](repeating: 0, count: 100))
            #expect(rest.status == .notFound, "\(rest.text)")
            let listed = try await client.request(.get, "/v1/assets?prefix=alice/cut/", headers: alice).json["items"] as? [Any]
            #expect(listed?.isEmpty == true, "nothing listed")
        }
    }

    /// A body declared longer than what the upload still takes is refused before it is read.
    @Test func aBodyDeclaredPastTheLengthIsRefusedAtOnce() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(1000)
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: T.creation(alice, bucket: "assets", name: "alice/long.png", length: bytes.count))
            let url = T.location(open)
            let over = try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: bytes + [0])
            #expect(over.status == .contentTooLarge && over.text.contains("past the upload's length"), "\(over.text)")
            #expect(try await client.request(.head, url, headers: T.tus(alice)).headers[HTTPField.Name("Upload-Offset")!] == "0")
            #expect(try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: bytes).status == .noContent)
        }
    }

    /// The bytes an unfinished upload holds stay its own: a small upload (below the early check)
    /// that would eat into them is refused at its commit, nothing stored, and the held upload
    /// still completes.
    @Test func heldBytesAreKeptForTheirUpload() async throws {
        let env = try await TestEnvironment.make { $0.quota.bytes = 10_000 }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let held = Fixture.png(6000)
            let open = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: T.creation(alice, bucket: "assets", name: "alice/held.png", length: held.count))
            #expect(open.status == .created)
            var png = alice
            png[.contentType] = "image/png"
            let eating = try await client.request(.post, "/storage/v1/object/assets/alice/small.png", headers: png, body: Fixture.png(5000))
            // The Storage API's way: HTTP 400 with statusCode "413".
            #expect(eating.status == .badRequest && eating.text.contains("held by unfinished uploads"), "\(eating.status) \(eating.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/small.png", headers: alice).status == .notFound)
            #expect(try await client.request(.post, "/storage/v1/object/assets/alice/fits.png", headers: png, body: Fixture.png(3000)).status == .ok)
            let last = try await client.request(.patch, T.location(open), headers: T.patch(alice, offset: 0), body: held)
            #expect(last.status == .noContent, "\(last.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/held.png", headers: alice).bytes == held)
        }
    }

    /// A `cacheControl` that cannot be a header value is refused, not replaced by a default: in
    /// resumable metadata, a form field, a copy's metadata.
    @Test func anUnsafeCacheControlIsRefused() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            var headers = T.creation(alice, bucket: "assets", name: "alice/cc.png", length: 100)
            headers[HTTPField.Name("Upload-Metadata")!] = T.metadata([
                ("bucketName", "assets"), ("objectName", "alice/cc.png"), ("cacheControl", "max-age=1\r\nSet-Cookie: x=y"),
            ])
            let r = try await client.request(.post, "/storage/v1/upload/resumable", headers: headers)
            #expect(r.status == .badRequest && r.text.contains("cacheControl"), "\(r.text)")
            let usage = try await client.request(.get, "/v1/usage", headers: alice).json
            #expect(usage["resumableUploads"] as? Int == 0, "no upload was opened: \(usage)")
            let unsafe = "max-age=5\r\nX-Evil: 1"
            var form = alice
            form[.contentType] = "multipart/form-data; boundary=depot-boundary-1234"
            let posted = try await client.request(
                .post, "/storage/v1/object/assets/alice/form.png", headers: form,
                body: Fixture.multipart(fields: [("cacheControl", unsafe)], file: Fixture.png(500)))
            #expect(posted.status == .badRequest && posted.text.contains("cacheControl"), "\(posted.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/form.png", headers: alice).status == .notFound)
            var png = alice
            png[.contentType] = "image/png"
            #expect(try await client.request(.post, "/storage/v1/object/assets/alice/src.png", headers: png, body: Fixture.png(500)).status == .ok)
            let copied = try await client.json(
                .post, "/storage/v1/object/copy", headers: alice,
                ["bucketId": "assets", "sourceKey": "alice/src.png", "destinationKey": "alice/copy.png", "metadata": ["cacheControl": unsafe]])
            #expect(copied.status == .badRequest && copied.text.contains("cacheControl"), "\(copied.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/copy.png", headers: alice).status == .notFound)
        }
    }
}
