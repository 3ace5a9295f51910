import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@Suite("Presigned (two-phase) uploads")
struct PresignedUploadTests {
    func presign(
        _ client: LiveClient, _ env: TestEnvironment, size: Int, type: String = "image/png", checksum: String? = nil, visibility: String? = nil
    ) async throws -> (url: String, path: String) {
        var body: [String: Any] = ["jobId": "direct", "contentType": type, "size": size]
        if let checksum { body["checksum"] = checksum }
        if let visibility { body["visibility"] = visibility }
        let r = try await client.json(.post, "/v1/presigned-uploads", headers: try await env.auth("alice"), body)
        #expect(r.status == .created, "\(r.text)")
        #expect(r.json["method"] as? String == "PUT")
        #expect((r.json["headers"] as? [String: String])?["Content-Type"] == type)
        #expect(r.json["expiresAt"] is String)
        return (TestEnvironment.local(try #require(r.json["uploadUrl"] as? String)), try #require(r.json["path"] as? String))
    }

    func intentState(_ env: TestEnvironment, url: String) async throws -> UploadIntent.State? {
        let token = String(url.split(separator: "token=").last!)
        let id = String(token.split(separator: ".")[3])
        return try await env.service.metadata.intent(id: id)?.state
    }

    @Test func happyPathThenSingleUse() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(20_000)
            let (url, path) = try await presign(client, env, size: png.count, checksum: png.sha256Hex, visibility: "public")
            #expect(url.hasPrefix("/storage/v1/object/upload/sign/public-assets/alice/direct/"))
            let put = try await client.request(.put, url, headers: [.contentType: "image/png"], body: png)
            #expect(put.status == .created)
            #expect(put.json["path"] as? String == path)
            #expect(put.json["checksum"] as? String == png.sha256Hex)
            #expect(put.json["fileSize"] as? Int == png.count)
            #expect(try await intentState(env, url: url) == .consumed)
            let got = try await client.request(.get, "/storage/v1/object/public/public-assets/\(path)")
            #expect(got.bytes == png)

            let before = try await env.snapshot()
            let again = try await client.request(.put, url, headers: [.contentType: "image/png"], body: Fixture.png(20_000))
            #expect(again.status == .conflict)
            #expect(again.errorCode == "upload_consumed")
            #expect(try await env.snapshot() == before)
            #expect(try await client.request(.get, "/storage/v1/object/public/public-assets/\(path)").bytes == png)
        }
    }

