import DepotCore
import DepotHTTP
import DepotS3
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Two real `depot serve` processes sharing one PostgreSQL database and one S3 bucket (moto), as
/// behind a load balancer: what one server does, the other sees at once.
@Suite(
    "Two servers over PostgreSQL and S3",
    .enabled(
        if: S3TestServer.enabled && PostgresTestServer.enabled, "needs DEPOT_TEST_S3_ENDPOINT and DEPOT_TEST_DATABASE_URL (scripts/test sets both)"))
struct MultiServerTests {
    func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    /// Starts two servers on one new database and one new bucket prefix.
    func withTwoServers(_ body: (DepotProcess, DepotProcess) async throws -> Void) async throws {
        let s3 = try S3TestServer.configuration()
        _ = try await S3TestServer.makeStore()  // makes the bucket when missing
        let environment = [
            "DEPOT_DATABASE_URL": try await PostgresTestServer.makeDatabase(),
            "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": s3.endpoint, "DEPOT_S3_BUCKET": s3.bucket,
            "DEPOT_S3_PREFIX": s3.prefix, "DEPOT_S3_ACCESS_KEY": s3.accessKey, "DEPOT_S3_SECRET_KEY": s3.secretKey,
            "DEPOT_GC_INTERVAL": "0",
        ]
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("depot-multi-\(UUID().uuidString)").path
        let a = DepotProcess(dataDir: base + "-a"), b = DepotProcess(dataDir: base + "-b")
        defer {
            a.stop()
            b.stop()
            for d in [a.dataDir, b.dataDir] {
                try? FileManager.default.removeItem(atPath: d)
                try? FileManager.default.removeItem(atPath: d + ".log")
            }
        }
        // Started together: both run the migrations; the advisory lock lets one apply them.
        async let startA: Void = a.start(environment: environment)
        async let startB: Void = b.start(environment: environment)
        _ = try await (startA, startB)
        try await body(a, b)
    }

