import Foundation

/// The durable job queue, kept in the metadata store (SQLite or PostgreSQL, beside the rows the
/// jobs act on). Every method is one transaction. Implementations: `SQLiteMetadataStore` (one
/// writer: a claim is a write), `PostgresMetadataStore` (`FOR UPDATE SKIP LOCKED`: servers claim
/// side by side without waiting on each other), `InMemoryMetadataStore`; one conformance suite
/// runs against each.
///
/// Every transition is kept in the job's history (``jobEvents(id:)``) with its time and error.
public protocol JobStore: Sendable {
    /// Queues the jobs whose key is not there yet; returns, in order, each job under its key (the
    /// new one, or the one already there, whatever its state).
    /// - Throws: `.unavailable` when the new jobs would take a tenant or the whole queue past
    ///   `limits` (nothing is queued then).
    func enqueue(_ jobs: [NewJob], limits: JobLimits, now: Date) async throws -> [JobRecord]

    /// Claims up to `limit` jobs of `kinds` for `worker`: queued ones that are due, and running
    /// ones whose lease lapsed before `now` (their worker died); oldest due first. Each claim
    /// starts an attempt (`attempts` + 1) and holds a lease until `leaseUntil`. A lapsed job that
    /// had used its last attempt goes to `dead` instead of being claimed.
    func claimJobs(kinds: [String], worker: String, limit: Int, leaseUntil: Date, now: Date) async throws -> [JobRecord]

    /// Moves the leases of the given running jobs that `worker` still holds to `until`; returns the
    /// ids it still holds (a job missing from the answer was taken over or cancelled).
    func renewLeases(ids: [String], worker: String, until: Date, now: Date) async throws -> Set<String>

    /// Ends attempt `attempt` of a running job that `worker` holds. Returns false, changing
    /// nothing, when the worker no longer holds that attempt (its lease lapsed and another worker
    /// took the job, or it was cancelled): its result must then be dropped.
    func finishJob(id: String, worker: String, attempt: Int, outcome: JobOutcome, now: Date) async throws -> Bool

    func job(id: String) async throws -> JobRecord?
    /// The job's transitions, oldest first.
    func jobEvents(id: String) async throws -> [JobEvent]
    /// Jobs, newest queued first; `after`: the id of the last job of the page before.
    func listJobs(state: JobState?, after: String?, limit: Int) async throws -> [JobRecord]
    /// How many jobs are in each state (every state present, zero included).
    func jobCounts() async throws -> [JobState: Int]

    /// Queues dead jobs again with fresh attempts: the given ids, or every dead job when `ids` is
    /// nil. Returns how many were queued.
    func retryJobs(ids: [String]?, now: Date) async throws -> Int
    /// Cancels the open jobs reading `source` (it was replaced or deleted), except those of
    /// `keeping` keys. Returns how many were cancelled. A running one's worker learns it when it
    /// reports (``finishJob(id:worker:attempt:outcome:now:)`` returns false).
    func cancelJobs(source: ObjectKey, keeping: Set<String>, now: Date) async throws -> Int
    /// Removes finished jobs (`states`, none of them open) last changed before `before`, with their
    /// history. Returns how many.
    func purgeJobs(states: Set<JobState>, before: Date) async throws -> Int
    /// Records a running job's progress (its handler's text; JSON by convention), replacing the
    /// last, when `worker` still holds the job. A purged job's progress goes with it.
    /// - Returns: false when the job is not running under `worker` (nothing recorded).
    func setJobProgress(id: String, worker: String, progress: String, now: Date) async throws -> Bool
    /// A job's last recorded progress, nil when none was.
    func jobProgress(id: String) async throws -> String?
}
