import DepotCore
import DepotLocal
import DepotPostgres
import DepotTesting
import Foundation
import Testing

/// Every `JobStore` implementation, for the one conformance suite.
enum JobStoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite, postgres
    var testDescription: String { rawValue }

    static let testable: [JobStoreKind] = allCases.filter { $0 != .postgres || PostgresTestServer.enabled }

    func make() async throws -> (any JobStore & MetadataStore, cleanup: @Sendable () -> Void) {
        switch self {
        case .memory: return (InMemoryMetadataStore(), {})
        case .postgres:
            let (store, stop) = try await PostgresTestServer.makeStore()
            return (store, stop)
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-jobs-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return (try SQLiteMetadataStore(path: dir + "/m.sqlite"), { try? FileManager.default.removeItem(atPath: dir) })
        }
    }
}

@Suite("JobStore conformance")
struct JobStoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func job(_ key: String, kind: String = "k", tenant: String? = "alice", source: String? = nil, attempts: Int = 3) throws -> NewJob {
        NewJob(
            kind: kind, key: key, tenant: tenant, source: try source.map { ObjectKey(bucket: "a", path: try ObjectPath($0)) },
            payload: #"{"w":112}"#, maxAttempts: attempts)
    }

    func code(_ body: () async throws -> Void) async -> StorageError.Code? {
        do { try await body(); return nil } catch let e as StorageError { return e.code } catch { return .internalError }
    }

    /// A key is queued once: the same key again returns the job already there, in any state.
    @Test(arguments: JobStoreKind.testable)
    func aKeyIsQueuedOnce(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let first = try await store.enqueue([try job("v:a/x.png:7:112x112"), try job("v:a/x.png:7:56x56")], limits: .init(), now: t0)
        #expect(first.count == 2 && first.allSatisfy { $0.state == .queued && $0.attempts == 0 })
        #expect(first[0].payload == #"{"w":112}"# && first[0].tenant == "alice" && first[0].maxAttempts == 3)
        // Again, with a duplicate inside the call: nothing new.
        let again = try await store.enqueue(
            [try job("v:a/x.png:7:112x112"), try job("v:a/x.png:7:56x56"), try job("v:a/x.png:7:56x56")], limits: .init(), now: t0 + 5)
        #expect(again.map(\.id) == [first[0].id, first[1].id, first[1].id])
        #expect(try await store.jobCounts()[.queued] == 2)
        // Finished, the key still stands for the work done.
        let claimed = try await store.claimJobs(kinds: ["k"], worker: "w1", limit: 1, leaseUntil: t0 + 60, now: t0 + 10)
        #expect(try await store.finishJob(id: claimed[0].id, worker: "w1", attempt: 1, outcome: .succeeded, now: t0 + 11))
        let third = try await store.enqueue([try job("v:a/x.png:7:112x112")], limits: .init(), now: t0 + 12)
        #expect(third[0].id == first[0].id && third[0].state == .succeeded)
        // Keys compare as bytes: a canonically equal spelling is another key.
        let kelvin = try await store.enqueue([try job("\u{212A}"), try job("K")], limits: .init(), now: t0)
        #expect(kelvin[0].id != kelvin[1].id)
    }

    /// Progress is recorded only by the worker holding the job, replaced each time, kept after
    /// the job ends and purged with it.
    @Test(arguments: JobStoreKind.testable)
    func progressIsTheHoldersAndGoesWithTheJob(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let queued = try await store.enqueue([try job("p:1")], limits: .init(), now: t0)
        #expect(try await !store.setJobProgress(id: queued[0].id, worker: "w1", progress: "{}", now: t0), "not running yet")
        let claimed = try await store.claimJobs(kinds: ["k"], worker: "w1", limit: 1, leaseUntil: t0 + 60, now: t0 + 1)
        #expect(try await store.jobProgress(id: claimed[0].id) == nil)
        #expect(try await store.setJobProgress(id: claimed[0].id, worker: "w1", progress: #"{"done":1}"#, now: t0 + 2))
        #expect(try await store.setJobProgress(id: claimed[0].id, worker: "w1", progress: #"{"done":2}"#, now: t0 + 3))
        #expect(try await !store.setJobProgress(id: claimed[0].id, worker: "w2", progress: #"{"done":99}"#, now: t0 + 3), "not its holder")
        #expect(try await !store.setJobProgress(id: "no-such-job", worker: "w1", progress: "{}", now: t0 + 3))
        #expect(try await store.jobProgress(id: claimed[0].id) == #"{"done":2}"#)
        #expect(try await store.finishJob(id: claimed[0].id, worker: "w1", attempt: 1, outcome: .succeeded, now: t0 + 4))
        #expect(try await !store.setJobProgress(id: claimed[0].id, worker: "w1", progress: "{}", now: t0 + 5), "finished")
        #expect(try await store.jobProgress(id: claimed[0].id) == #"{"done":2}"#)
        #expect(try await store.purgeJobs(states: [.succeeded], before: t0 + 100) == 1)
        #expect(try await store.jobProgress(id: claimed[0].id) == nil)
    }

