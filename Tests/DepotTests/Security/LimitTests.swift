import DepotCore
import DepotHTTP
import Foundation
import Glibc
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// Bounds on one tenant or caller (issue 14, items 10 and 11): quotas of bytes, objects and open
/// upload URLs; request rates; JSON bodies sized to their largest legal request; private files.
@Suite("Security: quotas, rate limits, body sizes, file modes")
struct LimitTests {
    @Test func quotasRefuseWithAClearErrorAndStoreNothing() async throws {
        let env = try await TestEnvironment.make { s in
            s.quota.bytes = 5000
            s.quota.objects = 3
            s.quota.pendingUploads = 2
        }
        try await env.live { client in
            let alice = try await env.auth("alice")
            #expect(try await client.upload(Fixture.png(3000), headers: alice).status == .created)
            let before = try await env.snapshot()
            // Past the quota: refused at the commit, its blob discarded.
            let big = try await client.upload(Fixture.png(3000), headers: alice)
            #expect(big.status == .contentTooLarge && big.errorCode == "quota_exceeded", "\(big.text)")
            #expect(big.text.contains("5000"))
            // Declared large (≥ 256 KiB) and past the quota: refused before a byte is read (no
            // body is ever sent here).
            let token = alice[.authorization]!
            let early = String(
                decoding: try await RawSocket.exchange(
                    port: client.port,
                    "POST /v1/assets?jobId=j HTTP/1.1\r\nHost: x\r\nAuthorization: \(token)\r\nContent-Type: image/png\r\nContent-Length: 300000\r\n\r\n",
                    timeout: 5), as: UTF8.self)
            #expect(early.hasPrefix("HTTP/1.1 413") && early.contains("quota_exceeded"), "\(early)")
            // A chunked body (no declared size): refused at commit, its blob discarded.
            let chunked = try await Streaming.send(
                .POST, port: client.port, "/v1/assets?jobId=j", headers: alice.map { ($0.name.rawName, $0.value) } + [("Content-Type", "image/png")],
                chunks: [Fixture.png(1500), Array(repeating: 7, count: 1500)])
            #expect(chunked.status == 413, "\(chunked)")
            #expect(try await env.snapshot() == before)
            // Another tenant is not affected; an overwrite gives its old size back.
            #expect(try await client.upload(Fixture.png(3000), headers: try await env.auth("bob")).status == .created)
            var put = alice
            put[.contentType] = "image/png"
            #expect(try await client.request(.put, "/v1/assets/alice/j/a.png", headers: put, body: Fixture.png(1000)).status == .created)
            #expect(try await client.request(.put, "/v1/assets/alice/j/a.png", headers: put, body: Fixture.png(1900)).status == .ok)
            // Objects: the third fits, the fourth does not.
            #expect(try await client.upload(Fixture.png(10), headers: alice).status == .created)
            let fourth = try await client.upload(Fixture.png(10), headers: alice)
            #expect(fourth.status == .contentTooLarge && fourth.errorCode == "quota_exceeded")
            // Open upload URLs: two at most, then 429 with Retry-After.
            let service = try await env.auth("svc", role: .serviceRole)
            _ = try await client.request(.delete, "/v1/assets/alice/j/a.png", headers: alice)
            for _ in 0..<2 {
                let r = try await client.json(.post, "/v1/presigned-uploads", headers: alice, ["jobId": "p", "contentType": "image/png", "size": 10])
                #expect(r.status == .created, "\(r.text)")
            }
            let third = try await client.json(.post, "/v1/presigned-uploads", headers: alice, ["jobId": "p", "contentType": "image/png", "size": 10])
            #expect(third.status == .tooManyRequests && third.errorCode == "rate_limited" && third.headers[.retryAfter] != nil, "\(third.text)")
            _ = service
        }
    }

    /// Uploads of one tenant at once, each passing the early check, cannot together overshoot the
    /// quota: the store checks again inside each commit's transaction.
    @Test func concurrentUploadsCannotOvershootTheQuota() async throws {
        let env = try await TestEnvironment.make { s in s.quota.bytes = 5000 }
        try await env.live { client in
            let alice = try await env.auth("alice")
            // Chunked bodies (no declared size) arriving slowly: every upload is past the early
            // check before any of them commits.
            let headers = alice.map { ($0.name.rawName, $0.value) } + [("Content-Type", "image/png")]
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        try await Streaming.send(
                            .POST, port: client.port, "/v1/assets?jobId=j", headers: headers,
                            chunks: [Fixture.png(500), Array(repeating: 7, count: 500)], pause: .milliseconds(300)
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 5, "\(statuses)")
            #expect(statuses.filter { $0 == 413 }.count == 7, "\(statuses)")
            let snapshot = try await env.snapshot()
            #expect(snapshot.objects.count == 5 && snapshot.blobFiles == 5 && snapshot.tempFiles == 0, "\(snapshot)")
            #expect(try await env.service.metadata.usage(of: "alice", now: Date()) == TenantUsage(bytes: 5000, objects: 5))
        }
    }

