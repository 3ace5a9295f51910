import Crypto
import Depot
import DepotCore
import DepotTesting
import Foundation
import HTTPTypes
import Testing

/// The other two ways into a resumable upload, over real HTTP: Supabase's signed form
/// (`/storage/v1/upload/resumable/sign`, an upload URL's token in `x-signature`, no caller token)
/// and the Assets API's `/v1/uploads` (the server names the object; exact type and checksum).
@Suite("Resumable uploads: signed and Assets API")
struct SignedResumableUploadTests {
    typealias T = ResumableUploadTests

    static func signed(_ token: String, _ extra: HTTPFields = [:]) -> HTTPFields {
        T.tus([HTTPField.Name("x-signature")!: token], extra)
    }

    static func assetCreation(_ auth: HTTPFields, length: Int, _ pairs: [(String, String)]) -> HTTPFields {
        T.tus(auth, [HTTPField.Name("Upload-Length")!: String(length), HTTPField.Name("Upload-Metadata")!: T.metadata(pairs)])
    }

    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }

    @Test func aSignedUploadURLStartsOneResumableUpload() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let made = try await client.request(.post, "/storage/v1/object/upload/sign/assets/alice/video.png", headers: alice)
            let token = try #require(made.json["token"] as? String, "\(made.text)")
            let other = try #require(
                try await client.request(.post, "/storage/v1/object/upload/sign/assets/alice/other.png", headers: alice).json["token"] as? String)
            let bytes = Fixture.png(60_000)
            let before = try await env.snapshot()

            // Refused, nothing made: no token, a token for another name, the wrong name.
            let path = "/storage/v1/upload/resumable/sign"
            let creation = T.creation([:], bucket: "assets", name: "alice/video.png", length: bytes.count)
            #expect(try await client.request(.post, path, headers: creation).status == .forbidden)
            var wrongToken = creation
            wrongToken[HTTPField.Name("x-signature")!] = other
            #expect(try await client.request(.post, path, headers: wrongToken).status == .forbidden)
            let wrongName = Self.signed(token, T.creation([:], bucket: "assets", name: "alice/elsewhere.png", length: 10))
            #expect(try await client.request(.post, path, headers: wrongName).status == .forbidden)
            #expect(try await env.snapshot() == before)

            var headers = creation
            headers[HTTPField.Name("x-signature")!] = token
            let created = try await client.request(.post, path, headers: headers)
            #expect(created.status == .created, "\(created.text)")
            let url = T.location(created)
            #expect(url.hasPrefix("/storage/v1/upload/resumable/sign/"), "the Location keeps /sign: \(url)")
            // One upload per URL: the same token again is told the upload is under way.
            #expect(try await client.request(.post, path, headers: headers).status == .conflict)

            let first = Array(bytes[..<20_000])
            let p1 = try await client.request(.patch, url, headers: Self.signed(token, T.patch([:], offset: 0)), body: first)
            #expect(p1.status == .noContent, "\(p1.text)")
            // Without the token, with another URL's token, or with alice's own caller token on the
            // plain entry: there is no such upload.
            #expect(try await client.request(.head, url, headers: T.tus([:])).status == .forbidden)
            #expect(try await client.request(.head, url, headers: Self.signed(other)).status == .notFound)
            let plain = url.replacingOccurrences(of: "/sign/", with: "/")
            #expect(try await client.request(.head, plain, headers: T.tus(alice)).status == .notFound)
            let head = try await client.request(.head, url, headers: Self.signed(token))
            #expect(head.headers[HTTPField.Name("Upload-Offset")!] == "20000")

            let rest = Array(bytes[20_000...])
            let last = try await client.request(.patch, url, headers: Self.signed(token, T.patch([:], offset: 20_000)), body: rest)
            #expect(last.status == .noContent && last.headers[HTTPField.Name("Tus-Complete")!] == "1", "\(last.text)")
            let object = try #require(try await env.service.metadata.object(at: ObjectKey(bucket: "assets", path: try ObjectPath("alice/video.png"))))
            #expect(object.owner == "alice" && object.size == 60_000 && object.sha256 == Self.hex(bytes))
            // The URL was single-use: its PUT now, or a new upload with it, is refused.
            let put = try await client.request(.put, "/storage/v1/object/upload/sign/assets/alice/video.png?token=\(token)", body: bytes)
            #expect(put.status == .conflict, "\(put.text)")
            #expect(try await client.request(.post, path, headers: headers).status == .conflict)
        }
    }

    /// An Assets API presigned upload's URL takes a resumable upload too, with its exact size,
    /// type and checksum.
    @Test func aPresignedAssetUploadCanBeResumable() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(30_000)
            let presigned = try await client.json(
                .post, "/v1/presigned-uploads", headers: alice,
                ["jobId": "j1", "contentType": "image/png", "size": bytes.count, "checksum": Self.hex(bytes)])
            let uploadURL = try #require(presigned.json["uploadUrl"] as? String)
            let token = try #require(uploadURL.components(separatedBy: "token=").last)
            let path = try #require(presigned.json["path"] as? String)
            let before = try await env.snapshot()
            let wrongSize = Self.signed(token, T.creation([:], bucket: "assets", name: path, length: bytes.count + 1))
            #expect(try await client.request(.post, "/storage/v1/upload/resumable/sign", headers: wrongSize).status == .badRequest)
            let wrongType = Self.signed(token, T.creation([:], bucket: "assets", name: path, length: bytes.count, type: "image/jpeg"))
            #expect(try await client.request(.post, "/storage/v1/upload/resumable/sign", headers: wrongType).status == .unsupportedMediaType)
            #expect(try await env.snapshot() == before)

            let created = try await client.request(
                .post, "/storage/v1/upload/resumable/sign",
                headers: Self.signed(token, T.creation([:], bucket: "assets", name: path, length: bytes.count)))
            #expect(created.status == .created, "\(created.text)")
            let url = T.location(created)
            // The declared checksum is checked at the end: other bytes of the same type and size
            // are refused and not kept; the right ones make the object.
            var other = bytes
            other[20_000] ^= 1
            let lie = try await client.request(.patch, url, headers: Self.signed(token, T.patch([:], offset: 0)), body: other)
            #expect(lie.status.code == 460, "\(lie.status) \(lie.text)")
            #expect(try await client.request(.head, url, headers: Self.signed(token)).headers[HTTPField.Name("Upload-Offset")!] == "0")
            let done = try await client.request(.patch, url, headers: Self.signed(token, T.patch([:], offset: 0)), body: bytes)
            #expect(done.status == .noContent && done.headers[HTTPField.Name("Depot-Path")!] == path, "\(done.text)")
            let read = try await client.request(.get, "/v1/assets/\(path)", headers: alice)
            #expect(read.status == .ok, "\(read.text)")
        }
    }

    @Test func theAssetsAPINamesAndChecksAResumableUpload() async throws {
        let env = try await TestEnvironment.make { $0.maxFileSize = 100_000 }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(80_000)
            let options = try await client.request(.options, "/v1/uploads")
            #expect(options.status == .noContent && options.headers[HTTPField.Name("Tus-Version")!] == "1.0.0")
            let before = try await env.snapshot()
            // Refused at creation, as a presigned upload is, with the Assets API's JSON errors.
            let refusals: [([(String, String)], Int, Int, String)] = [
                ([("jobId", "j1"), ("contentType", "text/html")], 10, 415, "unsupported_media_type"),
                ([("jobId", "../x"), ("contentType", "image/png")], 10, 400, "invalid_request"),
                ([("contentType", "image/png")], 10, 400, "invalid_request"),
                ([("jobId", "j1"), ("contentType", "image/png")], 100_001, 413, "payload_too_large"),
                ([("jobId", "j1"), ("contentType", "image/png"), ("checksum", "abc")], 10, 400, "invalid_request"),
                ([("jobId", "j1"), ("contentType", "image/png"), ("visibility", "world")], 10, 400, "invalid_request"),
                ([("jobId", "j1"), ("contentType", "image/png"), ("suffix", "_a/b")], 10, 400, "invalid_request"),
            ]
            for (pairs, length, status, code) in refusals {
                let r = try await client.request(.post, "/v1/uploads", headers: Self.assetCreation(alice, length: length, pairs))
                #expect(r.status.code == status && r.errorCode == code, "\(pairs): \(r.status) \(r.text)")
            }
            #expect(try await client.request(.post, "/v1/uploads", headers: [:]).status == .unauthorized)
            var noVersion = Self.assetCreation(alice, length: 10, [("jobId", "j1"), ("contentType", "image/png")])
            noVersion[HTTPField.Name("Tus-Resumable")!] = nil
            let old = try await client.request(.post, "/v1/uploads", headers: noVersion)
            #expect(old.status == .preconditionFailed && old.errorCode == "invalid_request", "\(old.text)")
            #expect(try await env.snapshot() == before)

            func create() async throws -> (url: String, path: String) {
                let created = try await client.request(
                    .post, "/v1/uploads",
                    headers: Self.assetCreation(
                        alice, length: bytes.count,
                        [
                            ("jobId", "j1"), ("contentType", "image/png"), ("suffix", "_112x112"), ("visibility", "public"),
                            ("checksum", Self.hex(bytes)),
                        ]))
                #expect(created.status == .created, "\(created.text)")
                let path = try #require(created.headers[HTTPField.Name("Depot-Path")!])
                #expect(path.hasPrefix("alice/j1/") && path.hasSuffix("_112x112.png"), "\(path)")
                return (T.location(created), path)
            }
            // Bytes that are not the declared type are refused on the first append and end the
            // upload (no later byte could make them right).
            let doomed = try await create().url
            #expect(doomed.hasPrefix("/v1/uploads/"))
            let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 0, count: 100)
            let wrong = try await client.request(.patch, doomed, headers: T.patch(alice, offset: 0), body: jpeg)
            #expect(wrong.status == .unsupportedMediaType && wrong.errorCode != nil, "\(wrong.text)")
            #expect(try await client.request(.head, doomed, headers: T.tus(alice)).status == .notFound)
            let (url, path) = try await create()
            #expect(try await client.request(.head, url, headers: T.tus(try await env.auth("bob"))).status == .notFound)

            let p1 = try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: Array(bytes[..<50_000]))
            #expect(p1.status == .noContent)
            // Its progress as JSON (202) while it runs, then the asset it made (200).
            let running = try await client.request(.get, url, headers: alice)
            #expect(running.status == .accepted && running.json["offset"] as? Int == 50_000 && running.json["path"] as? String == path)
            #expect(running.json["complete"] as? Bool == false && running.json["length"] as? Int == 80_000, "\(running.text)")
            #expect(try await client.request(.get, url, headers: try await env.auth("bob")).status == .notFound)
            let last = try await client.request(.patch, url, headers: T.patch(alice, offset: 50_000), body: Array(bytes[50_000...]))
            #expect(last.status == .noContent, "\(last.text)")
            #expect(last.headers[HTTPField.Name("Depot-Path")!] == path && last.headers[HTTPField.Name("Depot-Checksum")!] == Self.hex(bytes))
            #expect(last.headers[HTTPField.Name("Depot-Content-Type")!] == "image/png")
            let object = try #require(try await env.service.metadata.object(at: ObjectKey(bucket: "public-assets", path: try ObjectPath(path))))
            #expect(object.owner == "alice" && object.size == 80_000)
            let asset = try await client.request(.get, "/v1/assets/\(path)", headers: alice)
            #expect(asset.status == .ok, "\(asset.text)")
            let made = try await client.request(.get, url, headers: alice)
            #expect(made.status == .ok, "\(made.text)")
            #expect(made.json["path"] as? String == path && made.json["checksum"] as? String == Self.hex(bytes))
            #expect(made.json["visibility"] as? String == "public" && made.json["fileSize"] as? Int == 80_000)
            #expect((made.json["url"] as? String)?.contains(path) == true, "\(made.text)")
            // A Storage-API upload of the same caller is not an asset upload.
            let storage = try await client.request(
                .post, "/storage/v1/upload/resumable", headers: T.creation(alice, bucket: "assets", name: "alice/s.png", length: 10))
            let storageID = T.location(storage).split(separator: "/").last.map(String.init) ?? ""
            #expect(try await client.request(.get, "/v1/uploads/\(storageID)", headers: alice).status == .notFound)
        }
    }
}

