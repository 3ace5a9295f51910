import Depot
import DepotCore
import DepotImages
import DepotPostgres
import DepotS3
import Foundation
import Logging
import NIOCore
import Testing

/// Two servers on one PostgreSQL and one S3 bucket, each with its own job workers: every variant
/// is made exactly once (one execution per job, one blob per variant, no orphan), however the
/// claims interleave.
@Suite(
    "Jobs on two servers", .enabled(if: PostgresTestServer.enabled && S3TestServer.enabled && VipsImageRenderer.isBuiltIn),
    .serialized)
struct TwoServerJobTests {
    static let vips = VipsImageRenderer(threads: 2)

    @Test func eachVariantIsMadeOnceAcrossServers() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        let s3 = try S3TestServer.configuration()
        var stops: [@Sendable () -> Void] = []
        defer { for stop in stops { stop() } }
        var services: [StorageService] = []
        var runners: [JobRunner] = []
        let counters = [CountingRenderer(Self.vips), CountingRenderer(Self.vips)]
        for (i, counter) in counters.enumerated() {
            let store = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: Logger(label: "depot-test-pg"))
            let task = await store.start()
            stops.append { task.cancel() }
            try await store.migrate()
            let blobs = try S3BlobStore(configuration: s3, httpClient: S3TestServer.httpClient, logger: Logger(label: "depot-test-s3"))
            try await blobs.createBucketIfMissing()
            let service = try await StorageService.assemble(
                blobs: blobs, metadata: store, rowsShared: true, settings: StorageSettings(), secret: TestEnvironment.secret,
                jobs: store, images: counter, logger: TestLogging.logger("depot-test", level: .warning))
            var config = JobRunnerConfiguration()
            config.workers = 2
            config.pollInterval = .milliseconds(10)
            config.workerID = "server-\(i)"
            runners.append(
                JobRunner(
                    store: store, handlers: [StorageService.variantJobKind: VariantJobHandler(service: service, renderer: counter)],
                    configuration: config, logger: TestLogging.logger("depot-test-jobs", level: .critical)))
            services.append(service)
        }
        let workers = runners.map { runner in Task { await runner.run() } }
        defer { for w in workers { w.cancel() } }

        // Twelve images, uploaded through both servers: 24 variant jobs.
        let alice = Identity(subject: "alice", role: .authenticated)
        for i in 0..<12 {
            let bytes = ImageFixture.png(width: 64 + i, height: 48)
            _ = try await services[i % 2].uploadAsset(
                as: alice, jobId: "j", declaration: UploadDeclaration(contentType: "image/png"),
                body: AsyncStream { c in
                    c.yield(ByteBuffer(bytes: bytes))
                    c.finish()
                })
        }
        let jobs = try #require(services[0].jobs)
        let deadline = ContinuousClock.now + .seconds(120)
        while try await jobs.jobCounts()[.succeeded] != 24, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let counts = try await jobs.jobCounts()
        #expect(counts[.succeeded] == 24 && counts[.queued] == 0 && counts[.running] == 0 && counts[.dead] == 0, "\(counts)")
        // One execution per job: one render each over both servers, one attempt, one `running`.
        let renders = counters.map(\.count)
        #expect(renders.reduce(0, +) == 24, "renders per server: \(renders)")
        let all = try await jobs.listJobs(state: .succeeded, after: nil, limit: 100)
        #expect(all.count == 24 && all.allSatisfy { $0.attempts == 1 })
        for job in all {
            let running = try await jobs.jobEvents(id: job.id).filter { $0.state == .running }
            #expect(running.count == 1, "\(job.key)")
        }
        // One blob per object: 12 images, 24 variants, no orphan.
        let objects = try await services[0].metadata.listObjects(in: "assets", prefix: "", after: nil, limit: 100)
        #expect(objects.count == 36)
        let stored = try await services[0].blobs.blobs(writtenBefore: Date().addingTimeInterval(3600))
        #expect(stored.count == 36)
        #expect(Set(stored) == Set(objects.map(\.blobID)))
    }
}
