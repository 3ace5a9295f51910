import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// The Storage API's error envelope, which envelope each URL speaks, and bad input: every refusal
/// shows the clear error and stores nothing.
@Suite("Storage API: errors and bad input")
struct StorageAPITests {
    func envelope(_ r: LiveClient.Reply) -> (String?, String?, String?, String?) {
        (r.json["statusCode"] as? String, r.json["error"] as? String, r.json["code"] as? String, r.json["message"] as? String)
    }

    @Test func errorEnvelopeAndWhichURLsSpeakIt() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let missing = try await client.request(.get, "/storage/v1/bucket/nope", headers: service)
            #expect(missing.status == .badRequest)
            #expect(envelope(missing) == ("404", "Bucket not found", "NoSuchBucket", "Bucket not found"))
            // key order as upstream sends it
            #expect(missing.text.hasPrefix(#"{"statusCode":"404","error":"#))

            let route = try await client.request(.get, "/storage/v1/nowhere", headers: service)
            #expect(route.status == .notFound && envelope(route).0 == "404" && envelope(route).3 == "Route GET:/storage/v1/nowhere not found")

            let noJWT = try await client.request(.get, "/storage/v1/bucket")
            #expect(noJWT.status == .badRequest && envelope(noJWT).0 == "403" && envelope(noJWT).1 == "Unauthorized")

            // The object URLs the Assets API hands out keep Depot's envelope and real statuses for
            // browsers, and speak Supabase's to Supabase clients.
            let browser = try await client.request(.get, "/storage/v1/object/public/public-assets/alice/none.png")
            #expect(browser.status == .notFound && browser.errorCode == "not_found")
            var supabaseClient: HTTPFields = [:]
            supabaseClient[HTTPField.Name("X-Client-Info")!] = "supabase-py/2.34.1"
            let sdk = try await client.request(.get, "/storage/v1/object/public/public-assets/alice/none.png", headers: supabaseClient)
            #expect(sdk.status == .badRequest && envelope(sdk).0 == "404" && envelope(sdk).1 == "not_found")