extension SignedResumableUploadTests {
    /// The URL must be valid when the upload begins; the upload then outlives it. Whichever of its
    /// PUT and the resumable upload finishes first consumes it; the other is refused, not kept
    /// (the resumable upload ends as soon as it is asked about).
    @Test func aSignedUploadOutlivesItsURLAndRacesItsPUT() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make(
            {
                $0.uploadURLTTL = 300; $0.resumableTTL = 3600
            }, clock: clock.now)
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            func token(_ name: String) async throws -> String {
                let made = try await client.request(.post, "/storage/v1/object/upload/sign/assets/alice/\(name)", headers: alice)
                return try #require(made.json["token"] as? String, "\(made.text)")
            }
            let bytes = Fixture.png(5000)
            let slow = try await token("slow.png")
            let created = try await client.request(
                .post, "/storage/v1/upload/resumable/sign",
                headers: Self.signed(slow, T.creation([:], bucket: "assets", name: "alice/slow.png", length: 5000)))
            let url = T.location(created)
            #expect(
                try await client.request(.patch, url, headers: Self.signed(slow, T.patch([:], offset: 0)), body: Array(bytes[..<100])).status
                    == .noContent)
            clock.advance(900)
            let late = try await client.request(.patch, url, headers: Self.signed(slow, T.patch([:], offset: 100)), body: Array(bytes[100...]))
            #expect(late.status == .noContent && late.headers[HTTPField.Name("Tus-Complete")!] == "1", "\(late.text)")
            #expect(try await env.service.metadata.object(at: ObjectKey(bucket: "assets", path: try ObjectPath("alice/slow.png"))) != nil)
            // An expired URL starts nothing.
            let stale = try await client.request(
                .post, "/storage/v1/upload/resumable/sign",
                headers: Self.signed(slow, T.creation([:], bucket: "assets", name: "alice/slow.png", length: 5000)))
            #expect(stale.status == .forbidden, "\(stale.text)")

            let raced = try await token("raced.png")
            let second = try await client.request(
                .post, "/storage/v1/upload/resumable/sign",
                headers: Self.signed(raced, T.creation([:], bucket: "assets", name: "alice/raced.png", length: 5000)))
            let racedURL = T.location(second)
            let put = try await client.request(
                .put, "/storage/v1/object/upload/sign/assets/alice/raced.png?token=\(raced)", headers: [.contentType: "image/png"],
                body: Fixture.png(300))
            #expect(put.status == .ok, "\(put.text)")
            let lost = try await client.request(.patch, racedURL, headers: Self.signed(raced, T.patch([:], offset: 0)), body: bytes)
            #expect(lost.status == .notFound, "the upload ended when its URL was used: \(lost.text)")
            #expect(try await client.request(.head, racedURL, headers: Self.signed(raced)).status == .notFound)
            let kept = try await env.service.metadata.object(at: ObjectKey(bucket: "assets", path: try ObjectPath("alice/raced.png")))
            #expect(kept?.size == 300)
        }
    }
}

