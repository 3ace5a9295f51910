import Foundation
import Logging
import Synchronization

/// Does the work of one kind of job. A handler must be idempotent as seen from outside: a job
/// can run again after a crash, a lapsed lease or a retry, and the second run must make no second
/// object, orphan no blob and announce nothing twice (write under names derived from the job's
/// key, and check what is already there).
public protocol JobHandler: Sendable {
    func run(_ job: JobRecord) async throws
}

/// Thrown by a handler for a failure that no retry can mend (a poison input): the job goes to
/// `dead` at once, with `message` as its error.
public struct PermanentJobFailure: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How the job workers run.
public struct JobRunnerConfiguration: Sendable {
    /// Jobs run at once in this process (each handler decides where its CPU work runs; image work
    /// runs off Swift's cooperative pool).
    public var workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// How long a claim holds a job without a heartbeat; the heartbeat renews it every third of
    /// it. A job whose worker died is claimed again by any server once this has passed.
    public var lease: Duration = .seconds(30)
    /// How long an idle worker waits before looking for work again.
    public var pollInterval: Duration = .seconds(1)
    /// A failed attempt is retried after `backoffBase` × 2^(attempt − 1), capped at `backoffCap`,
    /// of which a random half (jitter, so failures of many jobs do not retry in step).
    public var backoffBase: Duration = .seconds(2)
    public var backoffCap: Duration = .seconds(300)
    /// Names this process in leases and histories.
    public var workerID = JobRunnerConfiguration.defaultWorkerID()

    public init() {}

    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName
        return "\(host.isEmpty ? "depot" : host):\(ProcessInfo.processInfo.processIdentifier):\(JobRecord.newID().prefix(6))"
    }
}

/// Runs queued jobs: `workers` loops, each claiming one job at a time from the ``JobStore``,
/// running its handler with a lease heartbeat, and reporting the outcome (succeeded; retried with
/// backoff; dead after the last attempt or a ``PermanentJobFailure``). A result reported after the
/// job was taken over (lapsed lease) or cancelled is dropped by the store, so each attempt's
/// outcome counts once.
///
/// Stops when its task is cancelled: workers stop claiming, and jobs in flight are cancelled and
/// queued again at once (their attempt counted).
public final class JobRunner: Sendable {
    public struct Counts: Sendable, Equatable {
        public var claimed = 0
        public var succeeded = 0
        public var retried = 0
        public var dead = 0
        /// Results dropped because the job was no longer this worker's (taken over, cancelled).
        public var dropped = 0
        /// Jobs that found nothing left to do (their source replaced or deleted).
        public var cancelled = 0
        public init(claimed: Int = 0, succeeded: Int = 0, retried: Int = 0, dead: Int = 0, dropped: Int = 0, cancelled: Int = 0) {
            (self.claimed, self.succeeded, self.retried, self.dead, self.dropped) = (claimed, succeeded, retried, dead, dropped)
            self.cancelled = cancelled
        }
    }

    let store: any JobStore
    let handlers: [String: any JobHandler]
    public let configuration: JobRunnerConfiguration
    let logger: Logger
    let now: @Sendable () -> Date
    private let counts = Mutex(Counts())

