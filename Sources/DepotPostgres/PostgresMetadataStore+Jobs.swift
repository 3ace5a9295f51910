import DepotCore
import Foundation
import PostgresNIO

/// The job queue in PostgreSQL: servers claim side by side with `FOR UPDATE SKIP LOCKED` (a row
/// one server is claiming is skipped by the others, never waited for or claimed twice).
extension PostgresMetadataStore: JobStore {
    static let jobColumns =
        "id, kind, key, tenant, source_bucket, source_name, payload, state, attempts, max_attempts, run_after, lease_owner, lease_until, last_error, created_at, updated_at"

    /// ``jobColumns`` as `jobs.<column>` (the claim's UPDATE … FROM names two tables).
    static let qualifiedJobColumns = jobColumns.split(separator: ",").map { "jobs." + $0.trimmingCharacters(in: .whitespaces) }.joined(
        separator: ", ")

    public func enqueue(_ new: [NewJob], limits: JobLimits, now: Date) async throws -> [JobRecord] {
        if new.isEmpty { return [] }
        return try await transaction { [logger] conn in try await Self.enqueue(new, limits: limits, now: now, in: conn, logger: logger) }
    }

    /// The jobs part of an object's write (``JobBatch``), in its transaction.
    static func apply(_ batch: JobBatch, for key: ObjectKey, in conn: PostgresConnection, logger: Logger) async throws {
        if batch.cancelsReplaced {
            try await cancel(source: key, keeping: Set(batch.jobs.map(\.key)), at: batch.now.timeIntervalSince1970, in: conn, logger: logger)
        }
        if !batch.jobs.isEmpty { _ = try await enqueue(batch.jobs, limits: batch.limits, now: batch.now, in: conn, logger: logger) }
    }

    static func enqueue(_ new: [NewJob], limits: JobLimits, now: Date, in conn: PostgresConnection, logger: Logger) async throws -> [JobRecord] {
        let t = now.timeIntervalSince1970
        // One enqueuer at a time, so two servers cannot both pass a bound (the key is fixed).
        try await conn.query("SELECT pg_advisory_xact_lock(7356002)", logger: logger)
        var out: [JobRecord] = []
        var added: [JobRecord] = []
        for n in new {
            let existing = try await conn.query(
                "SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE key = \(n.key)", logger: logger
            ).collect()
            if let row = existing.first {
                out.append(try Self.job(row))
            } else if let earlier = added.first(where: { $0.key.bytesEqual(n.key) }) {
                out.append(earlier)
            } else {
                let job = JobRecord(n, now: now)
                added.append(job)
                out.append(job)
            }
        }
        if added.isEmpty { return out }
        let open = try await conn.query("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')", logger: logger).collect()
        if Int(try open.first?.decode(Int64.self) ?? 0) + added.count > limits.total {
            throw StorageError.unavailable("the job queue is full (\(limits.total) open jobs); try again later")
        }
        var perTenant: [String: Int] = [:]
        for job in added { if let tenant = job.tenant { perTenant[tenant, default: 0] += 1 } }
        for (tenant, adding) in perTenant {
            let mine = try await conn.query(
                "SELECT count(*) FROM jobs WHERE tenant = \(tenant) AND state IN ('queued', 'running')", logger: logger
            ).collect()
            if Int(try mine.first?.decode(Int64.self) ?? 0) + adding > limits.perTenant {
                throw StorageError.unavailable("too many open jobs for this tenant (\(limits.perTenant)); try again later")
            }
        }
        for job in added {
            try await conn.query(
                """
                INSERT INTO jobs (id, kind, key, tenant, source_bucket, source_name, payload, state, attempts, max_attempts,
                run_after, created_at, updated_at) VALUES (\(job.id), \(job.kind), \(job.key), \(job.tenant), \(job.source?.bucket),
                \(job.source?.path.string), \(job.payload), 'queued', 0, \(job.maxAttempts), \(t), \(t), \(t))
                """, logger: logger)
            try await Self.record(conn, logger, job.id, t, .queued, 0, nil)
        }
        return out
    }

