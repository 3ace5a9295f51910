import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@Suite("Assets API over HTTP")
struct AssetsAPITests {
    @Test func uploadSignDownloadFlipDelete() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png(5000)
            let up = try await client.upload(png, jobId: "job-7", query: "&suffix=_112x112", headers: alice)
            #expect(up.status == .created)
            let path = try #require(up.json["path"] as? String)
            #expect(path.hasPrefix("alice/job-7/"))
            #expect(path.hasSuffix("_112x112.png"))
            #expect(up.json["checksum"] as? String == png.sha256Hex)
            #expect(up.json["fileSize"] as? Int == 5000)
            #expect(up.json["contentType"] as? String == "image/png")
            #expect(up.json["visibility"] as? String == "private")
            #expect(up.json["expiresAt"] is String)
            let signed = try #require(up.json["url"] as? String)
            #expect(signed.contains("/storage/v1/object/sign/assets/"))

            // The signed URL works with no headers.
            let got = try await client.request(.get, TestEnvironment.local(signed))
            #expect(got.status == .ok)
            #expect(got.bytes == png)
            #expect(got.headers[.contentType] == "image/png")
            #expect(got.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")

            // GET /v1/assets/{path}
            let info = try await client.request(.get, "/v1/assets/\(path)", headers: alice)
            #expect(info.status == .ok)
            #expect(info.json["createdAt"] is String)
            #expect(info.json["updatedAt"] is String)

            // Flip to public: the public URL works, the old signed URL stops working.
            let flip = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
            #expect(flip.status == .ok)
            #expect(flip.json["visibility"] as? String == "public")
            #expect(flip.json["expiresAt"] is NSNull)
            let publicURL = try #require(flip.json["url"] as? String)
            #expect(publicURL == "\(TestEnvironment.baseURL)/storage/v1/object/public/public-assets/\(path)")
            let pub = try await client.request(.get, TestEnvironment.local(publicURL))
            #expect(pub.status == .ok)
            #expect(pub.bytes == png)
            #expect(pub.headers[.cacheControl] == "public, max-age=31536000")
            #expect(try await client.request(.get, TestEnvironment.local(signed)).status != .ok)

