import DepotCore
import Foundation
import Logging
import Synchronization
import DepotTesting
import Testing

/// A handler driven by the test: counts runs per job, fails as told, waits as told.
final class ScriptedHandler: JobHandler {
    enum Script: Sendable {
        case succeed
        /// Throws a (retryable) error on the first `n` attempts.
        case failFirst(Int)
        case failAlways
        case poison
        /// Sleeps this long (cancellable), then succeeds.
        case sleep(Duration)
    }
    let script: Script
    let runs = Mutex([String: Int]())
    init(_ script: Script) { self.script = script }

    struct Flaky: Error, CustomStringConvertible { var description: String { "flaky failure" } }

    func run(_ job: JobRecord) async throws {
        let n = runs.withLock { r -> Int in
            r[job.key, default: 0] += 1
            return r[job.key]!
        }
        switch script {
        case .succeed: return
        case .failFirst(let k): if n <= k { throw Flaky() }
        case .failAlways: throw Flaky()
        case .poison: throw PermanentJobFailure("not an image")
        case .sleep(let d): try await Task.sleep(for: d)
        }
    }
    var totalRuns: Int { runs.withLock { $0.values.reduce(0, +) } }
}

@Suite("Job runner")
struct JobRunnerTests {
    static let logger = TestLogging.logger("depot-test-jobs", level: .warning)

    /// A runner quick to poll and retry; its lease long (60 s) unless a test is about leases: the
    /// whole suite in parallel can starve a 2-core machine's cooperative pool for seconds.
    func fast(workers: Int = 2, lease: Duration = .seconds(60), id: String = "w") -> JobRunnerConfiguration {
        var c = JobRunnerConfiguration()
        c.workers = workers
        c.lease = lease
        c.pollInterval = .milliseconds(50)
        c.backoffBase = .milliseconds(20)
        c.backoffCap = .milliseconds(50)
        c.workerID = id
        return c
    }

