import DepotCore
import DepotHTTP
import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Small cached objects are answered by `PipelineDownloadHandler` in the channel pipeline; these tests
/// show that its answers are the router's answers, and that everything else still reaches the router.
@Suite("Downloads answered from memory")
struct PipelineDownloadTests {
    /// How many downloads the pipeline answered, read from /metrics.
    func fromMemory(_ env: TestEnvironment) -> Int {
        let line = env.metrics.render().split(separator: "\n").first { $0.hasPrefix("depot_downloads_from_memory_total ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
    }

    /// The headers but the clock-dependent ones (Date, and a signed link's remaining max-age).
    static func withoutDate(_ headers: HTTPFields) -> [String: String] {
        var out: [String: String] = [:]
        for f in headers where f.name != .date { out[f.name.canonicalName] = f.value }
        if let cc = out["cache-control"], cc.hasPrefix("private, max-age=") { out["cache-control"] = "private, max-age=…" }
        return out
    }

    @Test func cachedDownloadsMatchTheRoutersAnswers() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(3000)
            let alice = try await env.auth("alice")
            let up = try await client.upload(png, headers: alice)
            let url = TestEnvironment.local(up.json["url"] as! String)

            // The first read goes through the router and fills the caches; the next is from memory.
            let routed = try await client.request(.get, url)
            #expect(fromMemory(env) == 0)
            let fast = try await client.request(.get, url)
            #expect(fromMemory(env) == 1)
            #expect(fast.status == .ok)
            #expect(fast.bytes == png)
            #expect(Self.withoutDate(fast.headers) == Self.withoutDate(routed.headers))
            #expect(fast.headers[.date] != nil)

            let head = try await client.request(.head, url)
            #expect(fromMemory(env) == 2)
            #expect(head.status == .ok && head.body.readableBytes == 0)
            #expect(head.headers[.contentLength] == "3000")

            // Conditional, cross-origin and download requests take the router.
            let etag = try #require(fast.headers[.eTag])
            #expect(try await client.request(.get, url, headers: [.ifNoneMatch: etag]).status == .notModified)
            let named = try await client.request(.get, url + "&download=photo.png")
            #expect(named.headers[.contentDisposition]?.hasPrefix("attachment") == true)
            #expect(fromMemory(env) == 2)

            // The route's request counter counts both paths.
            let metrics = env.metrics.render()
            #expect(metrics.contains(#"depot_http_requests_total{route="/storage/v1/object/sign/**",status="200"} 4"#))
        }
    }

    /// Each set of request headers asked of `url` through the pipeline and of a server with the
    /// router alone: the same status, headers and bytes each time; `answered` of them answered by
    /// the pipeline (`served` counts those answers).
    static func expectAnswersMatchTheRouter(
        _ env: TestEnvironment, _ client: LiveClient, _ url: String, _ requests: [HTTPFields], answered: Int,
        served: @Sendable () -> Int
    ) async throws {
        var routerOnly = env
        routerOnly.http.pipelineDownloads = false
        let before = served()
        try await routerOnly.application.test(.live) { test in
            let router = LiveClient(test: test, port: test.port!)
            for headers in requests {
                let fast = try await client.request(.get, url, headers: headers)
                let routed = try await router.request(.get, url, headers: headers)
                #expect(fast.status == routed.status, "\(headers)")
                #expect(fast.bytes.sha256Hex == routed.bytes.sha256Hex, "\(headers)")
                #expect(withoutDate(fast.headers) == withoutDate(routed.headers), "\(headers)")
            }
        }
        #expect(served() - before == answered)
    }

    /// Every kind of Range header for an object of `size` bytes; all but the last (not
    /// satisfiable: the router's 416) are answered by the pipeline.
    static func ranges(size: Int) -> [HTTPFields] {
        [
            "bytes=0-9", "bytes=\(size - 10)-", "bytes=-100", "bytes=\(size - 5)-\(size + 1000)", "bytes=0-0",
            "bytes=0-1,5-6", "items=0-9", "bytes=\(size)-",
        ].map { [.range: $0] }
    }