    public func claimJobs(kinds: [String], worker: String, limit: Int, leaseUntil: Date, now: Date) async throws -> [JobRecord] {
        if kinds.isEmpty || limit <= 0 { return [] }
        let (t, until) = (now.timeIntervalSince1970, leaseUntil.timeIntervalSince1970)
        return try await transaction { [logger] conn in
            let exhausted = try await conn.query(
                """
                UPDATE jobs SET state = 'dead', last_error = 'the worker''s lease lapsed on the last attempt (' || coalesce(lease_owner, '?') || ')',
                lease_owner = NULL, lease_until = NULL, updated_at = \(t)
                WHERE seq IN (SELECT seq FROM jobs WHERE state = 'running' AND lease_until < \(t) AND attempts >= max_attempts
                AND kind = ANY(\(kinds)) FOR UPDATE SKIP LOCKED)
                RETURNING id, attempts, last_error
                """, logger: logger
            ).collect()
            for row in exhausted {
                let (id, attempts, error) = try row.decode((String, Int32, String?).self)
                try await Self.record(conn, logger, id, t, .dead, Int(attempts), error)
            }
            let claimed = try await conn.query(
                """
                WITH due AS (
                    SELECT seq, state AS was, lease_owner AS held_by FROM jobs WHERE kind = ANY(\(kinds))
                    AND ((state = 'queued' AND run_after <= \(t)) OR (state = 'running' AND lease_until < \(t)))
                    ORDER BY run_after, seq LIMIT \(limit) FOR UPDATE SKIP LOCKED
                )
                UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = \(worker), lease_until = \(until), updated_at = \(t)
                FROM due WHERE jobs.seq = due.seq
                RETURNING \(unescaped: Self.qualifiedJobColumns), due.was, due.held_by
                """, logger: logger
            ).collect()
            var jobs: [JobRecord] = []
            for row in claimed {
                let job = try Self.job(row)
                let r = row.makeRandomAccess()
                let was = try r["was"].decode(String.self)
                let heldBy = try r["held_by"].decode(String?.self)
                try await Self.record(
                    conn, logger, job.id, t, .running, job.attempts, was == "running" ? "the lease of \(heldBy ?? "?") lapsed; taken over" : nil)
                jobs.append(job)
            }
            return jobs.sorted { ($0.runAfter, $0.createdAt) < ($1.runAfter, $1.createdAt) }
        }
    }

    public func renewLeases(ids: [String], worker: String, until: Date, now: Date) async throws -> Set<String> {
        if ids.isEmpty { return [] }
        let rows = try await rows(
            """
            UPDATE jobs SET lease_until = \(until.timeIntervalSince1970)
            WHERE state = 'running' AND lease_owner = \(worker) AND id = ANY(\(ids)) RETURNING id
            """)
        return Set(try rows.map { try $0.decode(String.self) })
    }

    public func finishJob(id: String, worker: String, attempt: Int, outcome: JobOutcome, now: Date) async throws -> Bool {
        let (state, error) = outcome.row
        let t = now.timeIntervalSince1970
        let runAfter: Double? = if case .retry(let at, _) = outcome { at.timeIntervalSince1970 } else { nil }
        return try await transaction { [logger] conn in
            let updated = try await conn.query(
                """
                UPDATE jobs SET state = \(state.rawValue), last_error = coalesce(\(error), last_error), run_after = coalesce(\(runAfter), run_after),
                lease_owner = NULL, lease_until = NULL, updated_at = \(t)
                WHERE id = \(id) AND state = 'running' AND lease_owner = \(worker) AND attempts = \(attempt) RETURNING id
                """, logger: logger
            ).collect()
            guard !updated.isEmpty else { return false }
            try await Self.record(conn, logger, id, t, state, attempt, error)
            return true
        }
    }

    public func job(id: String) async throws -> JobRecord? {
        try await rows("SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE id = \(id)").first.map(Self.job)
    }

    public func jobEvents(id: String) async throws -> [JobEvent] {
        try await rows("SELECT at, state, attempt, error FROM job_events WHERE job_id = \(id) ORDER BY n").map { row in
            let (at, state, attempt, error) = try row.decode((Double, String, Int32, String?).self)
            guard let s = JobState(rawValue: state) else { throw StorageError.internal("unknown job state") }
            return JobEvent(at: Date(timeIntervalSince1970: at), state: s, attempt: Int(attempt), error: error)
        }
    }

    public func listJobs(state: JobState?, after: String?, limit: Int) async throws -> [JobRecord] {
        try await rows(
            """
            SELECT \(unescaped: Self.jobColumns) FROM jobs
            WHERE (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
            AND (\(after)::text IS NULL OR seq < coalesce((SELECT seq FROM jobs WHERE id = \(after)), -1))
            ORDER BY seq DESC LIMIT \(max(0, limit))
            """
        ).map(Self.job)
    }

    public func jobCounts() async throws -> [JobState: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
        for row in try await rows("SELECT state, count(*) FROM jobs GROUP BY state") {
            let (state, n) = try row.decode((String, Int64).self)
            if let s = JobState(rawValue: state) { counts[s] = Int(n) }
        }
        return counts
    }

