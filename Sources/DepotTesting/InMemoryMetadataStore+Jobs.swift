import DepotCore
import Foundation

extension InMemoryMetadataStore: JobStore {
    public func enqueue(_ new: [NewJob], limits: JobLimits, now: Date) async throws -> [JobRecord] {
        try enqueueNow(new, limits: limits, now: now)
    }

    /// Runs `body`; when it throws, the jobs are as they were before it (an object write and its
    /// jobs are one step).
    func atomically<T>(_ body: () throws -> T) throws -> T {
        let saved = (jobs, jobHistory)
        do { return try body() } catch {
            (jobs, jobHistory) = saved
            throw error
        }
    }

    /// The jobs part of an object's write (``JobBatch``).
    func apply(_ batch: JobBatch, for key: ObjectKey) throws {
        if batch.cancelsReplaced { cancelNow(source: key, keeping: Set(batch.jobs.map(\.key)), now: batch.now) }
        if !batch.jobs.isEmpty { _ = try enqueueNow(batch.jobs, limits: batch.limits, now: batch.now) }
    }

    func enqueueNow(_ new: [NewJob], limits: JobLimits, now: Date) throws -> [JobRecord] {
        var out: [JobRecord] = []
        var added: [JobRecord] = []
        for n in new {
            if let existing = (jobs + added).first(where: { $0.key.bytesEqual(n.key) }) {
                out.append(existing)
                continue
            }
            let job = JobRecord(n, now: now)
            added.append(job)
            out.append(job)
        }
        let open = jobs.filter(\.state.isOpen)
        if open.count + added.count > limits.total {
            throw StorageError.unavailable("the job queue is full (\(limits.total) open jobs); try again later")
        }
        for tenant in Set(added.compactMap(\.tenant)) {
            let mine = open.filter { $0.tenant?.bytesEqual(tenant) ?? false }.count + added.filter { $0.tenant?.bytesEqual(tenant) ?? false }.count
            if mine > limits.perTenant {
                throw StorageError.unavailable("too many open jobs for this tenant (\(limits.perTenant)); try again later")
            }
        }
        for job in added {
            jobs.append(job)
            jobHistory[job.id] = [JobEvent(at: now, state: .queued, attempt: 0)]
        }
        return out
    }

    public func claimJobs(kinds: [String], worker: String, limit: Int, leaseUntil: Date, now: Date) async throws -> [JobRecord] {
        var claimed: [JobRecord] = []
        let order = jobs.indices.sorted { jobs[$0].runAfter < jobs[$1].runAfter }
        for i in order where claimed.count < limit && kinds.contains(jobs[i].kind) {
            var j = jobs[i]
            let lapsed = j.state == .running && (j.leaseUntil ?? now) < now
            guard (j.state == .queued && j.runAfter <= now) || lapsed else { continue }
            if lapsed && j.attempts >= j.maxAttempts {
                j.state = .dead
                j.lastError = "the worker's lease lapsed on the last attempt (\(j.leaseOwner ?? "?"))"
                j.leaseOwner = nil
                j.leaseUntil = nil
                j.updatedAt = now
                jobs[i] = j
                jobHistory[j.id, default: []].append(JobEvent(at: now, state: .dead, attempt: j.attempts, error: j.lastError))
                continue
            }
            let error = lapsed ? "the lease of \(j.leaseOwner ?? "?") lapsed; taken over" : nil
            j.state = .running
            j.attempts += 1
            j.leaseOwner = worker
            j.leaseUntil = leaseUntil
            j.updatedAt = now
            jobs[i] = j
            jobHistory[j.id, default: []].append(JobEvent(at: now, state: .running, attempt: j.attempts, error: error))
            claimed.append(j)
        }
        return claimed
    }

    public func renewLeases(ids: [String], worker: String, until: Date, now: Date) async throws -> Set<String> {
        var held: Set<String> = []
        for i in jobs.indices where ids.contains(jobs[i].id) && jobs[i].state == .running && jobs[i].leaseOwner == worker {
            jobs[i].leaseUntil = until
            held.insert(jobs[i].id)
        }
        return held
    }

