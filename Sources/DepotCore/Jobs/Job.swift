import Crypto
import Foundation

/// Where a durable job is in its life:
///
/// ```
/// queued ──claim──▶ running ──▶ succeeded
///   ▲                  │ ├────▶ dead       (last attempt failed, or a permanent failure)
///   └──retry (backoff)─┘ └────▶ cancelled  (its source was replaced or deleted)
/// dead ──operator retry──▶ queued
/// ```
///
/// A `running` job whose lease lapsed (its worker died) is claimed again by any worker, as if it
/// were queued; one that had used its last attempt goes to `dead` instead.
public enum JobState: String, Sendable, CaseIterable, Codable, Comparable {
    case queued, running, succeeded, dead, cancelled

    /// A state named by a caller, else `.invalidRequest` listing the states.
    public static func parse(_ s: String) throws(StorageError) -> JobState {
        guard let state = JobState(rawValue: s) else {
            throw .invalidRequest("the state must be one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return state
    }

    /// Queued or running: counted against the queue's bounds.
    public var isOpen: Bool { self == .queued || self == .running }

    public static func < (a: JobState, b: JobState) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A job to queue. Its `key` names what it makes (kind, source object and generation, parameters):
/// queuing a key that is already there queues nothing, so a job is made once however often it is
/// asked for, and a re-run after a crash finds the work it is to do named the same way.
public struct NewJob: Sendable, Equatable {
    public var kind: String
    public var key: String
    /// The tenant the work is for: bounded per tenant (``JobLimits``).
    public var tenant: String?
    /// The object the job reads, when it reads one: replacing or deleting it cancels the job.
    public var source: ObjectKey?
    /// What the job's handler needs, as the handler reads it (JSON by convention).
    public var payload: String
    public var maxAttempts: Int

    public init(kind: String, key: String, tenant: String? = nil, source: ObjectKey? = nil, payload: String = "{}", maxAttempts: Int = 5) {
        self.kind = kind
        self.key = key
        self.tenant = tenant
        self.source = source
        self.payload = payload
        self.maxAttempts = maxAttempts
    }
}

/// A stored job.
public struct JobRecord: Sendable, Equatable {
    public var id: String
    public var kind: String
    public var key: String
    public var tenant: String?
    public var source: ObjectKey?
    public var payload: String
    public var state: JobState
    /// Attempts started so far (a claim starts one).
    public var attempts: Int
    public var maxAttempts: Int
    /// A queued job is not claimed before this time (retries wait out their backoff).
    public var runAfter: Date
    /// The worker holding a running job, and until when (its heartbeat moves this on).
    public var leaseOwner: String?
    public var leaseUntil: Date?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, kind: String, key: String, tenant: String?, source: ObjectKey?, payload: String, state: JobState,
        attempts: Int, maxAttempts: Int, runAfter: Date, leaseOwner: String?, leaseUntil: Date?, lastError: String?,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.key = key
        self.tenant = tenant
        self.source = source
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.leaseOwner = leaseOwner
        self.leaseUntil = leaseUntil
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A new queued job.
    public init(_ job: NewJob, now: Date) {
        self.init(job, id: Self.id(forKey: job.key), now: now)
    }

    /// The id of the job under `key`: 32 hex digits of its SHA-256, so that whoever knows what a
    /// job makes can find it.
    public static func id(forKey key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).prefix(16).hexString
    }

    init(_ job: NewJob, id: String, now: Date) {
        self.init(
            id: id, kind: job.kind, key: job.key, tenant: job.tenant, source: job.source, payload: job.payload, state: .queued,
            attempts: 0, maxAttempts: max(1, job.maxAttempts), runAfter: now, leaseOwner: nil, leaseUntil: nil, lastError: nil,
            createdAt: now, updatedAt: now)
    }

    /// 32 hex digits, random; ordered by nothing.
    public static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }.hexString
    }
}

/// One transition of a job, as kept in its history.
public struct JobEvent: Sendable, Equatable {
    public var at: Date
    public var state: JobState
    /// The attempt the transition belongs to (0 before the first claim).
    public var attempt: Int
    public var error: String?
    public init(at: Date, state: JobState, attempt: Int, error: String? = nil) {
        self.at = at
        self.state = state
        self.attempt = attempt
        self.error = error
    }
}

/// How an attempt ended, as the worker reports it.
public enum JobOutcome: Sendable, Equatable {
    case succeeded
    /// Queued again, claimable from `at`.
    case retry(at: Date, error: String)
    case dead(error: String)
    case cancelled(reason: String)
}

/// The bounds of the queue: open (queued or running) jobs per tenant and in all. At a bound,
/// ``JobStore/enqueue(_:limits:now:)`` queues nothing and throws `.unavailable` (503 with
/// Retry-After): the caller's write is refused before anything of it is stored.
public struct JobLimits: Sendable, Equatable {
    public var perTenant: Int
    public var total: Int
    public init(perTenant: Int = 10_000, total: Int = 200_000) {
        self.perTenant = perTenant
        self.total = total
    }
    public static let unbounded = JobLimits(perTenant: .max, total: .max)
}

extension JobOutcome {
    /// The state and error the outcome writes, the same in every store.
    public var row: (state: JobState, error: String?) {
        switch self {
        case .succeeded: return (.succeeded, nil)
        case .retry(_, let error): return (.queued, error)
        case .dead(let error): return (.dead, error)
        case .cancelled(let reason): return (.cancelled, reason)
        }
    }
}

/// Jobs queued in the transaction of an object's write (``MetadataStore/putObject(_:upsert:quota:jobs:)``):
/// the written object's open jobs for what it replaced are cancelled (but those under the batch's
/// keys), then the batch is queued, within `limits`.
public struct JobBatch: Sendable {
    public var jobs: [NewJob]
    public var limits: JobLimits
    public var now: Date
    /// Cancel the written object's other open jobs (it replaces their source).
    public var cancelsReplaced: Bool

    public init(jobs: [NewJob], limits: JobLimits, now: Date, cancelsReplaced: Bool = true) {
        self.jobs = jobs
        self.limits = limits
        self.now = now
        self.cancelsReplaced = cancelsReplaced
    }

    /// Nothing queued, nothing cancelled.
    public static let none = JobBatch(jobs: [], limits: .unbounded, now: .distantPast, cancelsReplaced: false)
    public var isEmpty: Bool { jobs.isEmpty && !cancelsReplaced }
}