    @Test func callersAreRateLimitedOneByOne() async throws {
        var configured = try await TestEnvironment.make()
        configured.http.rateLimits = RateLimiter.Limits(rate: 0.01, burst: 3)
        let env = configured
        try await env.live { client in
            let alice = try await env.auth("alice")
            for _ in 0..<3 { #expect(try await client.request(.get, "/v1/assets", headers: alice).status == .ok) }
            let limited = try await client.request(.get, "/v1/assets", headers: alice)
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            // Supabase's envelope for its routes, with the real 429.
            let sdk = try await client.request(.get, "/storage/v1/bucket", headers: alice)
            #expect(sdk.status == .tooManyRequests && sdk.json["statusCode"] as? String == "429")
            // Others are not affected: another user, the service role, signed and public URLs.
            #expect(try await client.request(.get, "/v1/assets", headers: try await env.auth("bob")).status == .ok)
            let service = try await env.auth("svc", role: .serviceRole)
            for _ in 0..<10 { #expect(try await client.request(.get, "/storage/v1/bucket", headers: service).status == .ok) }
            let up = try await client.upload(Fixture.png(), headers: try await env.auth("carol"))
            let url = TestEnvironment.local(up.json["url"] as! String)
            for _ in 0..<10 { #expect(try await client.request(.get, url + "&download=x.png").status == .ok) }
            // The anon key is limited by address.
            let anon: HTTPFields = [.authorization: "Bearer " + env.jwt.apiKey(role: .anon)]
            var statuses: [UInt] = []
            for _ in 0..<5 {
                statuses.append(UInt(try await client.request(.get, "/storage/v1/object/public/public-assets/x/y.png", headers: anon).status.code))
            }
            #expect(statuses.contains(429))
        }
    }

    /// A request head past the decoder's 80 KiB of header fields is answered 431 with the JSON
    /// error and the connection closed — not NIO's bare 400 — and the upload it carried is not
    /// stored; a head just under the limit still reaches its route.
    @Test func anOversizedHeadIsAnswered431AndNothingIsStored() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bearer = alice[.authorization]!
            let png = Fixture.png(100)
            // One connection per upload, read until the server closes it.
            let port = client.port
            func upload(padding: Int) async throws -> String {
                let head =
                    "POST /v1/assets?jobId=job-1 HTTP/1.1\r\nHost: x\r\nAuthorization: \(bearer)\r\nConnection: close\r\n"
                    + "X-Pad: \(String(repeating: "p", count: padding))\r\nContent-Type: image/png\r\nContent-Length: \(png.count)\r\n\r\n"
                let reply = try await RawSocket.blocking {
                    let fd = try RawSocket.connect(port: port, timeout: 10)
                    defer { close(fd) }
                    RawSocket.send(fd, Array(head.utf8) + png)
                    return RawSocket.receiveAll(fd)
                }
                return String(decoding: reply, as: UTF8.self)
            }
            let before = try await env.snapshot()
            let text = try await upload(padding: 90 * 1024)
            #expect(text.hasPrefix("HTTP/1.1 431 "), "\(text.prefix(200))")
            #expect(text.lowercased().contains("connection: close"))
            let body = try #require(text.components(separatedBy: "\r\n\r\n").dropFirst().first)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect((json["error"] as? [String: Any])?["code"] as? String == "headers_too_large")
            #expect(try await env.snapshot() == before)
            // Behind a request on the same connection: its answer first, then the 431.
            let pipelined = try await RawSocket.exchange(
                port: port,
                "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nX-Pad: \(String(repeating: "p", count: 90 * 1024))\r\n\r\n",
                timeout: 10)
            let answers = String(decoding: pipelined, as: UTF8.self).components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(answers == ["200", "431"])
            // Under the limit (the fields' 80 KiB count names and values): stored as usual.
            let fits = try await upload(padding: 60 * 1024)
            #expect(fits.hasPrefix("HTTP/1.1 201 "), "\(fits.prefix(200))")
            #expect(try await env.snapshot().objects.count == before.objects.count + 1)
        }
    }

    @Test func jsonBodiesAreBoundedByTheirLargestLegalRequest() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            // 1,000 long names fit a batch; 2 MiB does not.
            let longNames = (0..<1000).map { "alice/" + String(repeating: "n", count: 1000) + "\($0)" }
            let batch = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": longNames])
            #expect(batch.status == .ok, "\(batch.status)")
            let huge = Array(repeating: "x", count: 2 * 1024 * 1024).joined()
            let tooBig = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": [huge]])
            #expect(tooBig.status == .contentTooLarge)
            // A bucket's settings are small: 100 KiB is refused.
            let padded = try await client.json(
                .post, "/storage/v1/bucket", headers: service, ["name": "b", "pad": String(repeating: "p", count: 100_000)])
            #expect(padded.json["statusCode"] as? String == "413")
            #expect(try await env.service.metadata.bucket(named: "b") == nil)
        }
    }

    @Test func filesOnDiskAreTheOwnersOnly() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            #expect(try await client.upload(Fixture.png(), headers: try await env.auth("alice")).status == .created)
            let fm = FileManager.default
            func mode(_ path: String) throws -> Int { try fm.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1 }
            for dir in ["blobs", "tmp", "blobs/00", "blobs/ff"] { #expect(try mode(env.dir + "/" + dir) == 0o700, "\(dir)") }
            #expect(try mode(env.dir + "/depot.sqlite") == 0o600)
            var blobs: [String] = []
            for d in try fm.contentsOfDirectory(atPath: env.dir + "/blobs") {
                blobs += try fm.contentsOfDirectory(atPath: env.dir + "/blobs/" + d).map { env.dir + "/blobs/\(d)/\($0)" }
            }
            #expect(blobs.count == 1)
            for b in blobs { #expect(try mode(b) == 0o600) }
        }
    }
}
