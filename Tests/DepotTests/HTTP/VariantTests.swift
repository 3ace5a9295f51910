import DepotCore
import DepotImages
import DepotLocal
import Foundation
import HTTPTypes
import Logging
import NIOCore
import Testing

/// Image variants over real HTTP: made by the durable jobs after an upload commits, served like
/// any object, carried by flips and deletes, made again on overwrite; poison images end as dead
/// letters and `failed` variants while the server keeps serving.
@Suite("Image variants over HTTP", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct VariantTests {
    static let renderer = VipsImageRenderer(threads: 2)

    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite
        /// Rows in PostgreSQL, blobs in S3: the scale-out set-up.
        case postgresS3
        var testDescription: String { rawValue }
        static let testable = allCases.filter { $0 != .postgresS3 || (PostgresTestServer.enabled && S3TestServer.enabled) }
    }

    /// An environment whose job workers run while `body` runs.
    func withWorkers(_ backend: Backend, _ body: @escaping @Sendable (TestEnvironment, LiveClient) async throws -> Void) async throws {
        var stop: @Sendable () -> Void = {}
        var store: (any MetadataStore & JobStore)? = nil
        var blobs: (any BlobStore)? = nil
        if backend == .postgresS3 {
            let (pg, s) = try await PostgresTestServer.makeStore()
            (store, stop) = (pg, s)
            blobs = try await S3TestServer.makeStore()
        }
        defer { stop() }
        let env = try await TestEnvironment.make(blobs: blobs, metadata: store, images: Self.renderer)
        var config = JobRunnerConfiguration()
        config.workers = 2
        config.pollInterval = .milliseconds(50)
        config.backoffBase = .milliseconds(20)
        let runner = JobRunner(
            store: env.service.jobs!,
            handlers: [StorageService.variantJobKind: VariantJobHandler(service: env.service, renderer: Self.renderer)],
            configuration: config, logger: TestLogging.logger("depot-test-jobs", level: .critical))
        let workers = Task { await runner.run() }
        defer { workers.cancel() }
        try await env.live { client in try await body(env, client) }
    }

    /// Polls `GET /v1/assets/{path}` until every variant is in `state` (10 s at most).
    func variants(_ client: LiveClient, _ path: String, auth: HTTPFields, until state: String) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let r = try await client.request(.get, "/v1/assets/\(path)", headers: auth)
            let list = r.json["variants"] as? [[String: Any]] ?? []
            if !list.isEmpty && list.allSatisfy({ $0["state"] as? String == state }) || ContinuousClock.now > deadline { return list }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    func size(of url: String, _ client: LiveClient, headers: HTTPFields = [:]) async throws -> [Int]? {
        let r = try await client.request(.get, TestEnvironment.local(url), headers: headers)
        return ImageFixture.pngSize(Array(r.body.readableBytesView)).map { [$0.0, $0.1] }
    }

    @Test(arguments: Backend.testable)
    func uploadMakesVariantsThatFollowTheirImage(_ backend: Backend) async throws {
        try await withWorkers(backend) { env, client in
            let auth = try await env.auth("alice")
            // A seed upload (POST) and a PUT at a chosen path: both list their variants, pending.
            let up = try await client.upload(ImageFixture.png(width: 640, height: 480), headers: auth)
            #expect(up.status == .created)
            let path = try #require(up.json["path"] as? String)
            let listed = try #require(up.json["variants"] as? [[String: Any]])
            #expect(listed.map { $0["state"] as? String } == ["pending", "pending"])
            #expect(
                listed.map { $0["path"] as? String } == [
                    path.replacingOccurrences(of: ".png", with: "_112x112.png"), path.replacingOccurrences(of: ".png", with: "_56x56.png"),
                ])
            let ready = try await variants(client, path, auth: auth, until: "ready")
            #expect(ready.map { $0["state"] as? String } == ["ready", "ready"], "\(ready)")
            // Served like any asset: signed, the right pixel sizes.
            for (v, side) in zip(ready, [112, 56]) {
                let asset = try await client.request(.get, "/v1/assets/\(v["path"] as! String)", headers: auth)
                #expect(asset.status == .ok && asset.json["contentType"] as? String == "image/png")
                #expect(try await size(of: asset.json["url"] as! String, client) == [side, side])
            }
            // Batch signing signs them like any object.
            let signed = try await client.json(.post, "/v1/signed-urls", headers: auth, ["paths": ready.map { $0["path"] as! String }])
            #expect((signed.json["urls"] as? [String: String])?.count == 2)
            // Made public: the variants go with it, at stable public URLs.
            let flip = try await client.json(.patch, "/v1/assets/\(path)", headers: auth, ["visibility": "public"])
            #expect(flip.status == .ok)
            for v in ready {
                let asset = try await client.request(.get, "/v1/assets/\(v["path"] as! String)", headers: auth)
                #expect(asset.json["visibility"] as? String == "public")
                #expect(try await size(of: asset.json["url"] as! String, client) != nil)
            }
            // Deleted: the variants go too.
            #expect(try await client.request(.delete, "/v1/assets/\(path)", headers: auth).status == .noContent)
            #expect(try await env.snapshot().objects.isEmpty)
            let counts = try await env.service.jobs!.jobCounts()
            #expect(counts[.succeeded] == 2 && counts[.dead] == 0 && counts[.queued] == 0)
            // Prometheus sees the queue, every state.
            let metrics = try await client.request(.get, "/metrics", headers: try await env.auth("ops", role: .serviceRole))
            #expect(
                metrics.text.contains("depot_jobs{state=\"succeeded\"} 2") && metrics.text.contains("depot_jobs{state=\"dead\"} 0"), "\(metrics.text)"
            )
        }
    }

    /// A flip right after the upload (its variant jobs still queued for the old bucket): the
    /// variants are made in the new one, and listed pending meanwhile.
    @Test func aFlipRightAfterUploadStillGetsItsVariants() async throws {
        try await withWorkers(.sqlite) { env, client in
            let auth = try await env.auth("alice")
            for i in 0..<4 {
                let path = "alice/flip/p\(i).png"
                let put = try await client.request(
                    .put, "/v1/assets/\(path)", headers: auth + [.contentType: "image/png"], body: ImageFixture.png(width: 200, height: 150))
                #expect(put.status == .created)
                // Made public at once, through PATCH (two of them) or through a PUT asking for it.
                if i < 2 {
                    #expect(try await client.json(.patch, "/v1/assets/\(path)", headers: auth, ["visibility": "public"]).status == .ok)
                } else {
                    let again = try await client.request(
                        .put, "/v1/assets/\(path)?visibility=public", headers: auth + [.contentType: "image/png"],
                        body: ImageFixture.png(width: 210, height: 150))
                    #expect(again.status == .ok && (again.json["variants"] as? [[String: Any]])?.count == 2, "\(again.text)")
                }
                let ready = try await variants(client, path, auth: auth, until: "ready")
                #expect(ready.count == 2 && ready.allSatisfy { $0["state"] as? String == "ready" }, "\(path): \(ready)")
                for v in ready {
                    let asset = try await client.request(.get, "/v1/assets/\(v["path"] as! String)", headers: auth)
                    #expect(asset.json["visibility"] as? String == "public", "\(v)")
                }
            }
            // Nothing left in the private bucket.
            #expect(try await env.service.metadata.listObjects(in: "assets", prefix: "", after: nil, limit: 100).isEmpty)
        }
    }

    @Test func overwriteRemakesVariantsAndAClientsOwnVariantStays() async throws {
        try await withWorkers(.sqlite) { env, client in
            let auth = try await env.auth("alice")
            let put = try await client.request(
                .put, "/v1/assets/alice/j/pic.png", headers: auth + [.contentType: "image/png"], body: ImageFixture.png(width: 300, height: 100))
            #expect(put.status == .created)
            _ = try await variants(client, "alice/j/pic.png", auth: auth, until: "ready")
            let first = try await client.request(.get, "/v1/assets/alice/j/pic_112x112.png", headers: auth).json["checksum"] as? String
            // Overwritten with another image: its variants are made again (new bytes).
            let again = try await client.request(
                .put, "/v1/assets/alice/j/pic.png", headers: auth + [.contentType: "image/png"], body: ImageFixture.png(width: 100, height: 300))
            #expect(again.status == .ok)
            let remade = try await variants(client, "alice/j/pic.png", auth: auth, until: "ready")
            #expect(remade.count == 2)
            let second = try await client.request(.get, "/v1/assets/alice/j/pic_112x112.png", headers: auth).json["checksum"] as? String
            #expect(first != nil && second != nil && first != second)
            // A client that uploads its own _112x112 (today's way): it stays as uploaded.
            let own = ImageFixture.png(width: 112, height: 112)
            let mine = try await client.request(.put, "/v1/assets/alice/j/pic_112x112.png", headers: auth + [.contentType: "image/png"], body: own)
            #expect(mine.status == .ok && mine.json["variants"] == nil)
            try await Task.sleep(for: .milliseconds(300))
            let kept = try await client.request(.get, "/v1/assets/alice/j/pic_112x112.png", headers: auth)
            #expect(kept.json["checksum"] as? String == mine.json["checksum"] as? String)
            // Variants of variants are never made.
            #expect(try await env.snapshot().objects.count == 3)
        }
    }

    @Test func poisonImagesEndAsDeadLettersAndTheServerKeepsServing() async throws {
        try await withWorkers(.sqlite) { env, client in
            let auth = try await env.auth("alice")
            // Each passes the upload's magic-number check and fails to decode.
            let poisons: [(String, [UInt8])] = [
                ("truncated", ImageFixture.truncatedPNG()),
                ("bomb", ImageFixture.claimingPNG(width: 50_000, height: 50_000)),
                ("garbage", Fixture.bytes(Fixture.pngMagic, size: 2048)),
            ]
            for (name, bytes) in poisons {
                let r = try await client.request(.put, "/v1/assets/alice/p/\(name).png", headers: auth + [.contentType: "image/png"], body: bytes)
                #expect(r.status == .created, "\(name): \(r.text)")
            }
            for (name, _) in poisons {
                let failed = try await variants(client, "alice/p/\(name).png", auth: auth, until: "failed")
                #expect(
                    failed.count == 2 && failed.allSatisfy { $0["state"] as? String == "failed" && !(($0["error"] as? String) ?? "").isEmpty },
                    "\(name): \(failed)")
            }
            let dead = try await env.service.jobs!.listJobs(state: .dead, after: nil, limit: 100)
            #expect(dead.count == 6 && dead.allSatisfy { $0.attempts == 1 })
            #expect(dead.contains { $0.lastError?.contains("pixels") == true })
            // The service role sees and steers them over HTTP; nobody else.
            let ops = try await env.auth("ops", role: .serviceRole)
            #expect(try await client.request(.get, "/v1/jobs", headers: auth).status == .forbidden)
            let page = try await client.request(.get, "/v1/jobs?state=dead&limit=4", headers: ops)
            let items = page.json["items"] as? [[String: Any]] ?? []
            #expect(page.status == .ok && items.count == 4 && (page.json["counts"] as? [String: Int])?["dead"] == 6, "\(page.text)")
            let next = try await client.request(.get, "/v1/jobs?state=dead&limit=4&cursor=\(page.json["nextCursor"] as? String ?? "")", headers: ops)
            #expect((next.json["items"] as? [[String: Any]])?.count == 2 && next.json["nextCursor"] is NSNull)
            let one = try await client.request(.get, "/v1/jobs/\(items[0]["id"] as? String ?? "")", headers: ops)
            let history = (one.json["history"] as? [[String: Any]])?.compactMap { $0["state"] as? String }
            #expect(history == ["queued", "running", "dead"] && (one.json["lastError"] as? String)?.isEmpty == false, "\(one.text)")
            for (query, body) in [("state=zombie", nil), ("limit=0", nil), ("cursor=../x", nil)] as [(String, [String: Any]?)] {
                #expect(try await client.request(.get, "/v1/jobs?\(query)", headers: ops).status == .badRequest, "\(query)")
                _ = body
            }
            #expect(try await client.json(.post, "/v1/jobs/retry", headers: ops, ["ids": ["a"], "allDead": true]).status == .badRequest)
            #expect(try await client.request(.get, "/v1/jobs/\(String(repeating: "0", count: 32))", headers: ops).status == .notFound)
            let retried = try await client.json(.post, "/v1/jobs/retry", headers: ops, ["allDead": true])
            #expect(retried.status == .ok && retried.json["retried"] as? Int == 6, "\(retried.text)")
            _ = try await variants(client, "alice/p/truncated.png", auth: auth, until: "failed")
            let purged = try await client.json(.post, "/v1/jobs/purge", headers: ops, ["olderThan": 0, "dead": true])
            #expect(purged.status == .ok && (purged.json["purged"] as? Int ?? 0) >= 2, "\(purged.text)")
            // Still serving, and a good image still gets its variants.
            let good = try await client.request(
                .put, "/v1/assets/alice/p/good.png", headers: auth + [.contentType: "image/png"], body: ImageFixture.png(width: 50, height: 50))
            #expect(good.status == .created)
            #expect(try await variants(client, "alice/p/good.png", auth: auth, until: "ready").count == 2)
            // Only the originals and the good image's two variants are stored.
            #expect(try await env.snapshot().objects.count == 6)
        }
    }
}