    /// Runs `runners` until `done` holds (or 60 s pass: the whole suite in parallel starves a
    /// 2-core machine), then stops them.
    func run(_ runners: [JobRunner], until done: @escaping @Sendable () async throws -> Bool) async throws {
        let tasks = runners.map { r in Task { await r.run() } }
        defer { for t in tasks { t.cancel() } }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try await done() { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
        #expect(try await done(), "the runners did not get there in 60 s: \(runners.map(\.done))")
    }

    func state(_ store: any JobStore, _ id: String) async throws -> JobState? { try await store.job(id: id)?.state }

    @Test(arguments: JobStoreKind.testable)
    func retriesUntilSuccessAndDeadLettersTheRest(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let flaky = ScriptedHandler(.failFirst(2))
        let broken = ScriptedHandler(.failAlways)
        let poison = ScriptedHandler(.poison)
        let jobs = try await store.enqueue(
            [
                NewJob(kind: "flaky", key: "f", maxAttempts: 5), NewJob(kind: "broken", key: "b", maxAttempts: 3),
                NewJob(kind: "poison", key: "p", maxAttempts: 5),
            ], limits: .init(), now: Date())
        let runner = JobRunner(
            store: store, handlers: ["flaky": flaky, "broken": broken, "poison": poison], configuration: fast(), logger: Self.logger)
        try await run([runner]) {
            let counts = try await store.jobCounts()
            return counts[.succeeded] == 1 && counts[.dead] == 2
        }
        #expect(try await store.job(id: jobs[0].id)?.attempts == 3)
        #expect(flaky.totalRuns == 3 && broken.totalRuns == 3 && poison.totalRuns == 1)
        let dead = try await store.job(id: jobs[1].id)
        #expect(dead?.state == .dead && dead?.lastError == "flaky failure" && dead?.attempts == 3)
        #expect(try await store.job(id: jobs[2].id)?.lastError == "not an image")
        #expect(runner.done == JobRunner.Counts(claimed: 7, succeeded: 1, retried: 4, dead: 2, dropped: 0))
        // Retried attempts waited out a backoff: each retry's runAfter lies after its failure.
        let history = try await store.jobEvents(id: jobs[0].id)
        #expect(history.map(\.state) == [.queued, .running, .queued, .running, .queued, .running, .succeeded])
    }

    /// Two servers' runners on one store: every job runs exactly once, also one that takes longer
    /// than its lease (the heartbeat keeps it).
    @Test(arguments: JobStoreKind.testable)
    func twoRunnersRunEachJobOnce(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let quick = ScriptedHandler(.succeed)
        // Longer than the lease: only the heartbeat keeps it (every 3 s; a lease of 9 s lapses
        // only when the machine is starved for 6 s; the whole suite in parallel starved it 2 s).
        let slow = ScriptedHandler(.sleep(.milliseconds(10_000)))
        _ = try await store.enqueue((0..<40).map { NewJob(kind: "quick", key: "q\($0)") }, limits: .init(), now: Date())
        _ = try await store.enqueue([NewJob(kind: "slow", key: "s")], limits: .init(), now: Date())
        let handlers: [String: any JobHandler] = ["quick": quick, "slow": slow]
        let a = JobRunner(store: store, handlers: handlers, configuration: fast(workers: 3, lease: .seconds(9), id: "server-a"), logger: Self.logger)
        let b = JobRunner(store: store, handlers: handlers, configuration: fast(workers: 3, lease: .seconds(9), id: "server-b"), logger: Self.logger)
        try await run([a, b]) {
            let c = try await store.jobCounts()
            return c[.succeeded]! + c[.dead]! == 41
        }
        // Each job's outcome is reported once: the result of a run whose lease lapsed (on a test
        // machine starved for longer than the lease, heartbeats run late) is dropped, and the
        // job is run again. That is the guarantee; handlers are idempotent for the runs it allows.
        let counts = try await store.jobCounts()
        #expect(a.done.succeeded + b.done.succeeded == counts[.succeeded])
        #expect(quick.runs.withLock { $0.count == 40 })
        // With heartbeats on time (nothing dropped), every job ran once, the slow one too.
        if a.done.dropped + b.done.dropped == 0 {
            #expect(counts[.succeeded] == 41 && a.done.claimed + b.done.claimed == 41)
            #expect(quick.runs.withLock { $0.values.allSatisfy { $0 == 1 } } && slow.totalRuns == 1)
        }
    }

    /// A worker that died holding a job (its lease lapses): another runner takes the job over.
    @Test(arguments: JobStoreKind.testable)
    func aDeadWorkersJobIsTakenOver(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        let id = try await store.enqueue([NewJob(kind: "k", key: "x")], limits: .init(), now: Date())[0].id
        _ = try await store.claimJobs(kinds: ["k"], worker: "crashed", limit: 1, leaseUntil: Date() + 0.3, now: Date())
        let handler = ScriptedHandler(.succeed)
        let runner = JobRunner(store: store, handlers: ["k": handler], configuration: fast(id: "survivor"), logger: Self.logger)
        try await run([runner]) { try await state(store, id) == .succeeded }
        let history = try await store.jobEvents(id: id)
        #expect(history.map(\.state) == [.queued, .running, .running, .succeeded])
        #expect(history[2].error?.contains("crashed") == true && history[2].attempt == 2)
        #expect(handler.totalRuns == 1)
    }

    /// A job cancelled while it runs (its source was replaced): the heartbeat finds it gone, the
    /// handler is stopped and its result dropped.
    @Test(arguments: JobStoreKind.testable)
    func aJobCancelledWhileRunningIsStopped(_ kind: JobStoreKind) async throws {
        let (store, cleanup) = try await kind.make()
        defer { cleanup() }
        try await store.createBucket(BucketRecord(name: "a", isPublic: false, createdAt: Date()))
        let source = ObjectKey(bucket: "a", path: try ObjectPath("alice/x.png"))
        let id = try await store.enqueue([NewJob(kind: "k", key: "x", source: source)], limits: .init(), now: Date())[0].id
        let handler = ScriptedHandler(.sleep(.seconds(30)))
        let runner = JobRunner(store: store, handlers: ["k": handler], configuration: fast(lease: .milliseconds(300)), logger: Self.logger)
        let task = Task { await runner.run() }
        defer { task.cancel() }
        while try await state(store, id) != .running { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try await store.cancelJobs(source: source, keeping: [], now: Date()) == 1)
        // 60 s: a CI machine running the whole suite can starve the heartbeat for many seconds.
        let deadline = ContinuousClock.now + .seconds(60)
        while runner.done.dropped == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(runner.done.dropped == 1 && runner.done.succeeded == 0)
        #expect(try await state(store, id) == .cancelled)
        task.cancel()
        await task.value
    }

    /// Stopping the runner: the job in flight is queued again at once, its attempt counted.
    @Test func stoppingQueuesTheJobInFlightAgain() async throws {
        let (store, cleanup) = try await JobStoreKind.sqlite.make()
        defer { cleanup() }
        let id = try await store.enqueue([NewJob(kind: "k", key: "x")], limits: .init(), now: Date())[0].id
        let runner = JobRunner(store: store, handlers: ["k": ScriptedHandler(.sleep(.seconds(30)))], configuration: fast(), logger: Self.logger)
        let task = Task { await runner.run() }
        while try await state(store, id) != .running { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        await task.value
        let job = try await store.job(id: id)
        #expect(job?.state == .queued && job?.attempts == 1 && job?.lastError?.contains("stopped") == true)
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        var c = JobRunnerConfiguration()
        c.backoffBase = .seconds(2)
        c.backoffCap = .seconds(60)
        let r = JobRunner(store: InMemoryMetadataStore(), handlers: [:], configuration: c)
        for _ in 0..<50 {
            #expect((1...2).contains(r.backoff(afterAttempt: 1)))
            #expect((4...8).contains(r.backoff(afterAttempt: 3)))
            #expect((30...60).contains(r.backoff(afterAttempt: 12)))
            #expect((30...60).contains(r.backoff(afterAttempt: Int.max)))
        }
    }
}