    @Test func failedPutsStoreNothingAndLeaveTheURLUsable() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(10_000)
            let (url, path) = try await presign(client, env, size: png.count, checksum: png.sha256Hex)
            let tampered = url.dropLast(2) + (url.hasSuffix("AA") ? "BB" : "AA")
            let cases: [(String, HTTPFields, [UInt8], HTTPResponse.Status, String)] = [
                (url, [.contentType: "image/png"], Array(png.prefix(5000)), .badRequest, "size_mismatch"),
                (url, [.contentType: "image/png"], png + [1, 2, 3], .contentTooLarge, "payload_too_large"),
                (url, [.contentType: "image/jpeg"], Fixture.jpeg(10_000), .unsupportedMediaType, "media_type_mismatch"),
                (url, [.contentType: "image/png"], Fixture.jpeg(10_000), .unsupportedMediaType, "unsupported_media_type"),
                (url, [.contentType: "image/png"], Fixture.png(10_000), .badRequest, "checksum_mismatch"),
                (String(tampered), [.contentType: "image/png"], png, .forbidden, "signature_invalid"),
                (url.replacingOccurrences(of: "token=", with: "token=x"), [.contentType: "image/png"], png, .forbidden, "signature_invalid"),
                (url.components(separatedBy: "?")[0], [.contentType: "image/png"], png, .forbidden, "signature_invalid"),
                // The token is bound to its path: another path with the same token fails.
                (url.replacingOccurrences(of: "/direct/", with: "/other/"), [.contentType: "image/png"], png, .forbidden, "signature_invalid"),
            ]
            let before = try await env.snapshot()
            for (u, headers, body, status, code) in cases {
                let r = try await client.request(.put, u, headers: headers, body: body)
                #expect(r.status == status, "\(code): \(r.text)")
                #expect(r.errorCode == code)
                #expect(try await env.snapshot() == before, "\(code)")
                #expect(try await intentState(env, url: url) == .pending, "\(code)")
            }
            // Shorter or longer than declared without a Content-Length, streamed.
            let short = try await Streaming.send(
                .PUT, port: client.port, url, headers: [("Content-Type", "image/png")], chunks: [Array(png.prefix(4000)), Array(png[4000..<9000])])
            #expect(short.status == 400)
            #expect(short.errorCode == "size_mismatch")
            let long = try await Streaming.send(.PUT, port: client.port, url, headers: [("Content-Type", "image/png")], chunks: [png, [1]])
            #expect(long.status == 413)
            #expect(try await env.snapshot() == before)
            #expect(try await intentState(env, url: url) == .pending)
            // After all that, the real upload still works — once.
            let ok = try await client.request(.put, url, headers: [.contentType: "image/png"], body: png)
            #expect(ok.status == .created)
            #expect(ok.json["path"] as? String == path)
        }
    }

    @Test func scopesAreSeparate() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let up = try await client.upload(Fixture.png(), headers: alice)
            let download = TestEnvironment.local(up.json["url"] as! String)
            // A download URL cannot upload.
            let asUpload = download.replacingOccurrences(of: "/object/sign/", with: "/object/upload/sign/")
            let put = try await client.request(.put, asUpload, headers: [.contentType: "image/png"], body: Fixture.png())
            #expect(put.status == .forbidden)
            #expect(put.errorCode == "signature_invalid")
            // An upload URL cannot download.
            let (url, _) = try await presign(client, env, size: 100)
            let asDownload = url.replacingOccurrences(of: "/object/upload/sign/", with: "/object/sign/")
            let get = try await client.request(.get, asDownload)
            #expect(get.status == .forbidden)
            #expect(get.errorCode == "signature_invalid")
        }
    }

    @Test func expiryOfUploadAndDownloadURLs() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make(clock: clock.now)
        try await env.live { client in
            let alice = try await env.auth("alice")
            let up = try await client.upload(Fixture.png(), headers: alice)
            let download = TestEnvironment.local(up.json["url"] as! String)
            let (url, _) = try await presign(client, env, size: 1000)
            clock.advance(3601)
            let before = try await env.snapshot()
            let get = try await client.request(.get, download)
            #expect(get.status == .forbidden)
            #expect(get.errorCode == "url_expired")
            let put = try await client.request(.put, url, headers: [.contentType: "image/png"], body: Fixture.png(1000))
            #expect(put.status == .forbidden)
            #expect(put.errorCode == "url_expired")
            #expect(try await env.snapshot() == before)
            // Garbage collection removes the expired intent after the grace period.
            clock.advance(3600)
            let report = try await env.service.collectGarbage()
            #expect(report.expiredIntents == 1)
            #expect(try await intentState(env, url: url) == nil)
        }
    }

    @Test func createRefusesBadRequests() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let before = try await env.snapshot()
            let cases: [([String: Any], HTTPResponse.Status, String)] = [
                (["jobId": "j", "contentType": "image/svg+xml", "size": 10], .unsupportedMediaType, "unsupported_media_type"),
                (["jobId": "j", "contentType": "text/html", "size": 10], .unsupportedMediaType, "unsupported_media_type"),
                (["jobId": "j", "contentType": "image/png", "size": 10 * 1024 * 1024 + 1], .contentTooLarge, "payload_too_large"),
                (["jobId": "j", "contentType": "image/png", "size": 0], .badRequest, "invalid_request"),
                (["jobId": "j", "contentType": "image/png", "size": 10, "checksum": "xyz"], .badRequest, "invalid_request"),
                (["jobId": "../x", "contentType": "image/png", "size": 10], .badRequest, "invalid_request"),
                (["jobId": "j", "contentType": "image/png", "size": 10, "visibility": "secret"], .badRequest, "invalid_request"),
                (["contentType": "image/png", "size": 10], .badRequest, "invalid_request"),
            ]
            for (body, status, code) in cases {
                let r = try await client.json(.post, "/v1/presigned-uploads", headers: alice, body)
                #expect(r.status == status, "\(body)")
                #expect(r.errorCode == code, "\(body)")
            }
            #expect(try await env.snapshot() == before)
            #expect(before.intents.isEmpty)
        }
    }
}