    public func retryJobs(ids: [String]?, now: Date) async throws -> Int {
        if let ids, ids.isEmpty { return 0 }
        let t = now.timeIntervalSince1970
        return try await transaction { [logger] conn in
            let retried = try await conn.query(
                """
                UPDATE jobs SET state = 'queued', attempts = 0, run_after = \(t), updated_at = \(t)
                WHERE state = 'dead' AND (\(ids == nil) OR id = ANY(\(ids ?? []))) RETURNING id
                """, logger: logger
            ).collect()
            for row in retried { try await Self.record(conn, logger, try row.decode(String.self), t, .queued, 0, "retried by an operator") }
            return retried.count
        }
    }

    public func cancelJobs(source: ObjectKey, keeping: Set<String>, now: Date) async throws -> Int {
        try await transaction { [logger] conn in
            try await Self.cancel(source: source, keeping: keeping, at: now.timeIntervalSince1970, in: conn, logger: logger)
        }
    }

    @discardableResult
    static func cancel(source: ObjectKey, keeping: Set<String>, at t: Double, in conn: PostgresConnection, logger: Logger) async throws -> Int {
        let cancelled = try await conn.query(
            """
            UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL, updated_at = \(t)
            WHERE source_bucket = \(source.bucket) AND source_name = \(source.path.string) AND state IN ('queued', 'running')
            AND NOT (key = ANY(\(Array(keeping)))) RETURNING id, attempts
            """, logger: logger
        ).collect()
        for row in cancelled {
            let (id, attempts) = try row.decode((String, Int32).self)
            try await Self.record(conn, logger, id, t, .cancelled, Int(attempts), "its source was replaced or deleted")
        }
        return cancelled.count
    }

    public func purgeJobs(states: Set<JobState>, before: Date) async throws -> Int {
        let finished = states.filter { !$0.isOpen }.map(\.rawValue)
        if finished.isEmpty { return 0 }
        return try await transaction { [logger] conn in
            let ids = try await conn.query(
                "DELETE FROM jobs WHERE state = ANY(\(finished)) AND updated_at < \(before.timeIntervalSince1970) RETURNING id", logger: logger
            ).collect().map { try $0.decode(String.self) }
            if !ids.isEmpty {
                try await conn.query("DELETE FROM job_events WHERE job_id = ANY(\(ids))", logger: logger)
                try await conn.query("DELETE FROM job_progress WHERE job_id = ANY(\(ids))", logger: logger)
            }
            return ids.count
        }
    }

    public func setJobProgress(id: String, worker: String, progress: String, now: Date) async throws -> Bool {
        let rows = try await rows(
            """
            INSERT INTO job_progress (job_id, progress, updated_at)
            SELECT id, \(progress), \(now.timeIntervalSince1970) FROM jobs WHERE id = \(id) AND state = 'running' AND lease_owner = \(worker)
            ON CONFLICT (job_id) DO UPDATE SET progress = excluded.progress, updated_at = excluded.updated_at
            RETURNING job_id
            """)
        return !rows.isEmpty
    }

    public func jobProgress(id: String) async throws -> String? {
        try await rows("SELECT progress FROM job_progress WHERE job_id = \(id)").first.map { try $0.decode(String.self) }
    }

    // MARK: Rows

    static func record(
        _ conn: PostgresConnection, _ logger: Logger, _ id: String, _ at: Double, _ state: JobState, _ attempt: Int, _ error: String?
    ) async throws {
        try await conn.query(
            "INSERT INTO job_events (job_id, at, state, attempt, error) VALUES (\(id), \(at), \(state.rawValue), \(attempt), \(error))",
            logger: logger)
    }

    static func job(_ row: PostgresRow) throws -> JobRecord {
        let r = row.makeRandomAccess()
        guard let state = JobState(rawValue: try r["state"].decode(String.self)) else { throw StorageError.internal("unknown job state") }
        let bucket = try r["source_bucket"].decode(String?.self)
        let name = try r["source_name"].decode(String?.self)
        return JobRecord(
            id: try r["id"].decode(String.self), kind: try r["kind"].decode(String.self), key: try r["key"].decode(String.self),
            tenant: try r["tenant"].decode(String?.self),
            source: try bucket.flatMap { b in try name.map { ObjectKey(bucket: b, path: try ObjectPath($0)) } },
            payload: try r["payload"].decode(String.self), state: state, attempts: Int(try r["attempts"].decode(Int32.self)),
            maxAttempts: Int(try r["max_attempts"].decode(Int32.self)),
            runAfter: Date(timeIntervalSince1970: try r["run_after"].decode(Double.self)), leaseOwner: try r["lease_owner"].decode(String?.self),
            leaseUntil: try r["lease_until"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) },
            lastError: try r["last_error"].decode(String?.self),
            createdAt: Date(timeIntervalSince1970: try r["created_at"].decode(Double.self)),
            updatedAt: Date(timeIntervalSince1970: try r["updated_at"].decode(Double.self)))
    }
}