    public func finishJob(id: String, worker: String, attempt: Int, outcome: JobOutcome, now: Date) async throws -> Bool {
        guard let i = jobs.firstIndex(where: { $0.id == id }), jobs[i].state == .running, jobs[i].leaseOwner == worker,
            jobs[i].attempts == attempt
        else { return false }
        var j = jobs[i]
        let (state, error) = outcome.row
        j.state = state
        j.lastError = error ?? j.lastError
        if case .retry(let at, _) = outcome { j.runAfter = at }
        j.leaseOwner = nil
        j.leaseUntil = nil
        j.updatedAt = now
        jobs[i] = j
        jobHistory[id, default: []].append(JobEvent(at: now, state: state, attempt: attempt, error: error))
        return true
    }

    public func job(id: String) async throws -> JobRecord? { jobs.first { $0.id == id } }

    public func jobEvents(id: String) async throws -> [JobEvent] { jobHistory[id] ?? [] }

    public func listJobs(state: JobState?, after: String?, limit: Int) async throws -> [JobRecord] {
        var newestFirst = Array(jobs.reversed())
        if let after {
            guard let i = newestFirst.firstIndex(where: { $0.id == after }) else { return [] }
            newestFirst = Array(newestFirst[(i + 1)...])
        }
        return Array(newestFirst.filter { state == nil || $0.state == state }.prefix(max(0, limit)))
    }

    public func jobCounts() async throws -> [JobState: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
        for j in jobs { counts[j.state, default: 0] += 1 }
        return counts
    }

    public func retryJobs(ids: [String]?, now: Date) async throws -> Int {
        var n = 0
        for i in jobs.indices where jobs[i].state == .dead && (ids?.contains(jobs[i].id) ?? true) {
            jobs[i].state = .queued
            jobs[i].attempts = 0
            jobs[i].runAfter = now
            jobs[i].updatedAt = now
            jobHistory[jobs[i].id, default: []].append(JobEvent(at: now, state: .queued, attempt: 0, error: "retried by an operator"))
            n += 1
        }
        return n
    }

    public func cancelJobs(source: ObjectKey, keeping: Set<String>, now: Date) async throws -> Int {
        cancelNow(source: source, keeping: keeping, now: now)
    }

    @discardableResult
    func cancelNow(source: ObjectKey, keeping: Set<String>, now: Date) -> Int {
        var n = 0
        for i in jobs.indices where jobs[i].state.isOpen && !keeping.contains(jobs[i].key) {
            guard let s = jobs[i].source, s.bucket.bytesEqual(source.bucket), s.path.string.bytesEqual(source.path.string) else { continue }
            jobs[i].state = .cancelled
            jobs[i].leaseOwner = nil
            jobs[i].leaseUntil = nil
            jobs[i].updatedAt = now
            jobHistory[jobs[i].id, default: []].append(
                JobEvent(at: now, state: .cancelled, attempt: jobs[i].attempts, error: "its source was replaced or deleted"))
            n += 1
        }
        return n
    }

    public func purgeJobs(states: Set<JobState>, before: Date) async throws -> Int {
        let gone = jobs.filter { states.contains($0.state) && !$0.state.isOpen && $0.updatedAt < before }.map(\.id)
        jobs.removeAll { gone.contains($0.id) }
        for id in gone {
            jobHistory[id] = nil
            jobProgressTexts[id] = nil
        }
        return gone.count
    }

    public func setJobProgress(id: String, worker: String, progress: String, now: Date) async throws -> Bool {
        guard jobs.contains(where: { $0.id == id && $0.state == .running && $0.leaseOwner == worker }) else { return false }
        jobProgressTexts[id] = progress
        return true
    }

    public func jobProgress(id: String) async throws -> String? { jobProgressTexts[id] }
}