            // The Assets API (`/v1`) is unchanged.
            let assets = try await client.request(.get, "/v1/assets/alice/none.png", headers: try await env.auth("alice"))
            #expect(assets.status == .notFound && assets.errorCode == "not_found")
        }
    }

    @Test func serviceOnlyEndpointsAnswerARealForbidden() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            let empty = try await client.request(.post, "/storage/v1/bucket/assets/empty", headers: alice)
            #expect(empty.status == .forbidden && envelope(empty).0 == "403" && envelope(empty).3 == "Access denied: Invalid role")
            #expect(try await client.request(.delete, "/storage/v1/cdn/assets", headers: alice).status == .forbidden)
            let purge = try await client.request(.delete, "/storage/v1/cdn/assets/a/b.png", headers: service)
            #expect(purge.status == .ok && purge.json["message"] as? String == "success")
            // Bucket changes by a user: refused with upstream's 400/"403", nothing changed.
            let create = try await client.json(.post, "/storage/v1/bucket", headers: alice, ["name": "mine"])
            #expect(create.status == .badRequest && envelope(create).0 == "403")
            #expect(try await env.service.metadata.bucket(named: "mine") == nil)
            let delete = try await client.request(.delete, "/storage/v1/bucket/assets", headers: service)
            #expect(envelope(delete).0 == "409")
            #expect(try await env.service.metadata.bucket(named: "assets") != nil)
            #expect(try await client.request(.get, "/storage/v1/version").text == DepotVersion.string)
        }
    }

    @Test func numericStringsAndEmptyBodiesAreAccepted() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let made = try await client.json(
                .post, "/storage/v1/bucket", headers: service, ["name": "b", "public": "true", "file_size_limit": "1000"])
            #expect(made.status == .ok, "\(made.text)")
            let bucket = try #require(try await env.service.metadata.bucket(named: "b"))
            #expect(bucket.isPublic && bucket.fileSizeLimit == 1000)
            var raw = service
            raw[.contentType] = "text/plain"
            #expect(try await client.request(.post, "/storage/v1/object/b/x.txt", headers: raw, body: Array("hi".utf8)).status == .ok)
            let signed = try await client.json(.post, "/storage/v1/object/sign/b/x.txt", headers: service, ["expiresIn": "3600", "download": true])
            #expect((signed.json["signedURL"] as? String)?.hasPrefix("/object/sign/b/x.txt?token=") == true)
            // `{}` and no body at all, as the js/py and the swift clients send them.
            #expect(try await client.json(.post, "/storage/v1/object/upload/sign/b/y.txt", headers: service, [String: Any]()).status == .ok)
            #expect(try await client.request(.post, "/storage/v1/bucket/b/empty", headers: service).status == .ok)
            #expect(try await client.json(.delete, "/storage/v1/bucket/b", headers: service, [String: Any]()).status == .ok)
            #expect(try await env.service.metadata.bucket(named: "b") == nil)
        }
    }

    @Test func badUploadsStoreNothing() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            _ = try await client.json(
                .post, "/storage/v1/bucket", headers: service,
                ["name": "img", "file_size_limit": 4096, "allowed_mime_types": ["image/png", "image/jpeg"]])
            let before = try await env.snapshot()
            func post(_ path: String, _ type: String, _ body: [UInt8], as headers: HTTPFields) async throws -> LiveClient.Reply {
                var h = headers
                h[.contentType] = type
                return try await client.request(.post, "/storage/v1/object/img/\(path)", headers: h, body: body)
            }
            let alice = try await env.auth("alice")
            let cases: [(String, String, [UInt8], HTTPFields, String, String)] = [
                ("alice/a.png", "image/png", Array("%PDF-1.4 not an image".utf8), service, "415", "invalid_mime_type"),  // renamed PDF
                ("alice/a.png", "text/plain", Array("plain text".utf8), service, "415", "invalid_mime_type"),  // type not allowed
                ("alice/big.png", "image/png", Fixture.png(5000), service, "413", "Payload too large"),  // bucket limit
                ("bob/a.png", "image/png", Fixture.png(100), alice, "403", "Unauthorized"),  // another tenant's folder
                ("alice/%2E%2E/bob/a.png", "image/png", Fixture.png(100), alice, "400", "InvalidKey"),  // dot segment
                ("alice/a%2Fb.png", "image/png", Fixture.png(100), alice, "400", "InvalidKey"),  // encoded slash
            ]
            for (path, type, body, headers, status, error) in cases {
                let r = try await post(path, type, body, as: headers)
                #expect(r.status == .badRequest && envelope(r).0 == status && envelope(r).1 == error, "\(path) \(type): \(r.text)")
            }
            // Past the limit while streaming: no Content-Length to refuse up front.
            var chunked = service
            chunked[.contentType] = "image/png"
            chunked[.transferEncoding] = "chunked"
            let streamed = try await client.request(.post, "/storage/v1/object/img/alice/streamed.png", headers: chunked, body: Fixture.png(9000))
            #expect(envelope(streamed).0 == "413", "\(streamed.text)")
            // A missing bucket.
            var h = service
            h[.contentType] = "image/png"
            let nobucket = try await client.request(.post, "/storage/v1/object/none/a.png", headers: h, body: Fixture.png(100))
            #expect(envelope(nobucket).1 == "Bucket not found")

            let after = try await env.snapshot()
            #expect(after.objects == before.objects && after.blobFiles == before.blobFiles && after.tempFiles == 0, "\(after)")
        }
    }

    @Test func bucketTypesDecideOnTheBytes() throws {
        let images = try BucketTypes(validating: ["image/*", ""])
        #expect(images.entries == ["image/*"])
        #expect(try BucketTypes.decide(sniffed: "image/png", declared: "text/plain;charset=UTF-8", allowed: images) == "image/png")
        #expect(try BucketTypes.decide(sniffed: "image/png", declared: "image/png", allowed: images) == "image/png")
        #expect(throws: StorageError.self) { try BucketTypes.decide(sniffed: "application/pdf", declared: "image/png", allowed: images) }
        // Unrecognised bytes claiming a type the sniffer knows are refused; other types are checked as declared.
        #expect(throws: StorageError.self) { try BucketTypes.decide(sniffed: nil, declared: "image/png", allowed: images) }
        let text = try BucketTypes(validating: ["text/plain", "application/json"])
        #expect(try BucketTypes.decide(sniffed: nil, declared: "text/plain;charset=UTF-8", allowed: text) == "text/plain;charset=UTF-8")
        #expect(throws: StorageError.self) { try BucketTypes.decide(sniffed: nil, declared: "text/html", allowed: text) }
        // No list: the declared type is kept, as upstream does.
        #expect(try BucketTypes.decide(sniffed: "image/png", declared: "image/jpeg", allowed: nil) == "image/jpeg")
        #expect(throws: StorageError.self) { try BucketTypes(validating: ["not a type"]) }
        #expect(try BucketTypes(validating: ["*"]).accepts("anything/at-all"))
    }
}
