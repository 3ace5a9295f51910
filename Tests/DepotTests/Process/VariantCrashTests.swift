import DepotCore
import DepotHTTP
import DepotImages
import Foundation
import NIOHTTP1
import Testing

/// `depot serve` killed (SIGKILL) while its jobs make variants: after a restart every variant
/// exists exactly once, nothing half-made is visible, and once `depot gc` has run no blob is left
/// that no object names; `depot jobs` shows the dead letters and queues them again.
@Suite("Variants across a crash of the real server", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct VariantCrashTests {
    @Test func killedWhileMakingVariantsThenRestarted() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-vcrash-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        let flags = ["--job-workers", "2", "--job-lease", "2", "--gc-interval", "0"]
        try await server.start(extra: flags, variants: true)
        let token = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "alice", role: .authenticated, ttl: 600)
        let auth = [("Authorization", "Bearer \(token)"), ("Content-Type", "image/png")]
        // Large enough that decoding takes a while; the last one cannot be decoded.
        for i in 0..<6 {
            let r = try await server.request(
                .PUT, "/v1/assets/alice/crash/img\(i).png", headers: auth, body: ImageFixture.png(width: 1200 + i, height: 900))
            #expect(r.status == 201)
        }
        let poison = try await server.request(.PUT, "/v1/assets/alice/crash/poison.png", headers: auth, body: ImageFixture.truncatedPNG())
        #expect(poison.status == 201)
        try await Task.sleep(for: .milliseconds(150))
        server.kill9()

        // Restarted: jobs left running by the dead process are taken over after their lease.
        try await server.start(extra: flags, variants: true)
        let deadline = ContinuousClock.now + .seconds(60)
        var states: [String] = []
        while ContinuousClock.now < deadline {
            states = []
            for i in 0..<6 {
                let r = try await server.request(.GET, "/v1/assets/alice/crash/img\(i).png", headers: auth)
                let json = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
                states += (json["variants"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
            }
            // The poison image's two jobs must be dead letters too before the server stops (one
            // may still run, taken over after the crash, when the others are ready).
            let p = try await server.request(.GET, "/v1/assets/alice/crash/poison.png", headers: auth)
            let poisonJSON = (try? JSONSerialization.jsonObject(with: Data(p.body))) as? [String: Any] ?? [:]
            let poisonStates = (poisonJSON["variants"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
            if states.count == 12 && states.allSatisfy({ $0 == "ready" }) && poisonStates == ["failed", "failed"] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(states == Array(repeating: "ready", count: 12), "\(states)")
        let list = try await server.request(.GET, "/v1/assets?prefix=crash/&limit=100", headers: auth)
        let items = ((try? JSONSerialization.jsonObject(with: Data(list.body))) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        let names = items.compactMap { $0["path"] as? String }
        // Each image, its two variants exactly once, and the poison image (no variants).
        #expect(names.count == 19 && Set(names).count == 19, "\(names)")
        #expect(names.filter { $0.hasSuffix("_112x112.png") }.count == 6 && names.filter { $0.hasSuffix("_56x56.png") }.count == 6)
        server.stop()

        // No blob left that no object names, once gc has run (a variant written but not
        // committed when the process died is an orphan until then).
        let gc = try await DepotProcess.run(["gc", "--data-dir", dir, "--grace", "0"])
        #expect(gc.status == 0, "\(gc.output)")
        var blobFiles = 0
        if let e = FileManager.default.enumerator(atPath: dir + "/blobs") {
            while let p = e.nextObject() as? String {
                if BlobID.isWellFormed((p as NSString).lastPathComponent) { blobFiles += 1 }
            }
        }
        #expect(blobFiles == 19)

        // The poison image's jobs are dead letters with their error; retried from the CLI.
        let dead = try await DepotProcess.run(["jobs", "list", "--data-dir", dir, "--state", "dead"])
        #expect(dead.status == 0 && dead.output.contains("dead 2"), "\(dead.output)")
        #expect(dead.output.contains("poison.png") && dead.output.contains("libpng"), "\(dead.output)")
        let id = try #require(dead.output.split(separator: "\n").dropFirst().first?.split(separator: " ").first.map(String.init))
        let show = try await DepotProcess.run(["jobs", "show", "--data-dir", dir, id])
        // Dead at its first attempt, or its second when the kill caught it running (its lease
        // lapsed and the restarted server took it over).
        let deadAtFirstOrSecond = show.output.contains("dead (attempt 1)") || show.output.contains("dead (attempt 2)")
        #expect(show.status == 0 && show.output.contains("queued (attempt 0)") && deadAtFirstOrSecond, "\(show.output)")
        let retry = try await DepotProcess.run(["jobs", "retry", "--data-dir", dir, "--all-dead"])
        #expect(retry.status == 0 && retry.output.contains("2 dead job(s) queued again"), "\(retry.output)")
        let after = try await DepotProcess.run(["jobs", "list", "--data-dir", dir])
        #expect(after.output.contains("queued 2") && after.output.contains("dead 0"), "\(after.output)")
        let purge = try await DepotProcess.run(["jobs", "purge", "--data-dir", dir, "--older-than", "0"])
        #expect(purge.status == 0 && purge.output.contains("12 finished job(s) removed"), "\(purge.output)")
    }
}

/// `depot serve --variants none` (no Assets API variants) still runs its job workers for a
/// bucket's own variants, and `/metrics` counts their attempts.
@Suite("Bucket variants on the real server", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct BucketVariantProcessTests {
    @Test func workersRunForABucketsVariantsWithoutAssetsVariants() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bvar-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--job-workers", "1"], variants: false)
        defer { server.stop() }
        let jwt = await ProjectJWT(secret: DepotProcess.secret)
        let service = try await jwt.mint(subject: "svc", role: .serviceRole, ttl: 600)
        let alice = try await jwt.mint(subject: "alice", role: .authenticated, ttl: 600)
        let made = try await server.request(
            .POST, "/storage/v1/bucket", headers: [("Authorization", "Bearer \(service)"), ("Content-Type", "application/json")],
            body: Array(#"{"name":"emotes","variants":["24x24"]}"#.utf8))
        #expect(made.status == 200)
        let up = try await server.request(
            .POST, "/storage/v1/object/emotes/alice/e.png", headers: [("Authorization", "Bearer \(alice)"), ("Content-Type", "image/png")],
            body: ImageFixture.png(width: 100, height: 80))
        #expect(up.status == 200)
        let deadline = ContinuousClock.now + .seconds(30)
        var variant = try await server.request(
            .GET, "/storage/v1/object/authenticated/emotes/alice/e_24x24.png", headers: [("Authorization", "Bearer \(alice)")])
        while variant.status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            variant = try await server.request(
                .GET, "/storage/v1/object/authenticated/emotes/alice/e_24x24.png", headers: [("Authorization", "Bearer \(alice)")])
        }
        #expect(variant.status == 200 && ImageFixture.pngSize(Array(variant.body)).map { [$0.0, $0.1] } == [24, 24])
        let metrics = try await server.request(.GET, "/metrics", headers: [("Authorization", "Bearer \(service)")])
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains(#"depot_job_attempts_total{outcome="succeeded"} 1"#), "\(text)")
        #expect(text.contains(#"depot_jobs{state="succeeded"} 1"#))
    }
}