            // Flip back: the public URL answers 404 at once.
            let back = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "private"])
            #expect(back.json["visibility"] as? String == "private")
            #expect(try await client.request(.get, TestEnvironment.local(publicURL)).status == .notFound)
            let newSigned = try #require(back.json["url"] as? String)
            #expect(try await client.request(.get, TestEnvironment.local(newSigned)).status == .ok)

            // Delete: 204, then 404, and the blob is gone.
            #expect(try await client.request(.delete, "/v1/assets/\(path)", headers: alice).status == .noContent)
            #expect(try await client.request(.delete, "/v1/assets/\(path)", headers: alice).status == .notFound)
            #expect(try await client.request(.get, TestEnvironment.local(newSigned)).status == .notFound)
            #expect(try await env.snapshot() == .init(blobFiles: 0, tempFiles: 0, objects: [], intents: []))
        }
    }

    @Test func flipCopiesNoBytes() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let up = try await client.upload(Fixture.png(100_000), headers: alice)
            let path = try #require(up.json["path"] as? String)
            let key = ObjectKey(bucket: "assets", path: try ObjectPath(path))
            let before = try #require(try await env.service.metadata.object(at: key))
            _ = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
            let after = try #require(try await env.service.metadata.object(at: ObjectKey(bucket: "public-assets", path: key.path)))
            #expect(after.blobID == before.blobID)
            #expect(after.generation != before.generation)
            #expect(try await env.snapshot().blobFiles == 1)
        }
    }

    @Test func allFourImageTypesGetTheirExtension() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            for (bytes, type, ext) in [
                (Fixture.png(), "image/png", "png"), (Fixture.jpeg(), "image/jpeg", "jpg"),
                (Fixture.gif(), "image/gif", "gif"), (Fixture.webp(), "image/webp", "webp"),
            ] {
                let up = try await client.upload(bytes, type: type, headers: alice)
                #expect(up.status == .created)
                #expect((up.json["path"] as? String)?.hasSuffix(".\(ext)") == true)
            }
            // No declared type: the sniffed one is used.
            let bare = try await client.upload(Fixture.jpeg(), type: nil, headers: alice)
            #expect(bare.status == .created)
            #expect(bare.json["contentType"] as? String == "image/jpeg")
        }
    }

    @Test func multipartUploadWithFieldsBeforeAndAfterTheFile() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png(200_000)
            let body = Fixture.multipart(fields: [("jobId", "mp-1")], file: png, fieldsAfter: [("suffix", "_56x56"), ("visibility", "public")])
            let r = try await client.request(
                .post, "/v1/assets", headers: alice + [.contentType: "multipart/form-data; boundary=depot-boundary-1234"], body: body)
            #expect(r.status == .created)
            let path = try #require(r.json["path"] as? String)
            #expect(path.hasPrefix("alice/mp-1/") && path.hasSuffix("_56x56.png"))
            #expect(r.json["visibility"] as? String == "public")
            #expect(r.json["checksum"] as? String == png.sha256Hex)
            let got = try await client.request(.get, TestEnvironment.local(try #require(r.json["url"] as? String)))
            #expect(got.bytes == png)
        }
    }

    @Test func seedRoutesKeepTheSeedShapes() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png(3000)
            let body = Fixture.multipart(file: png)
            let r = try await client.request(
                .post, "/upload?job_id=seed-1", headers: alice + [.contentType: "multipart/form-data; boundary=depot-boundary-1234"], body: body)
            #expect(r.status == .ok)
            #expect(Set(r.json.keys) == ["path", "url"])
            #expect(try await client.request(.get, TestEnvironment.local(r.json["url"] as! String)).bytes == png)

            let p = try await client.request(.post, "/presigned-upload?content_type=image/png&file_size=\(png.count)&job_id=seed-2", headers: alice)
            #expect(p.status == .ok)
            #expect(Set(p.json.keys) == ["upload_url", "path"])
            let put = try await client.request(
                .put, TestEnvironment.local(p.json["upload_url"] as! String), headers: [.contentType: "image/png"], body: png)
            #expect(put.status == .created)
            #expect(put.json["path"] as? String == p.json["path"] as? String)
        }
    }

    @Test func putNamedPathReplacesAndIfNoneMatchRefuses() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let first = Fixture.png(100), second = Fixture.jpeg(200)
            let a = try await client.request(.put, "/v1/assets/alice/profile/avatar", headers: alice + [.contentType: "image/png"], body: first)
            #expect(a.status == .created)
            let b = try await client.request(.put, "/v1/assets/alice/profile/avatar", headers: alice + [.contentType: "image/jpeg"], body: second)
            #expect(b.status == .ok)
            #expect(b.json["contentType"] as? String == "image/jpeg")
            let before = try await env.snapshot()
            #expect(before.blobFiles == 1)  // the replaced blob was deleted after the commit
            let c = try await client.request(
                .put, "/v1/assets/alice/profile/avatar", headers: alice + [.contentType: "image/png", .ifNoneMatch: "*"], body: first)
            #expect(c.status == .conflict)
            #expect(c.errorCode == "already_exists")
            #expect(try await env.snapshot() == before)
            let got = try await client.request(.get, TestEnvironment.local(b.json["url"] as! String))
            #expect(got.bytes == second)
        }
    }

    @Test func listingPagesThroughOnlyTheCallersObjects() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice"), alice2 = try await env.auth("alice2")
            for i in 0..<5 { _ = try await client.upload(Fixture.png(), jobId: "list-\(i % 2)", headers: alice) }
            _ = try await client.upload(Fixture.png(), jobId: "list-0", query: "&visibility=public", headers: alice)
            _ = try await client.upload(Fixture.png(), jobId: "list-0", headers: alice2)
            var seen: [String] = []
            var cursor: String? = nil
            repeat {
                let q = "/v1/assets?limit=2" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
                let r = try await client.request(.get, q, headers: alice)
                #expect(r.status == .ok)
                let items = try #require(r.json["items"] as? [[String: Any]])
                #expect(items.count <= 2)
                seen += items.map { $0["path"] as! String }
                cursor = r.json["nextCursor"] as? String
            } while cursor != nil
            #expect(seen.count == 6)
            #expect(seen == seen.sorted())
            #expect(seen.allSatisfy { $0.hasPrefix("alice/") })
            let filtered = try await client.request(.get, "/v1/assets?prefix=list-1/", headers: alice)
            #expect((filtered.json["items"] as? [[String: Any]])?.count == 2)
            #expect(try await client.request(.get, "/v1/assets?limit=0", headers: alice).status == .badRequest)
            #expect(try await client.request(.get, "/v1/assets?limit=1001", headers: alice).status == .badRequest)
        }
    }

    @Test func batchSigningAndBatchDelete() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            var paths: [String] = []
            for _ in 0..<3 { paths.append(try await client.upload(Fixture.png(), headers: alice).json["path"] as! String) }
            let bob = try await client.upload(Fixture.png(), headers: try await env.auth("bob")).json["path"] as! String
            let r = try await client.json(
                .post, "/v1/signed-urls", headers: alice, ["paths": paths + ["alice/none.png", bob, "alice/../x"], "expiresIn": "600"])
            #expect(r.status == .ok)
            let urls = try #require(r.json["urls"] as? [String: String])
            #expect(Set(urls.keys) == Set(paths))
            let errors = try #require(r.json["errors"] as? [String: [String: String]])
            #expect(errors["alice/none.png"]?["code"] == "not_found")
            #expect(errors[bob]?["code"] == "forbidden")
            #expect(errors["alice/../x"]?["code"] == "invalid_path")
            for (_, url) in urls { #expect(try await client.request(.get, TestEnvironment.local(url)).status == .ok) }
            #expect(urls.values.allSatisfy { TestEnvironment.local($0).contains("token=") })

            let d = try await client.json(.post, "/v1/assets/delete", headers: alice, ["paths": paths + [bob]])
            #expect(d.status == .ok)
            #expect(Set(d.json["deleted"] as! [String]) == Set(paths))
            #expect((d.json["errors"] as? [String: [String: String]])?[bob]?["code"] == "forbidden")
            #expect(try await env.snapshot().objects == ["assets/\(bob)"])
        }
    }

    @Test func revokeKillsOutstandingLinks() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let up = try await client.upload(Fixture.png(), headers: alice)
            let url = TestEnvironment.local(up.json["url"] as! String)
            #expect(try await client.request(.get, url).status == .ok)
            let r = try await client.json(.post, "/v1/assets/revoke", headers: alice, ["paths": [up.json["path"] as! String]])
            #expect(r.status == .ok)
            let after = try await client.request(.get, url)
            #expect(after.status == .forbidden)
            #expect(after.errorCode == "url_expired")
        }
    }

    @Test func serviceRoleMayActOnAnyTenant() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let up = try await client.upload(Fixture.png(), headers: try await env.auth("bob"))
            let path = up.json["path"] as! String
            let service = try await env.auth("ops", role: .serviceRole)
            #expect(try await client.request(.get, "/v1/assets/\(path)", headers: service).status == .ok)
            #expect(try await client.request(.delete, "/v1/assets/\(path)", headers: service).status == .noContent)
        }
    }

    @Test func healthAndMetrics() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let h = try await client.request(.get, "/health")
            #expect(h.status == .ok)
            #expect(h.json["status"] as? String == "ok")
            let head = try await client.request(.head, "/health")
            #expect(head.status == .ok && head.bytes.isEmpty)
            _ = try await client.upload(Fixture.png(1234), headers: try await env.auth("alice"))
            _ = try await client.upload(Fixture.textFile, headers: try await env.auth("alice"))
            // Metrics are the operator's: the service role only.
            #expect(try await client.request(.get, "/metrics").status == .unauthorized)
            #expect(try await client.request(.get, "/metrics", headers: try await env.auth("alice")).status == .forbidden)
            let anonKey = "Bearer " + env.jwt.apiKey(role: .anon)
            #expect(try await client.request(.get, "/metrics", headers: [.authorization: anonKey]).status == .forbidden)
            let m = try await client.request(.get, "/metrics", headers: [.authorization: "Bearer \(try await env.token(nil, role: .serviceRole))"])
            #expect(m.status == .ok)
            #expect(m.text.contains("depot_http_requests_total{route=\"/v1/assets\",status=\"201\"} 1"))
            #expect(m.text.contains("depot_bytes_in_total 1234"))
            #expect(m.text.contains("depot_upload_rejections_total{reason=\"unsupported_media_type\"} 1"))
        }
    }

    @Test func healthReportsABrokenStore() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            try FileManager.default.removeItem(atPath: env.dir + "/tmp")
            let h = try await client.request(.get, "/health")
            #expect(h.status == .serviceUnavailable)
            #expect(h.errorCode == "unavailable")
            #expect(h.headers[.retryAfter] == "5")
        }
    }
}

func + (lhs: HTTPFields, rhs: HTTPFields) -> HTTPFields {
    var out = lhs
    for f in rhs { out[f.name] = f.value }
    return out
}