extension SignedResumableUploadTests {
    /// Videos, when the operator allows them (`--allowed-types …,video/mp4`), go through the
    /// Assets API as images do: recognised by their bytes (the `ftyp` box), named `.mp4`, served
    /// inline, no variants; bytes that are not a video are refused with what they are.
    @Test func aVideoIsAnAssetWhenAllowed() async throws {
        let env = try await TestEnvironment.make { $0.allowedTypes += ["video/mp4", "video/quicktime", "video/webm"] }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let film = Fixture.mp4(300_000)
            let created = try await client.request(
                .post, "/v1/uploads", headers: Self.assetCreation(alice, length: film.count, [("jobId", "films"), ("contentType", "video/mp4")]))
            #expect(created.status == .created, "\(created.text)")
            let url = T.location(created)
            let last = try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: film)
            #expect(last.status == .noContent && last.headers[HTTPField.Name("Depot-Content-Type")!] == "video/mp4", "\(last.text)")
            let asset = try await client.request(.get, url, headers: alice)
            let path = try #require(asset.json["path"] as? String, "\(asset.text)")
            #expect(path.hasPrefix("alice/films/") && path.hasSuffix(".mp4") && asset.json["variants"] == nil, "\(asset.text)")
            let served = try await client.request(.get, TestEnvironment.local(try #require(asset.json["url"] as? String)))
            #expect(served.bytes == film && served.headers[.contentType] == "video/mp4")
            #expect(served.headers[.contentDisposition]?.hasPrefix("inline") != false, "\(served.headers)")
            #expect(try await env.service.jobs?.jobCounts().values.reduce(0, +) ?? 0 == 0, "no variant job for a video")

            // A presigned upload of a QuickTime file, and text declared as a video.
            let mov = Fixture.bytes(Fixture.quickTimeMagic, size: 5000)
            let plan = try await client.json(
                .post, "/v1/presigned-uploads", headers: alice, ["jobId": "films", "contentType": "video/quicktime", "size": mov.count])
            #expect(plan.status == .created || plan.status == .ok, "\(plan.text)")
            let put = try await client.request(
                .put, TestEnvironment.local(try #require(plan.json["uploadUrl"] as? String)), headers: [.contentType: "video/quicktime"],
                body: mov)
            #expect(put.status == .ok || put.status == .created, "\(put.text)")
            #expect((put.json["path"] as? String)?.hasSuffix(".mov") == true, "\(put.text)")
            let before = try await env.snapshot()
            let text = try await client.upload(Fixture.textFile, type: "video/mp4", jobId: "films", headers: alice)
            #expect(text.status == .unsupportedMediaType, "\(text.text)")
            #expect(text.text.contains("no type Depot recognises") && text.text.contains("video/mp4"), "\(text.text)")
            #expect(try await env.snapshot() == before)
        }
    }
}