    /// Claims are leases: each claim starts an attempt; a held job is not claimed again until its
    /// lease lapses; then another worker takes it, and the first worker's result is refused.
    @Test(arguments: JobStoreKind.testable)
    func claimsAreLeases(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let queued = try await store.enqueue([try job("one"), try job("two"), try job("other", kind: "x")], limits: .init(), now: t0)
        // Only the kinds asked for, oldest first, up to the limit.
        let a = try await store.claimJobs(kinds: ["k"], worker: "w1", limit: 5, leaseUntil: t0 + 30, now: t0)
        #expect(Set(a.map(\.id)) == Set([queued[0].id, queued[1].id]))
        #expect(a.allSatisfy { $0.state == .running && $0.attempts == 1 && $0.leaseOwner == "w1" })
        #expect(try await store.claimJobs(kinds: ["k"], worker: "w2", limit: 5, leaseUntil: t0 + 60, now: t0 + 10).isEmpty)
        // The heartbeat keeps one; the other's lease lapses and w2 takes it.
        #expect(try await store.renewLeases(ids: [a[0].id], worker: "w1", until: t0 + 90, now: t0 + 20) == [a[0].id])
        #expect(try await store.renewLeases(ids: [a[0].id], worker: "w2", until: t0 + 90, now: t0 + 20).isEmpty)
        let taken = try await store.claimJobs(kinds: ["k"], worker: "w2", limit: 5, leaseUntil: t0 + 100, now: t0 + 40)
        #expect(taken.map(\.id) == [a[1].id] && taken[0].attempts == 2 && taken[0].leaseOwner == "w2")
        // w1's late result for it is refused and changes nothing; its renewal says it lost it.
        #expect(try await store.finishJob(id: a[1].id, worker: "w1", attempt: 1, outcome: .succeeded, now: t0 + 41) == false)
        #expect(try await store.renewLeases(ids: [a[1].id], worker: "w1", until: t0 + 90, now: t0 + 41).isEmpty)
        #expect(try await store.job(id: a[1].id)?.state == .running)
        #expect(try await store.finishJob(id: a[1].id, worker: "w2", attempt: 2, outcome: .succeeded, now: t0 + 42))
        #expect(try await store.job(id: a[1].id)?.state == .succeeded)
        let history = try await store.jobEvents(id: a[1].id)
        #expect(history.map(\.state) == [.queued, .running, .running, .succeeded])
        #expect(history.map(\.attempt) == [0, 1, 2, 2])
        #expect(history[2].error?.contains("lapsed") == true)
    }

