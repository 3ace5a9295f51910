import Depot
import DepotCore
import Foundation
import HTTPTypes
import Logging
import Testing

/// Deleting and moving folders as durable jobs (`/v1/folders/…`, `DELETE /v1/assets?prefix=`),
/// with their progress; folder entries in the Storage API's remove. The rules apply to every
/// object; a refusal stores, changes and loses nothing.
@Suite("Folder operations")
struct FolderJobTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite, postgresS3
        var testDescription: String { rawValue }
        static let testable = allCases.filter { $0 != .postgresS3 || (PostgresTestServer.enabled && S3TestServer.enabled) }
    }

    /// An environment whose job workers (folder jobs only) run while `body` runs.
    func withWorkers(
        _ backend: Backend = .sqlite, _ configure: @escaping (inout StorageSettings) -> Void = { _ in },
        _ body: @escaping @Sendable (TestEnvironment, LiveClient) async throws -> Void
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
        let env = try await TestEnvironment.make(configure, blobs: blobs, metadata: store)
        var config = JobRunnerConfiguration()
        config.workers = 2
        config.pollInterval = .milliseconds(50)
        let runner = JobRunner(
            store: env.service.jobs!, handlers: [StorageService.folderJobKind: FolderJobHandler(service: env.service)],
            configuration: config, logger: TestLogging.logger("depot-test-jobs", level: .critical))
        let workers = Task { await runner.run() }
        defer { workers.cancel() }
        try await env.live { client in try await body(env, client) }
    }

    /// Polls the job's URL until it has ended (20 s at most).
    func finished(_ client: LiveClient, _ reply: LiveClient.Reply, auth: HTTPFields) async throws -> [String: Any] {
        let url = try #require(reply.headers[.location], "\(reply.text)")
        #expect(reply.json["url"] as? String == url)
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let r = try await client.request(.get, url, headers: auth)
            let state = r.json["state"] as? String
            if state == "succeeded" || state == "dead" || ContinuousClock.now > deadline { return r.json }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func names(_ env: TestEnvironment, _ bucket: String, _ prefix: String) async throws -> [String] {
        try await env.service.metadata.listObjects(in: bucket, prefix: prefix, after: nil, limit: 1000).map(\.path.string)
    }

    func put(_ client: LiveClient, _ auth: HTTPFields, _ bucket: String, _ names: [String], _ body: [UInt8]) async throws {
        for name in names {
            let r = try await client.request(.post, "/storage/v1/object/\(bucket)/\(name)", headers: auth + [.contentType: "image/png"], body: body)
            #expect(r.status == .ok, "\(name): \(r.text)")
        }
    }

    @Test(arguments: Backend.testable)
    func aFolderIsDeletedByAJobWithItsProgress(_ backend: Backend) async throws {
        try await withWorkers(backend) { env, client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            let bob = try await env.auth("bob")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let png = Fixture.png(300)
            let mine = (0..<230).map { "alice/photos/\($0 < 10 ? "deep/" : "")p\($0).png" }
            try await put(client, alice, "docs", mine + ["alice/other/keep.png", "alice/photosynthesis.png"], png)
            try await put(client, bob, "docs", ["bob/photos/b.png"], png)

            // Refused at once, nothing queued or deleted: another tenant's folder, not a folder.
            let before = try await env.snapshot()
            let foreign = try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "docs", "prefix": "bob/photos/"])
            #expect(foreign.status == .forbidden, "\(foreign.text)")
            for bad in ["alice/photos", "/", "alice//", "../x/"] {
                let r = try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "docs", "prefix": bad])
                #expect(r.status == .badRequest, "\(bad): \(r.text)")
            }
            let noBucket = try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "nope", "prefix": "alice/"])
            #expect(noBucket.status == .notFound)
            #expect(try await env.service.jobs!.jobCounts()[.queued] == 0)
            #expect(try await env.snapshot() == before)

            let queued = try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "docs", "prefix": "alice/photos/"])
            #expect(queued.status == .accepted, "\(queued.text)")
            #expect(queued.json["operation"] as? String == "delete" && queued.json["prefix"] as? String == "alice/photos/")
            let url = try #require(queued.headers[.location])
            #expect(try await client.request(.get, url, headers: bob).status == .notFound, "only its caller sees a job")
            let done = try await finished(client, queued, auth: alice)
            #expect(done["state"] as? String == "succeeded" && done["done"] as? Int == 230, "\(done)")
            #expect(done["skipped"] as? Int == 0 && done["failed"] as? Int == 0)
            #expect(try await names(env, "docs", "alice/photos/").isEmpty)
            #expect(try await names(env, "docs", "alice/") == ["alice/other/keep.png", "alice/photosynthesis.png"])
            #expect(try await names(env, "docs", "bob/") == ["bob/photos/b.png"])
            #expect(try await client.request(.get, url, headers: service).json["done"] as? Int == 230, "the service role sees every job")
        }
    }

    @Test(arguments: Backend.testable)
    func aFolderIsMovedByAJobAndAClashIsReported(_ backend: Backend) async throws {
        try await withWorkers(backend) { env, client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            for b in ["docs", "archive"] { #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": b]).status == .ok) }
            let png = Fixture.png(400)
            let old = (0..<120).map { "alice/old/\($0 % 3 == 0 ? "a/b/" : "")f\($0).png" }
            try await put(client, alice, "docs", old, png)
            let theirs = Fixture.png(401)
            try await put(client, alice, "archive", ["alice/2024/f1.png"], theirs)

            for (body, status) in [
                (["bucket": "docs", "prefix": "alice/old/", "destination": "alice/old/sub/"], HTTPResponse.Status.badRequest),
                (["bucket": "docs", "prefix": "alice/old/sub/", "destination": "alice/old/"], .badRequest),
                (["bucket": "docs", "prefix": "alice/old/", "destination": "bob/new/"], .forbidden),
                (["bucket": "docs", "prefix": "alice/old/", "destination": "alice/new/", "destinationBucket": "nope"], .notFound),
            ] {
                let r = try await client.json(.post, "/v1/folders/move", headers: alice, body)
                #expect(r.status == status, "\(body): \(r.text)")
            }
            #expect(try await names(env, "docs", "alice/old/").count == 120)

            let moved = try await client.json(
                .post, "/v1/folders/move", headers: alice, ["bucket": "docs", "prefix": "alice/old/", "destination": "alice/new/"])
            #expect(moved.status == .accepted, "\(moved.text)")
            let done = try await finished(client, moved, auth: alice)
            #expect(done["state"] as? String == "succeeded" && done["done"] as? Int == 120, "\(done)")
            #expect(try await names(env, "docs", "alice/old/").isEmpty)
            #expect(Set(try await names(env, "docs", "alice/new/")) == Set(old.map { "alice/new/" + $0.dropFirst("alice/old/".count) }))
            let one = try await client.request(.get, "/storage/v1/object/authenticated/docs/alice/new/a/b/f0.png", headers: alice)
            #expect(one.bytes == png)

            // Into another bucket, where one name is taken: that object stays and is reported.
            try await put(client, alice, "docs", ["alice/src/f1.png", "alice/src/f2.png"], png)
            let clash = try await client.json(
                .post, "/v1/folders/move", headers: alice,
                ["bucket": "docs", "prefix": "alice/src/", "destination": "alice/2024/", "destinationBucket": "archive"])
            let result = try await finished(client, clash, auth: alice)
            #expect(result["state"] as? String == "succeeded" && result["done"] as? Int == 1 && result["failed"] as? Int == 1, "\(result)")
            let errors = result["errors"] as? [[String: Any]] ?? []
            #expect(errors.first?["name"] as? String == "alice/src/f1.png", "\(errors)")
            #expect(try await names(env, "docs", "alice/src/") == ["alice/src/f1.png"])
            #expect(try await names(env, "archive", "alice/2024/") == ["alice/2024/f1.png", "alice/2024/f2.png"])
            let kept = try await client.request(.get, "/storage/v1/object/authenticated/archive/alice/2024/f1.png", headers: alice)
            #expect(kept.bytes == theirs, "the clash overwrote nothing")
        }
    }

    /// The rules are asked for every object: a shared folder where each user may delete only its
    /// own sub-folder keeps the others' files, counted as skipped.
    @Test func aFolderJobSkipsWhatTheRulesKeep() async throws {
        let policy = try AccessRulesFile.parse(
            """
            rules:
              - {buckets: "*", roles: authenticated, allow: [read, list, insert], paths: "shared/**"}
              - {buckets: "*", roles: authenticated, allow: delete, paths: "shared/{sub}/**"}
            """, source: "test")
        try await withWorkers(.sqlite, { $0.accessPolicy = policy }) { env, client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "team"]).status == .ok)
            let png = Fixture.png(200)
            try await put(client, alice, "team", ["shared/alice/a1.png", "shared/alice/a2.png", "shared/bob/b1.png", "shared/readme.png"], png)
            let job = try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "team", "prefix": "shared/"])
            #expect(job.status == .accepted, "\(job.text)")
            let done = try await finished(client, job, auth: alice)
            #expect(done["done"] as? Int == 2 && done["skipped"] as? Int == 2, "\(done)")
            #expect(try await names(env, "team", "shared/") == ["shared/bob/b1.png", "shared/readme.png"])
        }
    }

    /// Two jobs on one folder would split it: while one is open, another on an overlapping folder
    /// (either side of a move) is refused with 409; elsewhere is fine. (No workers run here.)
    @Test func overlappingFolderJobsAreRefused() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let first = try await client.json(
                .post, "/v1/folders/move", headers: alice, ["bucket": "docs", "prefix": "alice/a/", "destination": "alice/b/"])
            #expect(first.status == .accepted)
            for (route, body) in [
                ("delete", ["bucket": "docs", "prefix": "alice/a/sub/"]),
                ("delete", ["bucket": "docs", "prefix": "alice/"]),
                ("delete", ["bucket": "docs", "prefix": "alice/b/"]),
                ("move", ["bucket": "docs", "prefix": "alice/c/", "destination": "alice/a/x/"]),
            ] {
                let r = try await client.json(.post, "/v1/folders/\(route)", headers: alice, body)
                #expect(r.status == .conflict, "\(body): \(r.text)")
            }
            // Another caller is told of the overlap, not of alice's job or folder.
            let theirs = try await client.json(.post, "/v1/folders/delete", headers: service, ["bucket": "docs", "prefix": "alice/"])
            #expect(theirs.status == .conflict && !theirs.text.contains("alice/a") && theirs.text.contains("another folder job"), "\(theirs.text)")
            #expect(try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "docs", "prefix": "alice/c/"]).status == .accepted)
            #expect(
                try await client.json(.post, "/v1/folders/delete", headers: alice, ["bucket": "docs", "prefix": "alice/ab/"]).status == .accepted)
        }
    }

    /// A move (one object or a folder's) into a bucket with type rules checks the bytes as an
    /// upload there would: a lie told in a bucket without rules does not get in.
    @Test func aMoveChecksTheBytesAgainstTheDestinationsTypes() async throws {
        try await withWorkers { env, client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let imgs = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "imgs", "allowed_mime_types": ["image/png"]])
            #expect(imgs.status == .ok)
            let html = Array("<script>alert(1)</script>".utf8)
            for (name, type) in [("alice/t/fake.png", "image/png"), ("alice/t/page.html", "text/html")] {
                let r = try await client.request(.post, "/storage/v1/object/docs/\(name)", headers: alice + [.contentType: type], body: html)
                #expect(r.status == .ok, "\(r.text)")
            }
            let one = try await client.json(
                .post, "/storage/v1/object/move", headers: alice,
                ["bucketId": "docs", "sourceKey": "alice/t/fake.png", "destinationBucket": "imgs", "destinationKey": "alice/fake.png"])
            #expect(one.json["statusCode"] as? String == "400" || one.json["statusCode"] as? String == "415", "\(one.text)")
            let job = try await client.json(
                .post, "/v1/folders/move", headers: alice,
                ["bucket": "docs", "prefix": "alice/t/", "destination": "alice/t/", "destinationBucket": "public-assets"])
            let done = try await finished(client, job, auth: alice)
            #expect(done["done"] as? Int == 0 && done["failed"] as? Int == 2, "\(done)")
            #expect(try await names(env, "docs", "alice/t/").count == 2)
            #expect(try await names(env, "public-assets", "alice/").isEmpty)
            #expect(try await names(env, "imgs", "alice/").isEmpty)
        }
    }

    /// `DELETE /v1/assets?prefix=job-1/`: the caller's assets of that job, both visibilities.
    @Test func assetsOfOneJobAreDeleted() async throws {
        try await withWorkers { env, client in
            let alice = try await env.auth("alice")
            let bob = try await env.auth("bob")
            for (auth, job, visibility) in [
                (alice, "job-1", "private"), (alice, "job-1", "public"), (alice, "job-2", "private"), (bob, "job-1", "private"),
            ] {
                let up = try await client.request(
                    .post, "/v1/assets?jobId=\(job)&visibility=\(visibility)", headers: auth + [.contentType: "image/png"], body: Fixture.png(500))
                #expect(up.status == .created, "\(up.text)")
            }
            #expect(try await client.request(.delete, "/v1/assets", headers: alice).status == .badRequest)
            let job = try await client.request(.delete, "/v1/assets?prefix=job-1/", headers: alice)
            #expect(job.status == .accepted, "\(job.text)")
            let done = try await finished(client, job, auth: alice)
            #expect(done["done"] as? Int == 2, "\(done)")
            let left = try await client.request(.get, "/v1/assets?limit=100", headers: alice)
            let paths = (left.json["items"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            #expect(paths.count == 1 && paths[0].hasPrefix("alice/job-2/"), "\(paths)")
            let bobs = try await client.request(.get, "/v1/assets?limit=100", headers: bob)
            #expect((bobs.json["items"] as? [[String: Any]])?.count == 1)
        }
    }

    /// The Storage API's remove with a folder entry (`"prefixes": ["f/"]`): every object under it,
    /// synchronously, up to the batch bound; past it the whole call is refused, nothing deleted.
    @Test func removeTakesFolderEntriesUpToTheBatchBound() async throws {
        try await withWorkers(.sqlite, { $0.maxBatch = 6 }) { env, client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let png = Fixture.png(250)
            try await put(client, alice, "docs", ["alice/f/1.png", "alice/f/2.png", "alice/f/g/3.png", "alice/fx.png", "alice/big/1.png"], png)
            try await put(client, service, "docs", ["bob/f/1.png"], png)
            let r = try await client.json(.delete, "/storage/v1/object/docs", headers: alice, ["prefixes": ["alice/f/", "alice/f/1.png", "bob/f/"]])
            let removed = ((try? JSONSerialization.jsonObject(with: Data(r.bytes))) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(Set(removed) == ["alice/f/1.png", "alice/f/2.png", "alice/f/g/3.png"], "\(r.text)")
            let mine = try await names(env, "docs", "alice/")
            #expect(try await mine + names(env, "docs", "bob/f/") == ["alice/big/1.png", "alice/fx.png", "bob/f/1.png"])

            // Another tenant's folder counts for nothing (not even toward the bound): no answer
            // tells what it holds. A folder named in NFD is the NFC one.
            try await put(client, service, "docs", (1...8).map { "bob/k/\($0).png" } + ["alice/caf%C3%A9/1.png"], png)
            let foreign = try await client.json(.delete, "/storage/v1/object/docs", headers: alice, ["prefixes": ["bob/k/"]])
            #expect(foreign.status == .ok && foreign.text.hasPrefix("[]"), "\(foreign.text)")
            let nfd = try await client.json(.delete, "/storage/v1/object/docs", headers: alice, ["prefixes": ["alice/cafe\u{301}/"]])
            #expect(nfd.text.contains("1.png"), "\(nfd.text)")

            try await put(client, alice, "docs", (2...6).map { "alice/big/\($0).png" }, png)
            let before = try await env.snapshot()
            let over = try await client.json(.delete, "/storage/v1/object/docs", headers: alice, ["prefixes": ["alice/big/", "alice/fx.png"]])
            #expect(
                over.json["statusCode"] as? String == "400" && (over.json["message"] as? String ?? "").contains("/v1/folders/delete"), "\(over.text)")
            #expect(try await env.snapshot() == before)
        }
    }
}