    /// Uploads `bytes` as alice and reads its signed URL once through the router, which caches
    /// the row (and small bytes): the URL's next GET can be answered by the pipeline.
    static func cachedURL(_ env: TestEnvironment, _ client: LiveClient, _ bytes: [UInt8]) async throws -> String {
        let up = try await client.upload(bytes, headers: try await env.auth("alice"))
        let url = TestEnvironment.local(up.json["url"] as! String)
        _ = try await client.request(.get, url)
        return url
    }

    @Test func rangesOfSmallObjectsAreAnsweredFromMemory() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(3000)
            let url = try await Self.cachedURL(env, client, png)
            let part = try await client.request(.get, url, headers: [.range: "bytes=100-199"])
            #expect(part.status == .partialContent && part.bytes == Array(png[100..<200]))
            #expect(part.headers[.contentRange] == "bytes 100-199/3000" && part.headers[.contentLength] == "100")
            #expect(fromMemory(env) == 1)
            try await Self.expectAnswersMatchTheRouter(env, client, url, Self.ranges(size: png.count), answered: 7) { fromMemory(env) }
            // A Range on a HEAD, or with If-Range, takes the router.
            #expect(try await client.request(.head, url, headers: [.range: "bytes=0-9"]).status == .partialContent)
            #expect(try await client.request(.get, url, headers: [.range: "bytes=0-9", .ifRange: "\"x\""]).status == .ok)
            #expect(fromMemory(env) == 8)
        }
    }

    /// Cross-origin GETs (a web app's `fetch`) get the router's CORS headers from memory: `*` by
    /// default; with a list of origins, a listed origin echoed with `Vary: Origin` and any other
    /// origin no CORS header at all.
    @Test func crossOriginRequestsGetTheRoutersCORSHeadersFromMemory() async throws {
        for origins in [["*"], ["https://app.example"]] {
            var configured = try await TestEnvironment.make()
            configured.http.objectCORSOrigins = origins
            let env = configured
            try await env.live { client in
                let png = Fixture.png(3000)
                let url = try await Self.cachedURL(env, client, png)
                let listed = try await client.request(.get, url, headers: [.origin: "https://app.example"])
                #expect(listed.status == .ok && listed.bytes == png)
                #expect(listed.headers[.accessControlAllowOrigin] == (origins == ["*"] ? "*" : "https://app.example"))
                #expect(listed.headers[.vary] == (origins == ["*"] ? nil : "Origin"))
                let other = try await client.request(.get, url, headers: [.origin: "https://other.example"])
                #expect(other.headers[.accessControlAllowOrigin] == (origins == ["*"] ? "*" : nil))
                #expect(fromMemory(env) == 2)

                var twice = HTTPFields()
                twice.append(HTTPField(name: .origin, value: "https://app.example"))
                twice.append(HTTPField(name: .origin, value: "https://other.example"))
                let requests: [HTTPFields] = [
                    [.origin: "https://app.example"], [.origin: "https://other.example"],
                    [.origin: "https://app.example", .range: "bytes=10-19"], twice,
                ]
                try await Self.expectAnswersMatchTheRouter(env, client, url, requests, answered: 3) { fromMemory(env) }
            }
        }
    }

    @Test func revokedTamperedAndFlippedLinksAreNeverServedFromMemory() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let up = try await client.upload(Fixture.png(2000), headers: alice)
            let path = up.json["path"] as! String
            let url = TestEnvironment.local(up.json["url"] as! String)
            _ = try await client.request(.get, url)
            #expect(try await client.request(.get, url).status == .ok)
            #expect(fromMemory(env) == 1)

            let tampered = String(url.dropLast()) + (url.last == "A" ? "B" : "A")
            #expect(try await client.request(.get, tampered).status == .forbidden)
            _ = try await client.json(.post, "/v1/assets/revoke", headers: alice, ["paths": [path]])
            #expect(try await client.request(.get, url).status != .ok)

            // Public: served from memory once cached; after the flip back to private, 404 at once.
            let flip = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
            let publicURL = TestEnvironment.local(flip.json["url"] as! String)
            #expect(try await client.request(.get, publicURL).status == .ok)
            let publicFast = try await client.request(.get, publicURL)
            #expect(publicFast.status == .ok)
            #expect(publicFast.headers[.cacheControl] == "public, max-age=31536000")
            #expect(fromMemory(env) == 2)
            _ = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "private"])
            #expect(try await client.request(.get, publicURL).status == .notFound)
            #expect(fromMemory(env) == 2)
        }
    }

    /// A hot URL's answer is worked out once per second and reused (`RecentAnswers`): never past
    /// its second (a link that expired since is refused), never after a write (the object
    /// replaced under the same path), and each reuse counts.
    @Test func aHotURLsAnswerIsReusedOnlyInItsSecondAndUntilAWrite() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make(clock: clock.now)
        try await env.live { client in
            let alice = try await env.auth("alice")
            let first = Fixture.png(2500)
            let up = try await client.upload(first, headers: alice)
            let path = up.json["path"] as! String
            let signed = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": [path], "expiresIn": 600])
            let url = TestEnvironment.local((signed.json["urls"] as! [String: String])[path]!)
            _ = try await client.request(.get, url)
            for _ in 0..<3 {
                let reply = try await client.request(.get, url)
                #expect(reply.status == .ok && reply.bytes == first)
            }
            #expect(fromMemory(env) == 3)
            #expect(env.metrics.render().contains(#"depot_http_requests_total{route="/storage/v1/object/sign/**",status="200"} 4"#))

            // The link expires 600 s later: its answer of this second is not reused then.
            clock.advance(601)
            let expired = try await client.request(.get, url)
            #expect(expired.status == .forbidden)
            #expect(String(decoding: expired.bytes, as: UTF8.self).contains("url_expired"))
            #expect(fromMemory(env) == 3)

            // Public and replaced in the same second: the next answer has the new bytes.
            let flip = try await client.json(.patch, "/v1/assets/\(path)", headers: alice, ["visibility": "public"])
            let publicURL = TestEnvironment.local(flip.json["url"] as! String)
            _ = try await client.request(.get, publicURL)
            #expect(try await client.request(.get, publicURL).bytes == first)
            #expect(fromMemory(env) == 4)
            let second = Fixture.png(2600)
            var png = alice
            png[.contentType] = "image/png"
            let replaced = try await client.request(.put, "/v1/assets/\(path)?visibility=public", headers: png, body: second)
            #expect(replaced.status == .ok)
            _ = try await client.request(.get, publicURL)
            let after = try await client.request(.get, publicURL)
            #expect(after.status == .ok && after.bytes == second)
            #expect(after.headers[.contentLength] == "2600")
        }
    }

    /// HTTP/1.1 pipelining: a request answered from memory waits for the router's answer to the
    /// request before it on the same connection.
    @Test func pipelinedAnswersKeepTheirOrder() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let up = try await client.upload(Fixture.png(1500), headers: try await env.auth("alice"))
            let url = TestEnvironment.local(up.json["url"] as! String)
            _ = try await client.request(.get, url)
            let slow = "GET /v1/assets?prefix=alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
            let fast = "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n"
            // The last request asks the server to close, so the reply ends where the stream does.
            let replies = String(
                decoding: try await RawSocket.exchange(port: client.port, slow + "\r\n" + fast + slow + "Connection: close\r\n\r\n"), as: UTF8.self)
            let statuses = replies.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "200"])
            let order = ["application/json", "image/png", "application/json"].map { replies.range(of: $0)?.lowerBound }
            #expect(order.allSatisfy { $0 != nil })
            let first = replies.range(of: "application/json")!.lowerBound
            let image = replies.range(of: "image/png")!.lowerBound
            #expect(first < image)
        }
    }
}