    /// Retries wait out their backoff; the last attempt's failure is a dead letter; an operator's
    /// retry queues it again with fresh attempts.
    @Test(arguments: JobStoreKind.testable)
    func retriesThenDeadLettersThenOperatorRetry(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let id = try await store.enqueue([try job("flaky", attempts: 2)], limits: .init(), now: t0)[0].id
        var claimed = try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 30, now: t0)
        #expect(try await store.finishJob(id: id, worker: "w", attempt: 1, outcome: .retry(at: t0 + 100, error: "disk busy"), now: t0 + 1))
        var stored = try await store.job(id: id)
        #expect(stored?.state == .queued && stored?.lastError == "disk busy" && stored?.attempts == 1 && stored?.leaseOwner == nil)
        #expect(try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 130, now: t0 + 99).isEmpty)
        claimed = try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 130, now: t0 + 100)
        #expect(claimed.first?.attempts == 2)
        #expect(try await store.finishJob(id: id, worker: "w", attempt: 2, outcome: .dead(error: "truncated PNG"), now: t0 + 101))
        stored = try await store.job(id: id)
        #expect(stored?.state == .dead && stored?.lastError == "truncated PNG")
        #expect(try await store.listJobs(state: .dead, after: nil, limit: 10).map(\.id) == [id])
        #expect(try await store.jobCounts()[.dead] == 1)
        // Operator retry: only dead jobs, by id or all.
        #expect(try await store.retryJobs(ids: ["no-such-id"], now: t0 + 200) == 0)
        #expect(try await store.retryJobs(ids: nil, now: t0 + 200) == 1)
        stored = try await store.job(id: id)
        #expect(stored?.state == .queued && stored?.attempts == 0)
        #expect(try await store.retryJobs(ids: nil, now: t0 + 201) == 0)
        let history = try await store.jobEvents(id: id).map(\.state)
        #expect(history == [.queued, .running, .queued, .running, .dead, .queued])
    }

    /// A worker that died on the job's last attempt: its job is dead when found, not run again.
    @Test(arguments: JobStoreKind.testable)
    func aLapsedLastAttemptIsADeadLetter(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let id = try await store.enqueue([try job("crashy", attempts: 1)], limits: .init(), now: t0)[0].id
        _ = try await store.claimJobs(kinds: ["k"], worker: "gone", limit: 1, leaseUntil: t0 + 30, now: t0)
        #expect(try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 90, now: t0 + 31).isEmpty)
        let stored = try await store.job(id: id)
        #expect(stored?.state == .dead && stored?.lastError?.contains("gone") == true)
    }

    /// The bounds: per tenant and in all, counting open jobs; at a bound nothing of the call is
    /// queued and the error is `unavailable` (503 with Retry-After).
    @Test(arguments: JobStoreKind.testable)
    func boundsRefuseTheWholeCall(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let limits = JobLimits(perTenant: 2, total: 3)
        _ = try await store.enqueue([try job("a1"), try job("a2")], limits: limits, now: t0)
        #expect(await code { _ = try await store.enqueue([try job("a3")], limits: limits, now: t0) } == .unavailable)
        _ = try await store.enqueue([try job("b1", tenant: "bob")], limits: limits, now: t0)
        #expect(await code { _ = try await store.enqueue([try job("b2", tenant: "bob")], limits: limits, now: t0) } == .unavailable)
        #expect(try await store.jobCounts()[.queued] == 3)
        #expect(try await store.job(id: "a3") == nil)
        // Already-queued keys cost nothing; a finished job frees its place.
        #expect(try await store.enqueue([try job("a1")], limits: limits, now: t0).count == 1)
        let c = try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 30, now: t0)
        _ = try await store.finishJob(id: c[0].id, worker: "w", attempt: 1, outcome: .succeeded, now: t0)
        #expect(try await store.enqueue([try job("b2", tenant: "bob")], limits: limits, now: t0)[0].state == .queued)
    }

    /// Replacing or deleting a source cancels its open jobs (but the kept keys); a running one's
    /// worker learns it at its next report.
    @Test(arguments: JobStoreKind.testable)
    func aReplacedSourceCancelsItsOpenJobs(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let jobs = try await store.enqueue(
            [
                try job("v1", source: "alice/x.png"), try job("v2", source: "alice/x.png"), try job("keep", source: "alice/x.png"),
                try job("other", source: "alice/y.png"),
            ], limits: .init(), now: t0)
        let running = try await store.claimJobs(kinds: ["k"], worker: "w", limit: 1, leaseUntil: t0 + 30, now: t0)
        #expect(running.map(\.id) == [jobs[0].id])
        let n = try await store.cancelJobs(source: ObjectKey(bucket: "a", path: try ObjectPath("alice/x.png")), keeping: ["keep"], now: t0 + 1)
        #expect(n == 2)
        #expect(try await store.job(id: jobs[0].id)?.state == .cancelled)
        #expect(try await store.job(id: jobs[1].id)?.state == .cancelled)
        #expect(try await store.job(id: jobs[2].id)?.state == .queued)
        #expect(try await store.job(id: jobs[3].id)?.state == .queued)
        #expect(try await store.finishJob(id: jobs[0].id, worker: "w", attempt: 1, outcome: .succeeded, now: t0 + 2) == false)
        #expect(try await store.renewLeases(ids: [jobs[0].id], worker: "w", until: t0 + 60, now: t0 + 2).isEmpty)
        #expect(try await store.jobEvents(id: jobs[1].id).last?.error?.contains("replaced or deleted") == true)
    }

    /// Listing pages newest first; purging removes finished jobs (never open ones) and their
    /// histories.
    @Test(arguments: JobStoreKind.testable)
    func listsPagesAndPurges(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        var ids: [String] = []
        for i in 0..<5 { ids.append(try await store.enqueue([try job("j\(i)")], limits: .init(), now: t0 + Double(i))[0].id) }
        let page1 = try await store.listJobs(state: nil, after: nil, limit: 2)
        #expect(page1.map(\.id) == [ids[4], ids[3]])
        let page2 = try await store.listJobs(state: nil, after: page1.last!.id, limit: 2)
        #expect(page2.map(\.id) == [ids[2], ids[1]])
        #expect(try await store.listJobs(state: nil, after: ids[0], limit: 2).isEmpty)
        #expect(try await store.listJobs(state: .dead, after: nil, limit: 10).isEmpty)
        // Two finish (one succeeded, one dead); purge takes the finished ones before the cutoff.
        let claimed = try await store.claimJobs(kinds: ["k"], worker: "w", limit: 2, leaseUntil: t0 + 60, now: t0 + 10)
        _ = try await store.finishJob(id: claimed[0].id, worker: "w", attempt: 1, outcome: .succeeded, now: t0 + 11)
        _ = try await store.finishJob(id: claimed[1].id, worker: "w", attempt: 1, outcome: .dead(error: "bad"), now: t0 + 20)
        #expect(try await store.purgeJobs(states: [.succeeded, .dead, .queued, .running], before: t0 + 15) == 1)
        #expect(try await store.job(id: claimed[0].id) == nil)
        #expect(try await store.jobEvents(id: claimed[0].id).isEmpty)
        #expect(try await store.job(id: claimed[1].id)?.state == .dead)
        let counts = try await store.jobCounts()
        #expect(counts == [.queued: 3, .running: 0, .succeeded: 0, .dead: 1, .cancelled: 0])
    }

    /// Many workers claiming at once: every job is claimed exactly once.
    @Test(arguments: JobStoreKind.testable)
    func concurrentClaimsTakeEachJobOnce(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        _ = try await store.enqueue(try (0..<60).map { try job("c\($0)", tenant: nil) }, limits: .init(), now: t0)
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for w in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let got = try await store.claimJobs(kinds: ["k"], worker: "w\(w)", limit: 3, leaseUntil: t0 + 600, now: t0 + 1)
                        if got.isEmpty { return mine }
                        mine += got.map(\.id)
                    }
                }
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(claimed.count == 60 && Set(claimed).count == 60)
    }

    /// An object's write and the jobs it starts are one transaction: both or neither. Its
    /// overwrite cancels the jobs of what it replaced.
    @Test(arguments: JobStoreKind.testable)
    func jobsAreQueuedWithTheirObjectOrNotAtAll(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        try await store.createBucket(BucketRecord(name: "a", isPublic: false, createdAt: t0))
        func record(_ name: String, generation: Int64) throws -> ObjectRecord {
            ObjectRecord(
                bucket: "a", path: try ObjectPath(name), owner: "alice", blobID: .random(), size: 3, contentType: "image/png",
                sha256: String(repeating: "a", count: 64), generation: generation, createdAt: t0)
        }
        let key = ObjectKey(bucket: "a", path: try ObjectPath("alice/x.png"))
        func batch(_ generation: Int, limits: JobLimits = .init()) -> JobBatch {
            JobBatch(
                jobs: ["112x112", "56x56"].map { NewJob(kind: "variant", key: "a/alice/x.png@\(generation):\($0)", tenant: "alice", source: key) },
                limits: limits, now: t0)
        }
        try await store.putObject(try record("alice/x.png", generation: 1), upsert: false, quota: .unlimited, jobs: batch(1))
        #expect(try await store.jobCounts()[.queued] == 2)
        // A write that fails queues nothing: the name is taken…
        #expect(
            await code { try await store.putObject(try record("alice/x.png", generation: 2), upsert: false, quota: .unlimited, jobs: batch(2)) }
                == .alreadyExists)
        // …or the queue is full: then the object is not written either.
        #expect(
            await code {
                try await store.putObject(
                    try record("alice/y.png", generation: 3), upsert: false, quota: .unlimited,
                    jobs: batch(3, limits: JobLimits(perTenant: 3, total: 100)))
            } == .unavailable)
        #expect(try await store.object(at: ObjectKey(bucket: "a", path: try ObjectPath("alice/y.png"))) == nil)
        #expect(try await store.jobCounts()[.queued] == 2)
        // An overwrite: the replaced generation's jobs are cancelled, the new ones queued.
        try await store.putObject(try record("alice/x.png", generation: 4), upsert: true, quota: .unlimited, jobs: batch(4))
        let counts = try await store.jobCounts()
        #expect(counts[.queued] == 2 && counts[.cancelled] == 2)
        let queued = try await store.listJobs(state: .queued, after: nil, limit: 10)
        #expect(Set(queued.map(\.key)) == ["a/alice/x.png@4:112x112", "a/alice/x.png@4:56x56"])
        #expect(queued.allSatisfy { $0.source == key })
    }
}
