import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// Stored XSS through content types (issue 14, items 5 and 12): a declared type is one
/// `type/subtype`, a copy's type is checked like an upload's, only an allow-list is served
/// inline, and every object answer carries nosniff, a sandboxing CSP and CORP.
@Suite("Security: content types and object headers")
struct ContentTypeTests {
    static func expectObjectHeaders(_ r: LiveClient.Reply, inline: Bool, _ what: String) {
        #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff", "\(what)")
        #expect(r.headers[.contentSecurityPolicy] == "sandbox", "\(what)")
        #expect(r.headers[HTTPField.Name("Cross-Origin-Resource-Policy")!] == "cross-origin", "\(what)")
        let disposition = r.headers[.contentDisposition]
        #expect(inline ? disposition == nil : disposition?.hasPrefix("attachment") == true, "\(what): \(disposition ?? "inline")")
    }

    @Test func malformedTypesAreRefusedAndNothingIsStored() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "files"]).status == .ok)
            var up = try await env.auth("alice")
            for bad in ["text/plain, text/html", "text/plain,text/html", "text/html;", "image/png junk", "text", "a/b; c", "image/*", "*/*"]
            where bad != "text/html;" {
                up[.contentType] = bad
                let r = try await client.request(
                    .post, "/storage/v1/object/files/alice/\(UUID().uuidString).txt", headers: up, body: Array("hi".utf8))
                #expect(r.status == .badRequest && (r.json["statusCode"] as? String) == "400", "\(bad): \(r.text)")
                let assets = try await client.upload(Fixture.png(), type: bad, headers: try await env.auth("alice"))
                #expect(assets.status == .badRequest && assets.errorCode == "invalid_request", "\(bad): \(assets.text)")
            }
            #expect(try await env.service.metadata.listObjects(in: "files", prefix: "", after: nil, limit: 10).isEmpty)
            #expect(try await env.snapshot().objects.isEmpty)
            #expect(try await env.snapshot().blobFiles == 0)
        }
    }

    @Test func onlyAnAllowListIsServedInline() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "files", "public": true]).status == .ok)
            let alice = try await env.auth("alice")
            let cases: [(type: String, inline: Bool)] = [
                ("application/rss+xml", false), ("application/vnd.evil+xml", false), ("text/xsl", false), ("text/html", false),
                ("image/svg+xml", false), ("application/pdf", false), ("text/plain; charset=utf-8", true), ("video/mp4", true),
            ]
            for (i, c) in cases.enumerated() {
                var h = alice
                h[.contentType] = c.type
                let name = "alice/f\(i)"
                let up = try await client.request(.post, "/storage/v1/object/files/\(name)", headers: h, body: Fixture.html)
                #expect(up.status == .ok, "\(c.type): \(up.text)")
                // Twice: from the router, then (when cacheable) from the pipeline.
                for _ in 0..<2 {
                    let r = try await client.request(.get, "/storage/v1/object/public/files/\(name)")
                    #expect(r.status == .ok)
                    Self.expectObjectHeaders(r, inline: c.inline, c.type)
                }
            }
            // A real image is inline, with the same protective headers, on both paths.
            let png = try await client.upload(Fixture.png(), headers: alice)
            let url = TestEnvironment.local(png.json["url"] as! String)
            for _ in 0..<2 { Self.expectObjectHeaders(try await client.request(.get, url), inline: true, "image/png") }
            var conditional: HTTPFields = [:]
            conditional[.ifNoneMatch] = try await client.request(.get, url).headers[.eTag]
            let notModified = try await client.request(.get, url, headers: conditional)
            #expect(notModified.status == .notModified)
            Self.expectObjectHeaders(notModified, inline: true, "304")
        }
    }

    /// `copy` once took any `metadata.mimetype`: a PNG copied to `x.html` as
    /// `text/plain,text/html` was served inline. The copy's type now parses or is refused, and what
    /// it stores is served by the same allow-list.
    @Test func aCopysTypeIsCheckedLikeAnUploads() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "pub", "public": true]).status == .ok)
            #expect(
                try await client.json(
                    .post, "/storage/v1/bucket", headers: service, ["name": "imgs", "public": true, "allowed_mime_types": ["image/*"]]
                ).status == .ok)
            var up = try await env.auth("alice")
            up[.contentType] = "image/png"
            #expect(try await client.request(.post, "/storage/v1/object/pub/alice/a.png", headers: up, body: Fixture.png()).status == .ok)
            let alice = try await env.auth("alice")
            func copy(_ to: String, bucket: String = "pub", type: String) async throws -> LiveClient.Reply {
                try await client.json(
                    .post, "/storage/v1/object/copy", headers: alice,
                    [
                        "bucketId": "pub", "sourceKey": "alice/a.png", "destinationBucket": bucket, "destinationKey": to,
                        "metadata": ["mimetype": type],
                    ])
            }
            // Refused, not dropped (a type with a line break once kept the source's type silently).
            for type in ["text/plain,text/html", "text/html\r\nX: y", "image/*", "text/html\u{0}"] {
                let bad = try await copy("alice/x.html", type: type)
                #expect(bad.status == .badRequest && bad.text.contains("type/subtype"), "\(type): \(bad.text)")
            }
            #expect(try await env.service.metadata.object(at: ObjectKey(bucket: "pub", path: try ObjectPath("alice/x.html"))) == nil)
            // Into a bucket that allows images only, the bytes decide: a PNG stays a PNG.
            let decided = try await copy("alice/x.html", bucket: "imgs", type: "text/html")
            #expect(decided.status == .ok, "\(decided.text)")
            #expect(
                try await env.service.metadata.object(at: ObjectKey(bucket: "imgs", path: try ObjectPath("alice/x.html")))?.contentType == "image/png"
            )
            // Where any type is allowed the type is kept, but HTML is never inline.
            let html = try await copy("alice/y.html", type: "text/html")
            #expect(html.status == .ok, "\(html.text)")
            let r = try await client.request(.get, "/storage/v1/object/public/pub/alice/y.html")
            #expect(r.status == .ok && r.headers[.contentType] == "text/html")
            Self.expectObjectHeaders(r, inline: false, "copied html")
        }
    }

    /// Bidirectional controls cannot be in names, and are dropped from `download=` names; private
    /// objects of the Storage API are never stored by shared caches.
    @Test func bidiNamesAndPrivateCaching() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            var up = alice
            up[.contentType] = "image/png"
            let spoof = try await client.request(.post, "/storage/v1/object/assets/alice/gnp%E2%80%AE.exe", headers: up, body: Fixture.png())
            #expect(spoof.json["statusCode"] as? String == "400", "\(spoof.text)")
            #expect(try await env.snapshot().objects.isEmpty)
            let png = try await client.upload(Fixture.png(), headers: alice)
            let url = TestEnvironment.local(png.json["url"] as! String)
            let named = try await client.request(.get, url + "&download=cod%E2%80%AEgnp.exe")
            let disposition = try #require(named.headers[.contentDisposition])
            #expect(!disposition.contains("%E2%80%AE") && disposition.contains("codgnp.exe"), "\(disposition)")
            let path = png.json["path"] as! String
            for stored in [nil, "max-age=3600", "public, max-age=60", "no-store"] as [String?] {
                if let stored {
                    var h = up
                    h[HTTPField.Name("x-upsert")!] = "true"
                    h[.cacheControl] = stored
                    #expect(try await client.request(.put, "/storage/v1/object/assets/\(path)", headers: h, body: Fixture.png()).status == .ok)
                }
                let r = try await client.request(.get, "/storage/v1/object/authenticated/assets/\(path)", headers: alice)
                let cc = try #require(r.headers[.cacheControl])
                #expect(cc.hasPrefix("private") && !cc.contains("public"), "\(stored ?? "default"): \(cc)")
            }
        }
    }
}
