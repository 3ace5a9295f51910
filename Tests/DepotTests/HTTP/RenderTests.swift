import DepotCore
import DepotImages
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// Supabase's render API over real HTTP: the asked sizes and formats, the three ways in (public,
/// authenticated, signed with the transformation in the token), renditions made once and kept
/// (single flight, ETag/304), ended by an overwrite, bounded; bad requests refused clearly with
/// nothing stored.
@Suite("Image transformations over HTTP", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct RenderTests {
    static let vips = VipsImageRenderer(threads: 2)

    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite, postgresS3
        var testDescription: String { rawValue }
        static let testable = allCases.filter { $0 != .postgresS3 || (PostgresTestServer.enabled && S3TestServer.enabled) }
    }

    struct Setup: Sendable {
        let env: TestEnvironment
        let client: LiveClient
        let counting: CountingRenderer
        let alice: HTTPFields
        let service: HTTPFields
    }

    /// Buckets `pub` (public) and `priv`, and alice's 640 × 480 PNG in each at `alice/x.png`.
    func withImages(
        _ backend: Backend = .sqlite, _ configure: @escaping (inout StorageSettings) -> Void = { _ in },
        _ body: @escaping @Sendable (Setup) async throws -> Void
    ) async throws {
        var stop: @Sendable () -> Void = {}
        var store: (any MetadataStore & JobStore)? = nil
        var blobs: (any BlobStore)? = nil
        if backend == .postgresS3 {
            let (pg, s) = try await PostgresTestServer.makeStore()
            (store, stop) = (pg, s)
            blobs = try await S3TestServer.makeStore()
        }
        defer { stop() }
        // Slow enough that concurrent requests meet in flight.
        let counting = CountingRenderer(Self.vips, delay: .milliseconds(100))
        let env = try await TestEnvironment.make(
            { s in
                s.variants = []
                configure(&s)
            }, blobs: blobs, metadata: store, images: counting)
        try await env.live { client in
            let service: HTTPFields = [.authorization: "Bearer \(try await env.token("svc", role: .serviceRole))"]
            let alice = try await env.auth("alice")
            for (name, isPublic) in [("pub", true), ("priv", false)] {
                let made = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": name, "public": isPublic])
                #expect(made.status == .ok)
                var headers = alice
                headers[.contentType] = "image/png"
                let up = try await client.request(
                    .post, "/storage/v1/object/\(name)/alice/x.png", headers: headers, body: ImageFixture.png(width: 640, height: 480))
                #expect(up.status == .ok)
            }
            try await body(Setup(env: env, client: client, counting: counting, alice: alice, service: service))
        }
    }

    /// Width, height and format of an image's bytes.
    func dimensions(_ reply: LiveClient.Reply) -> [Int]? {
        VipsImageRenderer.header(of: reply.bytes).map { [$0.width, $0.height] }
    }

    @Test(arguments: Backend.testable)
    func rendersHaveTheAskedSizeAndFormat(_ backend: Backend) async throws {
        try await withImages(backend) { s in
            let c = s.client
            let base = "/storage/v1/render/image/public/pub/alice/x.png"
            // cover: exactly the box; contain: inside it; one side: the other follows the aspect ratio.
            for (query, size) in [
                ("width=100&height=50", [100, 50]), ("width=100&height=50&resize=contain", [67, 50]),
                ("width=100&height=50&resize=fill", [100, 50]), ("width=160", [160, 120]), ("height=60", [80, 60]),
            ] {
                let r = try await c.request(.get, "\(base)?\(query)&format=origin")
                #expect(r.status == .ok, "\(query)")
                #expect(r.headers[.contentType] == "image/png")
                #expect(dimensions(r) == size, "\(query)")
                #expect(r.headers[.vary] == nil)
            }
            // No format: WebP for a client that takes it, the source's format for one that does not.
            let webp = try await c.request(.get, "\(base)?width=32", headers: [.accept: "image/avif,image/webp,*/*"])
            #expect(webp.headers[.contentType] == "image/webp" && webp.headers[.vary] == "Accept")
            #expect(VipsImageRenderer.header(of: webp.bytes)?.loader.contains("Webp") == true)
            let png = try await c.request(.get, "\(base)?width=32", headers: [.accept: "image/webp;q=0, */*"])
            #expect(png.headers[.contentType] == "image/png" && dimensions(png) == [32, 24])
            let jpeg = try await c.request(.get, "\(base)?width=32&format=jpeg&quality=50")
            #expect(jpeg.headers[.contentType] == "image/jpeg" && dimensions(jpeg) == [32, 24])
            // HEAD: the headers, no body.
            let head = try await c.request(.head, "\(base)?width=32&format=jpeg&quality=50")
            #expect(head.status == .ok && head.headers[.contentLength] == String(jpeg.bytes.count) && head.bytes.isEmpty)
            // A public bucket's rendition is cached like its object; the private bucket is not public.
            let original = try await c.request(.get, "/storage/v1/object/public/pub/alice/x.png")
            #expect(webp.headers[.cacheControl] == original.headers[.cacheControl])
            #expect(try await c.request(.get, "/storage/v1/render/image/public/priv/alice/x.png?width=32").status == .notFound)

            // Authenticated: the tenant rule.
            let auth = "/storage/v1/render/image/authenticated/priv/alice/x.png?width=48&format=origin"
            let mine = try await c.request(.get, auth, headers: s.alice)
            #expect(mine.status == .ok && dimensions(mine) == [48, 36] && mine.headers[.cacheControl] == "private, no-cache")
            #expect(try await c.request(.get, auth, headers: try await s.env.auth("bob")).status == .forbidden)
            #expect(try await c.request(.get, auth).status == .unauthorized)
        }
    }

    @Test func aSignedURLCarriesItsTransformation() async throws {
        try await withImages { s in
            let c = s.client
            let signed = try await c.json(
                .post, "/storage/v1/object/sign/priv/alice/x.png", headers: s.alice,
                ["expiresIn": 60, "transform": ["width": 40, "height": 40, "resize": "cover", "format": "origin"]])
            let url = try #require(signed.json["signedURL"] as? String)
            #expect(url.hasPrefix("/render/image/sign/priv/alice/x.png?token=r."))
            let r = try await c.request(.get, "/storage/v1" + url)
            #expect(r.status == .ok && dimensions(r) == [40, 40])
            #expect(r.headers[.cacheControl]?.hasPrefix("private, max-age=") == true)
            // The query cannot change what the token allows.
            let changed = try await c.request(.get, "/storage/v1" + url + "&width=600&height=600")
            #expect(changed.status == .ok && dimensions(changed) == [40, 40])
            // A render token is not a download token, nor the other way round.
            let token = String(url[url.range(of: "token=")!.upperBound...])
            #expect(try await c.request(.get, "/storage/v1/object/sign/priv/alice/x.png?token=\(token)").status == .forbidden)
            let plain = try await c.json(.post, "/storage/v1/object/sign/priv/alice/x.png", headers: s.alice, ["expiresIn": 60])
            let download = try #require(plain.json["signedURL"] as? String)
            let downloadToken = String(download[download.range(of: "token=")!.upperBound...])
            #expect(
                try await c.request(.get, "/storage/v1/render/image/sign/priv/alice/x.png?token=\(downloadToken)").status == .forbidden)
            // Nor for another name.
            #expect(try await c.request(.get, "/storage/v1/render/image/sign/pub/alice/x.png?token=\(token)").status == .forbidden)
            // Bob may not sign alice's image; an overwrite ends the link.
            let bob = try await c.json(
                .post, "/storage/v1/object/sign/priv/alice/x.png", headers: try await s.env.auth("bob"),
                ["expiresIn": 60, "transform": ["width": 40]])
            #expect(bob.status == .badRequest && bob.json["signedURL"] == nil, "\(bob.text)")
            var headers = s.alice
            headers[.contentType] = "image/png"
            headers[HTTPField.Name("x-upsert")!] = "true"
            _ = try await c.request(.post, "/storage/v1/object/priv/alice/x.png", headers: headers, body: ImageFixture.png(width: 10, height: 10))
            let revoked = try await c.request(.get, "/storage/v1" + url)
            #expect(revoked.status == .forbidden && revoked.text.contains("revoked"))
        }
    }

    @Test func aRenditionIsMadeOnceKeptAndEndedByAnOverwrite() async throws {
        try await withImages { s in
            let c = s.client
            let url = "/storage/v1/render/image/public/pub/alice/x.png?width=64&height=64&format=origin"
            // Eight at once: one render, the same bytes and ETag for all.
            let replies = try await withThrowingTaskGroup(of: LiveClient.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await c.request(.get, url) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == .ok && $0.bytes == replies[0].bytes })
            #expect(Set(replies.compactMap { $0.headers[.eTag] }).count == 1)
            #expect(s.counting.count == 1)
            let etag = try #require(replies[0].headers[.eTag])
            // Kept: asked again (and after the memory is gone), not rendered again; 304 for its ETag.
            #expect(try await c.request(.get, url).bytes == replies[0].bytes)
            s.env.service.renditions!.forgetRecent()
            #expect(try await c.request(.get, url).bytes == replies[0].bytes)
            let notModified = try await c.request(.get, url, headers: [.ifNoneMatch: etag])
            #expect(notModified.status == .notModified && notModified.bytes.isEmpty)
            #expect(s.counting.count == 1)
            let store = try #require(s.env.service.renditions?.store)
            #expect(try await store.renditionUsage().count == 1)
            // The same transformation spelled otherwise (format given, quality default) is the same rendition.
            _ = try await c.request(.get, url + "&quality=80&resize=cover")
            #expect(s.counting.count == 1)

            // An overwrite: a new rendition of the new bytes; the old one is pruned, its blob deleted.
            let before = try await s.env.snapshot()
            var headers = s.alice
            headers[.contentType] = "image/png"
            headers[HTTPField.Name("x-upsert")!] = "true"
            let over = try await c.request(
                .post, "/storage/v1/object/pub/alice/x.png", headers: headers, body: ImageFixture.png(width: 300, height: 100))
            #expect(over.status == .ok)
            let fresh = try await c.request(.get, url)
            #expect(fresh.status == .ok && fresh.headers[.eTag] != etag && dimensions(fresh) == [64, 64])
            #expect(s.counting.count == 2)
            #expect(try await store.renditionUsage().count == 1)
            // One source blob replaced, one rendition blob replaced: as many blobs as before.
            #expect(try await s.env.snapshot().blobFiles == before.blobFiles)
            // Deleted: the object's renditions go at the next prune (garbage collection prunes too).
            #expect(try await c.request(.delete, "/storage/v1/object/pub/alice/x.png", headers: s.alice).status == .ok)
            #expect(try await c.request(.get, url).status == .notFound)
            _ = try await s.env.service.collectGarbage(gracePeriod: 0)
            #expect(try await store.renditionUsage().count == 0)
        }
    }

    @Test func theCacheIsBoundedLeastRecentlyUsedFirst() async throws {
        // Room for about two 64 × 64 PNG renditions.
        try await withImages(.sqlite, { $0.renditionCacheBytes = 2 * 1024 }) { s in
            let c = s.client
            func get(_ w: Int) async throws -> LiveClient.Reply {
                try await c.request(.get, "/storage/v1/render/image/public/pub/alice/x.png?width=\(w)&format=jpeg")
            }
            for w in [16, 17, 18, 19, 20] { #expect(try await get(w).status == .ok) }
            let usage = try await s.env.service.renditions!.store.renditionUsage()
            #expect(usage.bytes <= 2 * 1024 && usage.count >= 1 && usage.count < 5)
            // The evicted ones' blobs are gone: only the two sources' and the kept renditions' remain.
            #expect(try await s.env.snapshot().blobFiles == 2 + usage.count)
            // The newest is still kept.
            let renders = s.counting.count
            #expect(try await get(20).status == .ok && s.counting.count == renders)
        }
    }

    @Test func badRequestsAreRefusedClearlyAndStoreNothing() async throws {
        try await withImages { s in
            let c = s.client
            var headers = s.alice
            headers[.contentType] = "application/pdf"
            _ = try await c.request(.post, "/storage/v1/object/pub/alice/doc.pdf", headers: headers, body: Array("%PDF-1.7\n%%EOF\n".utf8))
            headers[.contentType] = "image/png"
            _ = try await c.request(.post, "/storage/v1/object/pub/alice/bad.png", headers: headers, body: ImageFixture.truncatedPNG())
            let before = try await s.env.snapshot()
            let base = "/storage/v1/render/image/public/pub/alice/"
            for (query, status, message) in [
                ("x.png?width=0", 400, "width must be an integer from 1 to 2500"),
                ("x.png?width=2501", 400, "width must be an integer from 1 to 2500"),
                ("x.png?width=99999999999999999999999", 400, "width must be an integer from 1 to 2500"),
                ("x.png?height=-3", 400, "height must be an integer from 1 to 2500"),
                ("x.png?width=1e3", 400, "width must be an integer from 1 to 2500"),
                ("x.png?resize=zoom", 400, "resize must be cover, contain or fill"),
                ("x.png?quality=5", 400, "quality must be an integer from 20 to 100"),
                ("x.png?format=tiff", 400, "format must be origin, webp, jpeg or png"),
                ("x.png?format=avif", 415, "format avif is not available"),
                ("doc.pdf?width=10", 415, "only PNG, JPEG, WebP and GIF images can be transformed"),
                ("bad.png?width=10", 400, "the image cannot be transformed"),
                ("missing.png?width=10", 404, "not found"),
            ] {
                let r = try await c.request(.get, base + query)
                #expect(Int(r.status.code) == status, "\(query)")
                #expect(r.text.contains(message), "\(query): \(r.text)")
            }
            let signed = try await c.json(
                .post, "/storage/v1/object/sign/pub/alice/x.png", headers: s.alice, ["expiresIn": 60, "transform": ["width": 9000]])
            #expect(signed.status == .badRequest && signed.text.contains("width must be an integer from 1 to 2500"))
            let notObject = try await c.json(
                .post, "/storage/v1/object/sign/pub/alice/x.png", headers: s.alice, ["expiresIn": 60, "transform": "w100"])
            #expect(notObject.status == .badRequest)
            let pdf = try await c.json(
                .post, "/storage/v1/object/sign/pub/alice/doc.pdf", headers: s.alice, ["expiresIn": 60, "transform": ["width": 9]])
            #expect(pdf.status == .badRequest && pdf.json["statusCode"] as? String == "415")
            // Nothing rendered was kept, no blob written.
            #expect(try await s.env.service.renditions!.store.renditionUsage().count == 0)
            #expect(try await s.env.snapshot() == before)
            // And the server still serves.
            #expect(try await c.request(.get, base + "x.png?width=10").status == .ok)
        }
    }
}

