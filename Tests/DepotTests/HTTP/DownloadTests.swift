import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@Suite("Downloads: HTTP semantics")
struct DownloadTests {
    @Test func rangesETagsHeadAndDisposition() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(10_000)
            let up = try await client.upload(png, headers: try await env.auth("alice"))
            let url = TestEnvironment.local(up.json["url"] as! String)

            let full = try await client.request(.get, url)
            let etag = try #require(full.headers[.eTag])
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""))
            #expect(full.headers[.lastModified]?.hasSuffix("GMT") == true)
            #expect(full.headers[.contentLength] == "10000")
            #expect(full.headers[.acceptRanges] == "bytes")
            #expect(full.headers[.cacheControl]?.hasPrefix("private, max-age=") == true)
            #expect(full.headers[.contentDisposition] == nil)

            let part = try await client.request(.get, url, headers: [.range: "bytes=100-199"])
            #expect(part.status == .partialContent)
            #expect(part.bytes == Array(png[100...199]))
            #expect(part.headers[.contentRange] == "bytes 100-199/10000")
            #expect(part.headers[.contentLength] == "100")

            let suffix = try await client.request(.get, url, headers: [.range: "bytes=-10"])
            #expect(suffix.bytes == Array(png.suffix(10)))
            let open = try await client.request(.get, url, headers: [.range: "bytes=9990-"])
            #expect(open.bytes == Array(png.suffix(10)))
            let clipped = try await client.request(.get, url, headers: [.range: "bytes=9000-20000"])
            #expect(clipped.headers[.contentRange] == "bytes 9000-9999/10000")

            let bad = try await client.request(.get, url, headers: [.range: "bytes=10000-"])
            #expect(bad.status == .rangeNotSatisfiable)
            #expect(bad.headers[.contentRange] == "bytes */10000")

            let notModified = try await client.request(.get, url, headers: [.ifNoneMatch: etag])
            #expect(notModified.status == .notModified)
            #expect(notModified.body.readableBytes == 0)
            #expect(try await client.request(.get, url, headers: [.ifNoneMatch: "\"other\""]).status == .ok)
            // If-Modified-Since: 304 when not modified since; ignored beside If-None-Match or when malformed.
            let lastModified = try #require(notModified.headers[.lastModified])
            #expect(try await client.request(.get, url, headers: [.ifModifiedSince: lastModified]).status == .notModified)
            #expect(try await client.request(.get, url, headers: [.ifModifiedSince: "Thu, 01 Jan 2015 00:00:00 GMT"]).status == .ok)
            #expect(try await client.request(.get, url, headers: [.ifModifiedSince: lastModified, .ifNoneMatch: "\"other\""]).status == .ok)
            #expect(try await client.request(.get, url, headers: [.ifModifiedSince: "yesterday"]).status == .ok)

            let ifRangeStale = try await client.request(.get, url, headers: [.range: "bytes=0-9", .ifRange: "\"stale\""])
            #expect(ifRangeStale.status == .ok)
            #expect(ifRangeStale.bytes.count == 10_000)

            let head = try await client.request(.head, url)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == "10000")
            #expect(head.headers[.eTag] == etag)
            #expect(head.body.readableBytes == 0)

            let dl = try await client.request(.get, url + "&download=r%C3%A9sum%C3%A9%22.png")
            #expect(dl.headers[.contentDisposition] == "attachment; filename=\"r_sum__.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9%22.png")
            let dlDefault = try await client.request(.get, url + "&download=")
            #expect(dlDefault.headers[.contentDisposition] == "attachment")
            let dlPlain = try await client.request(.get, url + "&download=report.png")
            #expect(dlPlain.headers[.contentDisposition] == "attachment; filename=report.png; filename*=UTF-8''report.png")
        }
    }

    @Test func corsOnObjectRoutesButNotOnTheAPI() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let up = try await client.upload(Fixture.png(), headers: try await env.auth("alice"))
            let url = TestEnvironment.local(up.json["url"] as! String)
            let origin: HTTPFields = [.origin: "https://app.example"]
            let get = try await client.request(.get, url, headers: origin)
            #expect(get.headers[.accessControlAllowOrigin] == "*")
            #expect(get.headers[.accessControlExposeHeaders]?.contains("ETag") == true)
            let pre = try await client.request(
                .options, "/storage/v1/object/upload/sign/assets/alice/x.png", headers: origin + [.accessControlRequestMethod: "PUT"])
            #expect(pre.status == .noContent)
            #expect(pre.headers[.accessControlAllowMethods]?.contains("PUT") == true)
            #expect(pre.headers[.accessControlAllowHeaders]?.contains("x-checksum-sha256") == true)
            let api = try await client.request(.get, "/v1/assets", headers: origin + (try await env.auth("alice")))
            #expect(api.headers[.accessControlAllowOrigin] == nil)
            #expect(try await client.request(.options, "/v1/assets", headers: origin).status == .forbidden)
        }
    }

    @Test func publicRouteOnlyServesPublicBuckets() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let up = try await client.upload(Fixture.png(), headers: try await env.auth("alice"))
            let path = up.json["path"] as! String
            // The private object is not reachable through the public route.
            #expect(try await client.request(.get, "/storage/v1/object/public/assets/\(path)").status == .notFound)
            // The authenticated route applies the tenant rule.
            #expect(
                try await client.request(.get, "/storage/v1/object/authenticated/assets/\(path)", headers: try await env.auth("alice")).status == .ok)
            #expect(
                try await client.request(.get, "/storage/v1/object/authenticated/assets/\(path)", headers: try await env.auth("bob")).status
                    == .forbidden)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/\(path)").status == .unauthorized)
        }
    }

    @Test func activeContentIsNeverInline() async throws {
        let env = try await TestEnvironment.make()
        // Through the service (a bucket that accepts any type), then served over HTTP.
        let key = ObjectKey(bucket: "assets", path: try ObjectPath("alice/page.html"))
        let blob = try await env.service.ingest(
            AsyncStream { c in
                c.yield(Fixture.buffer(Fixture.html)); c.finish()
            },
            rules: IngestRules(maxSize: 1000, allowedTypes: nil, declaredType: "text/html"))
        _ = try await env.service.metadata.putObject(
            ObjectRecord(
                bucket: key.bucket, path: key.path, owner: "alice", blobID: blob.id, size: blob.size,
                contentType: blob.contentType, sha256: blob.sha256, createdAt: Date()), upsert: false)
        try await env.live { client in
            let r = try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/page.html", headers: try await env.auth("alice"))
            #expect(r.status == .ok)
            #expect(r.headers[.contentDisposition]?.hasPrefix("attachment") == true)
            #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
        }
    }
}