    public init(
        store: any JobStore, handlers: [String: any JobHandler], configuration: JobRunnerConfiguration = .init(),
        logger: Logger = Logger(label: "depot.jobs"), now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.handlers = handlers
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// What this runner has done since it started.
    public var done: Counts { counts.withLock { $0 } }

    /// Runs until cancelled.
    public func run() async {
        guard !handlers.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, configuration.workers) { group.addTask { await self.work() } }
        }
    }

    private func work() async {
        let kinds = handlers.keys.sorted()
        while !Task.isCancelled {
            let claimed: [JobRecord]
            do {
                let t = now()
                claimed = try await store.claimJobs(
                    kinds: kinds, worker: configuration.workerID, limit: 1, leaseUntil: t + configuration.lease.seconds, now: t)
            } catch {
                logger.warning("cannot claim jobs: \(error)")
                claimed = []
            }
            guard let job = claimed.first else {
                try? await Task.sleep(for: configuration.pollInterval)
                continue
            }
            counts.withLock { $0.claimed += 1 }
            await execute(job)
        }
    }

    private struct LeaseLost: Error {}

    /// Runs one claimed job and reports how it ended.
    func execute(_ job: JobRecord) async {
        guard let handler = handlers[job.kind] else { return }
        var log = logger
        log[metadataKey: "job"] = "\(job.id)"
        log[metadataKey: "kind"] = "\(job.kind)"
        // What the job is about (a variant's image and size), so a dead job's line names its object.
        log[metadataKey: "key"] = "\(job.key)"
        let outcome: JobOutcome
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await handler.run(job) }
                group.addTask { try await self.heartbeat(job) }
                defer { group.cancelAll() }
                try await group.next()
            }
            outcome = .succeeded
        } catch is LeaseLost {
            counts.withLock { $0.dropped += 1 }
            log.warning("job stopped: it is no longer this worker's (its lease lapsed and another worker took it, or it was cancelled)")
            return
        } catch let failure as PermanentJobFailure {
            outcome = .dead(error: failure.message)
        } catch let cancelled as JobCancelled {
            outcome = .cancelled(reason: cancelled.reason)
        } catch {
            let message = Self.describe(error)
            if Task.isCancelled {
                outcome = .retry(at: now(), error: "the server stopped during attempt \(job.attempts)")
            } else if job.attempts >= job.maxAttempts {
                outcome = .dead(error: message)
            } else {
                outcome = .retry(at: now() + backoff(afterAttempt: job.attempts), error: message)
            }
        }
        do {
            let kept = try await store.finishJob(id: job.id, worker: configuration.workerID, attempt: job.attempts, outcome: outcome, now: now())
            guard kept else {
                counts.withLock { $0.dropped += 1 }
                log.warning("job result dropped: it is no longer this worker's (taken over or cancelled)")
                return
            }
        } catch {
            // The lease lapses and another attempt runs: the handler's idempotence covers it.
            log.warning("cannot record the job's result (it runs again after its lease): \(error)")
            return
        }
        switch outcome {
        case .succeeded:
            counts.withLock { $0.succeeded += 1 }
            log.debug("job succeeded (attempt \(job.attempts))")
        case .retry(let at, let error):
            counts.withLock { $0.retried += 1 }
            log.info("job attempt \(job.attempts) of \(job.maxAttempts) failed, retried after \(at): \(error)")
        case .dead(let error):
            counts.withLock { $0.dead += 1 }
            log.error("job dead after attempt \(job.attempts): \(error)")
        case .cancelled(let reason):
            counts.withLock { $0.cancelled += 1 }
            log.info("job cancelled: \(reason)")
        }
    }

    /// Renews the job's lease every third of it; throws ``LeaseLost`` when the job is no longer
    /// this worker's. A renewal that fails (the database away) is tried again at the next beat.
    private func heartbeat(_ job: JobRecord) async throws {
        let beat = configuration.lease / 3
        while true {
            try await Task.sleep(for: beat)
            let t = now()
            let held: Set<String>
            do {
                held = try await store.renewLeases(ids: [job.id], worker: configuration.workerID, until: t + configuration.lease.seconds, now: t)
            } catch {
                try Task.checkCancellation()
                logger.warning("cannot renew the lease of job \(job.id): \(error)")
                continue
            }
            if !held.contains(job.id) { throw LeaseLost() }
        }
    }

    /// The wait before the retry of a job whose `attempt` failed: exponential, capped, and a random
    /// half of it.
    public func backoff(afterAttempt attempt: Int) -> TimeInterval {
        let base = configuration.backoffBase.seconds
        let cap = configuration.backoffCap.seconds
        let full = min(cap, base * pow(2, Double(max(0, min(attempt - 1, 40)))))
        return full / 2 + Double.random(in: 0...(full / 2))
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? StorageError { return e.message }
        return String(describing: error)
    }
}

extension Duration {
    /// In seconds, fractions included.
    var seconds: TimeInterval {
        let (s, atto) = components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }
}