/// Signed render URLs answered from memory by the pipeline: the router's answer, byte for byte,
/// and by `Accept` only when the format depends on it.
@Suite("Transformations answered from memory", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct RenderFromMemoryTests {
    @Test func aSignedRenditionIsServedFromMemoryAsTheRouterWould() async throws {
        try await RenderTests().withImages { s in
            let c = s.client
            func sign(_ transform: [String: Any]) async throws -> String {
                let r = try await c.json(
                    .post, "/storage/v1/object/sign/priv/alice/x.png", headers: s.alice, ["expiresIn": 600, "transform": transform])
                return "/storage/v1" + (try #require(r.json["signedURL"] as? String))
            }
            let fixed = try await sign(["width": 40, "height": 30, "format": "origin"])
            let routed = try await c.request(.get, fixed)
            #expect(routed.status == .ok && PipelineDownloadTests().fromMemory(s.env) == 0)
            let fast = try await c.request(.get, fixed)
            #expect(PipelineDownloadTests().fromMemory(s.env) == 1)
            #expect(fast.bytes == routed.bytes && fast.headers[.contentType] == "image/png")
            #expect(PipelineDownloadTests.withoutDate(fast.headers) == PipelineDownloadTests.withoutDate(routed.headers))
            let head = try await c.request(.head, fixed)
            #expect(head.headers[.contentLength] == String(routed.bytes.count) && head.bytes.isEmpty)

            // Without a format: by Accept, never one answer for all.
            let auto = try await sign(["width": 40, "height": 30])
            let webp: HTTPFields = [.accept: "image/webp"]
            let routedWebP = try await c.request(.get, auto, headers: webp)
            let before = PipelineDownloadTests().fromMemory(s.env)
            let fastWebP = try await c.request(.get, auto, headers: webp)
            let fastPNG = try await c.request(.get, auto)
            #expect(fastWebP.headers[.contentType] == "image/webp" && fastWebP.bytes == routedWebP.bytes && fastWebP.headers[.vary] == "Accept")
            #expect(PipelineDownloadTests.withoutDate(fastWebP.headers) == PipelineDownloadTests.withoutDate(routedWebP.headers))
            #expect(fastPNG.headers[.contentType] == "image/png" && fastPNG.bytes == fast.bytes)
            #expect(PipelineDownloadTests().fromMemory(s.env) == before + 2)
            #expect(s.counting.count == 2)

            // An overwrite ends the link at once, from memory or not.
            var headers = s.alice
            headers[.contentType] = "image/png"
            headers[HTTPField.Name("x-upsert")!] = "true"
            _ = try await c.request(.post, "/storage/v1/object/priv/alice/x.png", headers: headers, body: ImageFixture.png(width: 8, height: 8))
            #expect(try await c.request(.get, fixed).status == .forbidden)
        }
    }
}