    @Test func whatOneServerDoesTheOtherSees() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))")]
            let png = Fixture.png(40_000)

            // Upload through A; read, sign, flip, list and delete through B.
            let up = try await a.request(.POST, "/v1/assets?jobId=multi", headers: auth + [("Content-Type", "image/png")], body: png)
            #expect(up.status == 201)
            let path = try #require(json(up.body)["path"] as? String)
            let signedByA = try #require(json(up.body)["url"] as? String)
            #expect(try await b.request(.GET, signedByA).body == png)  // a URL minted by A works on B
            let info = try await b.request(.GET, "/v1/assets/\(path)", headers: auth)
            #expect(json(info.body)["checksum"] as? String == png.sha256Hex)
            let list = try await b.request(.GET, "/v1/assets", headers: auth)
            #expect((json(list.body)["items"] as? [[String: Any]])?.map { $0["path"] as? String } == [path])
            let flip = try await b.request(
                .PATCH, "/v1/assets/\(path)", headers: auth + [("Content-Type", "application/json")], body: Array(#"{"visibility":"public"}"#.utf8))
            let publicURL = try #require(json(flip.body)["url"] as? String)
            #expect(try await a.request(.GET, publicURL).body == png)
            #expect(try await a.request(.GET, signedByA).status != 200)  // the flip revoked it on every server

            // A delete on A: B answers 404 within a second (its cached row dropped by the
            // database's notification of the delete).
            #expect(try await b.request(.GET, publicURL).status == 200)
            #expect(try await a.request(.DELETE, "/v1/assets/\(path)", headers: auth).status == 204)
            try await Self.within(.seconds(1), "the delete reaches B") { try await b.request(.GET, publicURL).status == 404 }
            #expect(try await b.request(.GET, "/v1/assets/\(path)", headers: auth).status == 404)
        }
    }

    /// Polls `condition` until it holds; fails unless it does within `limit`. Returns the time taken.
    @discardableResult
    static func within(_ limit: Duration, _ what: String, _ condition: () async throws -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        repeat {
            if try await condition() { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(10))
        } while ContinuousClock.now - start < limit
        Issue.record("\(what): not within \(limit)")
        return limit
    }

    func fromMemory(_ server: DepotProcess) async throws -> Int {
        let service = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: nil, role: .serviceRole, ttl: 60)
        let text = String(decoding: try await server.request(.GET, "/metrics", headers: [("Authorization", "Bearer \(service)")]).body, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("depot_downloads_from_memory_total ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
    }

    /// Both servers cache rows (kept right by PostgreSQL's notifications) and hot answers: a revoke
    /// or a flip on A ends a link B has been serving from memory within a second.
    @Test func aRevokeOrFlipOnOneServerEndsTheLinkOnTheOtherWithinASecond() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))")]
            let json = [("Content-Type", "application/json")]
            let png = Fixture.png(4096)
            let up = try await a.request(.POST, "/v1/assets?jobId=multi", headers: auth + [("Content-Type", "image/png")], body: png)
            let path = try #require(self.json(up.body)["path"] as? String)
            let signed = try #require(self.json(up.body)["url"] as? String)

            // B serves the link from memory (the first read fills its caches).
            let before = try await fromMemory(b)
            try await Self.within(.seconds(10), "B answers from memory") {
                #expect(try await b.request(.GET, signed).body == png)
                return try await fromMemory(b) > before
            }
            // Revoked on A.
            let revoke = try await a.request(.POST, "/v1/assets/revoke", headers: auth + json, body: Array(#"{"paths":["\#(path)"]}"#.utf8))
            #expect(revoke.status == 200)
            let took = try await Self.within(.seconds(1), "the revoke reaches B") { try await b.request(.GET, signed).status != 200 }
            print("revoke on A ended the link on B after \(took)")

            // A new link, minted on A, is served by B; a flip on A ends it on B.
            let fresh = try await a.request(.POST, "/v1/signed-urls", headers: auth + json, body: Array(#"{"paths":["\#(path)"]}"#.utf8))
            let url = try #require((self.json(fresh.body)["urls"] as? [String: String])?[path])
            try await Self.within(.seconds(1), "B serves the new link") { try await b.request(.GET, url).status == 200 }
            for _ in 0..<3 { _ = try await b.request(.GET, url) }
            let flip = try await a.request(.PATCH, "/v1/assets/\(path)", headers: auth + json, body: Array(#"{"visibility":"public"}"#.utf8))
            let publicURL = try #require(self.json(flip.body)["url"] as? String)
            try await Self.within(.seconds(1), "the flip reaches B") { try await b.request(.GET, url).status != 200 }
            // The public URL, hot on B, ends within a second of the flip back on A.
            try await Self.within(.seconds(1), "B serves the public URL") { try await b.request(.GET, publicURL).status == 200 }
            for _ in 0..<3 { _ = try await b.request(.GET, publicURL) }
            _ = try await a.request(.PATCH, "/v1/assets/\(path)", headers: auth + json, body: Array(#"{"visibility":"private"}"#.utf8))
            try await Self.within(.seconds(1), "the flip back reaches B") { try await b.request(.GET, publicURL).status == 404 }
        }
    }

    @Test func anUploadURLIsConsumedOnceWhenBothServersGetThePUT() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))")]
            for round in 0..<5 {
                let png = Fixture.png(20_000 + round)
                let pre = try await a.request(
                    .POST, "/v1/presigned-uploads", headers: auth + [("Content-Type", "application/json")],
                    body: Array(#"{"jobId":"direct","contentType":"image/png","size":\#(png.count)}"#.utf8))
                #expect(pre.status == 201)
                let url = try #require(json(pre.body)["uploadUrl"] as? String)
                async let viaA = a.request(.PUT, url, headers: [("Content-Type", "image/png")], body: png)
                async let viaB = b.request(.PUT, url, headers: [("Content-Type", "image/png")], body: png)
                let statuses = [try await viaA.status, try await viaB.status].sorted()
                #expect(statuses == [201, 409], "round \(round): \(statuses)")
                let path = try #require(json(pre.body)["path"] as? String)
                let info = try await b.request(.GET, "/v1/assets/\(path)", headers: auth)
                #expect(json(info.body)["checksum"] as? String == png.sha256Hex)
            }
        }
    }

    @Test func concurrentUploadsOverBothServersAllReadBack() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "bob", role: .authenticated, ttl: 3600))")]
            // (status, reply body, sha256 of what was sent)
            let replies = try await withThrowingTaskGroup(of: (Int, [UInt8], String).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let server = i % 2 == 0 ? a : b
                        let png = Fixture.png(3000 + i)
                        let r = try await server.request(
                            .POST, "/v1/assets?jobId=load", headers: auth + [("Content-Type", "image/png")], body: png)
                        return (r.status, r.body, png.sha256Hex)
                    }
                }
                var all: [(Int, [UInt8], String)] = []
                for try await r in group { all.append(r) }
                return all
            }
            #expect(replies.allSatisfy { $0.0 == 201 })
            for (i, (_, reply, sent)) in replies.enumerated() {
                let body = json(reply)
                #expect(body["checksum"] as? String == sent)
                let url = try #require(body["url"] as? String)
                let got = try await (i % 2 == 0 ? b : a).request(.GET, url)
                #expect(got.status == 200)
                #expect(got.body.sha256Hex == sent)
            }
            let list = try await a.request(.GET, "/v1/assets?limit=1000", headers: auth)
            #expect((json(list.body)["items"] as? [[String: Any]])?.count == 200)
        }
    }

    /// The Storage API (Supabase-compatible) across two servers: buckets, uploads, listings,
    /// moves and single-use signed upload URLs are shared state, not per server.
    @Test func storageAPIAcrossServers() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let svc = [("Authorization", "Bearer \(try await jwt.mint(subject: nil, role: .serviceRole, ttl: 3600))")]
            let jsonType = [("Content-Type", "application/json")]
            #expect(
                try await a.request(
                    .POST, "/storage/v1/bucket", headers: svc + jsonType,
                    body: Array(#"{"name":"shared","allowed_mime_types":["image/*"]}"#.utf8)
                ).status == 200)
            #expect(json(try await b.request(.GET, "/storage/v1/bucket/shared", headers: svc).body)["allowed_mime_types"] as? [String] == ["image/*"])

            let png = Fixture.png(30_000)
            let form = Fixture.multipart(fields: [("cacheControl", "60")], fileField: "", file: png)
            let multipart = [("Content-Type", "multipart/form-data; boundary=depot-boundary-1234")]
            #expect(try await a.request(.POST, "/storage/v1/object/shared/u/one.png", headers: svc + multipart, body: form).status == 200)
            #expect(try await b.request(.GET, "/storage/v1/object/shared/u/one.png", headers: svc).body == png)
            let listed =
                try JSONSerialization.jsonObject(
                    with: Data(
                        try await b.request(
                            .POST, "/storage/v1/object/list/shared", headers: svc + jsonType, body: Array(#"{"prefix":"u"}"#.utf8)
                        ).body)) as? [[String: Any]]
            #expect(listed?.map { $0["name"] as? String } == ["one.png"])

            // A signed upload URL made on B, sent to both servers at once: exactly one upload lands.
            for round in 0..<3 {
                let made = try await b.request(.POST, "/storage/v1/object/upload/sign/shared/u/direct-\(round).png", headers: svc)
                let url = "/storage/v1" + (try #require(json(made.body)["url"] as? String))
                let body = Fixture.png(10_000 + round)
                async let viaA = a.request(.PUT, url, headers: [("Content-Type", "image/png")], body: body)
                async let viaB = b.request(.PUT, url, headers: [("Content-Type", "image/png")], body: body)
                let statuses = [try await viaA.status, try await viaB.status].sorted()
                #expect(statuses == [200, 409], "round \(round): \(statuses)")
                #expect(try await a.request(.GET, "/storage/v1/object/shared/u/direct-\(round).png", headers: svc).body == body)
            }

            // Move on A; a link B signed before it is dead on both; the new name serves on B.
            let signed = try await b.request(
                .POST, "/storage/v1/object/sign/shared/u/one.png", headers: svc + jsonType, body: Array(#"{"expiresIn":"600"}"#.utf8))
            let link = "/storage/v1" + (try #require(json(signed.body)["signedURL"] as? String))
            #expect(try await a.request(.GET, link).body == png)
            #expect(
                try await a.request(
                    .POST, "/storage/v1/object/move", headers: svc + jsonType,
                    body: Array(#"{"bucketId":"shared","sourceKey":"u/one.png","destinationKey":"u/two.png"}"#.utf8)
                ).status == 200)
            #expect(try await b.request(.GET, link).status != 200)
            #expect(try await b.request(.GET, "/storage/v1/object/shared/u/two.png", headers: svc).body == png)

            #expect(try await b.request(.POST, "/storage/v1/bucket/shared/empty", headers: svc).status == 200)
            #expect(try await a.request(.DELETE, "/storage/v1/bucket/shared", headers: svc).status == 200)
            #expect(try await b.request(.GET, "/storage/v1/bucket/shared", headers: svc).status == 400)
        }
    }
}

extension MultiServerTests {
    /// A resumable upload begun on one server is continued on the other (its bytes are staged in
    /// the shared bucket), and what one server acknowledged is the offset the other reports.
    @Test func aResumableUploadBegunOnOneServerIsFinishedOnTheOther() async throws {
        try await withTwoServers { a, b in
            let jwt = await ProjectJWT(secret: DepotProcess.secret)
            let auth = [
                ("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))"), ("Tus-Resumable", "1.0.0"),
            ]
            let png = Fixture.png(3 * 1024 * 1024 + 17)
            let meta = "jobId \(Data("tus".utf8).base64EncodedString()),contentType \(Data("image/png".utf8).base64EncodedString())"
            let created = try await a.request(
                .POST, "/v1/uploads", headers: auth + [("Upload-Length", String(png.count)), ("Upload-Metadata", meta)])
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
            let location = try #require(created.headers.first(name: "location"))
            let start = try #require(location.range(of: "/v1/uploads/")).lowerBound
            let url = String(location[start...])
            let path = try #require(created.headers.first(name: "depot-path"))
            let patch = [("Content-Type", "application/offset+octet-stream")]
            let first = try await a.request(.PATCH, url, headers: auth + patch + [("Upload-Offset", "0")], body: Array(png[..<1_000_000]))
            #expect(first.status == 204)
            let head = try await b.request(.HEAD, url, headers: auth)
            #expect(head.status == 200 && head.headers.first(name: "upload-offset") == "1000000")
            // B takes the next piece; a stale offset on A is refused; A finishes.
            let second = try await b.request(
                .PATCH, url, headers: auth + patch + [("Upload-Offset", "1000000")], body: Array(png[1_000_000..<2_500_000]))
            #expect(second.status == 204 && second.headers.first(name: "upload-offset") == "2500000")
            #expect(try await a.request(.PATCH, url, headers: auth + patch + [("Upload-Offset", "1000000")], body: [1, 2, 3]).status == 409)
            #expect(try await a.request(.GET, "/v1/assets/\(path)", headers: auth).status == 404, "nothing visible before the last byte")
            let last = try await a.request(.PATCH, url, headers: auth + patch + [("Upload-Offset", "2500000")], body: Array(png[2_500_000...]))
            #expect(last.status == 204 && last.headers.first(name: "depot-checksum") == png.sha256Hex)
            // The same last PATCH again on B (a client that lost A's answer): refused by offset,
            // never "the name is taken"; HEAD says the upload is complete.
            let again = try await b.request(.PATCH, url, headers: auth + patch + [("Upload-Offset", "2500000")], body: Array(png[2_500_000...]))
            #expect(again.status == 409 && !String(decoding: again.body, as: UTF8.self).contains("exists"))
            let info = try await b.request(.GET, "/v1/assets/\(path)", headers: auth)
            #expect(json(info.body)["checksum"] as? String == png.sha256Hex)
            let done = try await b.request(.HEAD, url, headers: auth)
            #expect(done.headers.first(name: "upload-offset") == String(png.count) && done.headers.first(name: "tus-complete") == "1")
        }
    }
}
