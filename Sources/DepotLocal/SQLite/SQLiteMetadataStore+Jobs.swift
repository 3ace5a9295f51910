import DepotCore
import Foundation
import GRDB

/// The job queue in SQLite: every method one write (or read) transaction; SQLite's one writer makes
/// each claim atomic.
extension SQLiteMetadataStore: JobStore {
    static let jobColumns =
        "id, kind, key, tenant, source_bucket, source_name, payload, state, attempts, max_attempts, run_after, lease_owner, lease_until, last_error, created_at, updated_at"

    public func enqueue(_ new: [NewJob], limits: JobLimits, now: Date) async throws -> [JobRecord] {
        if new.isEmpty { return [] }
        return try await write { db in try Self.enqueue(new, limits: limits, now: now, in: db) }
    }

    /// The jobs part of an object's write (``JobBatch``), in its transaction.
    static func apply(_ batch: JobBatch, for key: ObjectKey, in db: Database) throws {
        if batch.cancelsReplaced {
            try cancel(source: key, keeping: Set(batch.jobs.map(\.key)), at: batch.now.timeIntervalSince1970, in: db)
        }
        if !batch.jobs.isEmpty { _ = try enqueue(batch.jobs, limits: batch.limits, now: batch.now, in: db) }
    }

    static func enqueue(_ new: [NewJob], limits: JobLimits, now: Date, in db: Database) throws -> [JobRecord] {
        let t = now.timeIntervalSince1970
        var out: [JobRecord] = []
        var added: [JobRecord] = []
        for n in new {
            if let existing = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM jobs WHERE key = ?"), arguments: [n.key])
            {
                out.append(try Self.job(existing))
            } else if let earlier = added.first(where: { $0.key.bytesEqual(n.key) }) {
                out.append(earlier)
            } else {
                let job = JobRecord(n, now: now)
                added.append(job)
                out.append(job)
            }
        }
        if added.isEmpty { return out }
        let open = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")) ?? 0
        if open + added.count > limits.total {
            throw StorageError.unavailable("the job queue is full (\(limits.total) open jobs); try again later")
        }
        var perTenant: [String: Int] = [:]
        for job in added { if let tenant = job.tenant { perTenant[tenant, default: 0] += 1 } }
        for (tenant, adding) in perTenant {
            let mine =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT count(*) FROM jobs WHERE tenant = ? AND state IN ('queued', 'running')"),
                    arguments: [tenant]) ?? 0
            if mine + adding > limits.perTenant {
                throw StorageError.unavailable("too many open jobs for this tenant (\(limits.perTenant)); try again later")
            }
        }
        for job in added {
            try db.cachedStatement(
                sql: """
                    INSERT INTO jobs (id, kind, key, tenant, source_bucket, source_name, payload, state, attempts, max_attempts,
                    run_after, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'queued',0,?,?,?,?)
                    """
            ).execute(arguments: [
                job.id, job.kind, job.key, job.tenant, job.source?.bucket, job.source?.path.string, job.payload, job.maxAttempts, t, t, t,
            ])
            try Self.record(db, job.id, t, .queued, 0, nil)
        }
        return out
    }

    public func claimJobs(kinds: [String], worker: String, limit: Int, leaseUntil: Date, now: Date) async throws -> [JobRecord] {
        if kinds.isEmpty || limit <= 0 { return [] }
        let (t, until) = (now.timeIntervalSince1970, leaseUntil.timeIntervalSince1970)
        let marks = Array(repeating: "?", count: kinds.count).joined(separator: ",")
        return try await write { db in
            // A lapsed lease on the last attempt: dead, not claimed again.
            let exhausted = try Row.fetchAll(
                db,
                sql: """
                    UPDATE jobs SET state = 'dead', last_error = 'the worker''s lease lapsed on the last attempt (' || coalesce(lease_owner, '?') || ')',
                    lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts
                    AND kind IN (\(marks)) RETURNING id, attempts, last_error
                    """, arguments: [t, t] + StatementArguments(kinds))
            for row in exhausted { try Self.record(db, row["id"], t, .dead, row["attempts"], row["last_error"]) }
            let due = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, state, lease_owner FROM jobs WHERE kind IN (\(marks))
                    AND ((state = 'queued' AND run_after <= ?) OR (state = 'running' AND lease_until < ?))
                    ORDER BY run_after, seq LIMIT ?
                    """, arguments: StatementArguments(kinds) + [t, t, limit])
            var claimed: [JobRecord] = []
            for row in due {
                let id: String = row["id"]
                let lapsed = (row["state"] as String) == "running"
                let error = lapsed ? "the lease of \((row["lease_owner"] as String?) ?? "?") lapsed; taken over" : nil
                guard
                    let updated = try Row.fetchOne(
                        db.cachedStatement(
                            sql:
                                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ? RETURNING \(Self.jobColumns)"
                        ), arguments: [worker, until, t, id])
                else { continue }
                let job = try Self.job(updated)
                try Self.record(db, id, t, .running, job.attempts, error)
                claimed.append(job)
            }
            return claimed
        }
    }

    public func renewLeases(ids: [String], worker: String, until: Date, now: Date) async throws -> Set<String> {
        if ids.isEmpty { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
        return try await write { db in
            let rows = try String.fetchAll(
                db,
                sql: "UPDATE jobs SET lease_until = ? WHERE state = 'running' AND lease_owner = ? AND id IN (\(marks)) RETURNING id",
                arguments: [until.timeIntervalSince1970, worker] + StatementArguments(ids))
            return Set(rows)
        }
    }

    public func finishJob(id: String, worker: String, attempt: Int, outcome: JobOutcome, now: Date) async throws -> Bool {
        let (state, error) = outcome.row
        let t = now.timeIntervalSince1970
        let runAfter: Double? = if case .retry(let at, _) = outcome { at.timeIntervalSince1970 } else { nil }
        return try await write { db in
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = ?, last_error = coalesce(?, last_error), run_after = coalesce(?, run_after),
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
                    WHERE id = ? AND state = 'running' AND lease_owner = ? AND attempts = ?
                    """
            ).execute(arguments: [state.rawValue, error, runAfter, t, id, worker, attempt])
            guard db.changesCount == 1 else { return false }
            try Self.record(db, id, t, state, attempt, error)
            return true
        }
    }

    public func job(id: String) async throws -> JobRecord? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.jobColumns) FROM jobs WHERE id = ?"), arguments: [id]).map(Self.job)
        }
    }

    public func jobEvents(id: String) async throws -> [JobEvent] {
        try await read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT at, state, attempt, error FROM job_events WHERE job_id = ? ORDER BY rowid"), arguments: [id]
            ).map { row in
                guard let state = JobState(rawValue: row["state"]) else { throw StorageError.internal("unknown job state") }
                return JobEvent(at: Date(timeIntervalSince1970: row["at"]), state: state, attempt: row["attempt"], error: row["error"])
            }
        }
    }

    public func listJobs(state: JobState?, after: String?, limit: Int) async throws -> [JobRecord] {
        try await read { db in
            var sql = "SELECT \(Self.jobColumns) FROM jobs WHERE 1"
            var args: [(any DatabaseValueConvertible)?] = []
            if let state {
                sql += " AND state = ?"
                args.append(state.rawValue)
            }
            if let after {
                sql += " AND seq < coalesce((SELECT seq FROM jobs WHERE id = ?), -1)"
                args.append(after)
            }
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(max(0, limit))
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Self.job)
        }
    }

    public func jobCounts() async throws -> [JobState: Int] {
        try await read { db in
            var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM jobs GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func retryJobs(ids: [String]?, now: Date) async throws -> Int {
        let t = now.timeIntervalSince1970
        return try await write { db in
            var sql = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?, updated_at = ? WHERE state = 'dead'"
            var args: [(any DatabaseValueConvertible)?] = [t, t]
            if let ids {
                if ids.isEmpty { return 0 }
                sql += " AND id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
                args += ids.map { $0 }
            }
            let retried = try String.fetchAll(db, sql: sql + " RETURNING id", arguments: StatementArguments(args))
            for id in retried { try Self.record(db, id, t, .queued, 0, "retried by an operator") }
            return retried.count
        }
    }

    public func cancelJobs(source: ObjectKey, keeping: Set<String>, now: Date) async throws -> Int {
        try await write { db in try Self.cancel(source: source, keeping: keeping, at: now.timeIntervalSince1970, in: db) }
    }

    @discardableResult
    static func cancel(source: ObjectKey, keeping: Set<String>, at t: Double, in db: Database) throws -> Int {
        let open = try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT id, key, attempts FROM jobs WHERE source_bucket = ? AND source_name = ? AND state IN ('queued', 'running')"),
            arguments: [source.bucket, source.path.string])
        var n = 0
        for row in open where !keeping.contains(row["key"] as String) {
            let id: String = row["id"]
            try db.cachedStatement(
                sql: "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?"
            ).execute(arguments: [t, id])
            try Self.record(db, id, t, .cancelled, row["attempts"], "its source was replaced or deleted")
            n += 1
        }
        return n
    }

    public func purgeJobs(states: Set<JobState>, before: Date) async throws -> Int {
        let finished = states.filter { !$0.isOpen }.map(\.rawValue)
        if finished.isEmpty { return 0 }
        let marks = Array(repeating: "?", count: finished.count).joined(separator: ",")
        return try await write { db in
            let ids = try String.fetchAll(
                db, sql: "DELETE FROM jobs WHERE state IN (\(marks)) AND updated_at < ? RETURNING id",
                arguments: StatementArguments(finished) + [before.timeIntervalSince1970])
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                let marks = Array(repeating: "?", count: part.count).joined(separator: ",")
                try db.execute(sql: "DELETE FROM job_events WHERE job_id IN (\(marks))", arguments: StatementArguments(part))
                try db.execute(sql: "DELETE FROM job_progress WHERE job_id IN (\(marks))", arguments: StatementArguments(part))
            }
            return ids.count
        }
    }

    public func setJobProgress(id: String, worker: String, progress: String, now: Date) async throws -> Bool {
        try await write { db in
            guard
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM jobs WHERE id = ? AND state = 'running' AND lease_owner = ?"), arguments: [id, worker])
                    != nil
            else { return false }
            try db.cachedStatement(
                sql: """
                    INSERT INTO job_progress (job_id, progress, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT (job_id) DO UPDATE SET progress = excluded.progress, updated_at = excluded.updated_at
                    """
            ).execute(arguments: [id, progress, now.timeIntervalSince1970])
            return true
        }
    }

    public func jobProgress(id: String) async throws -> String? {
        try await read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT progress FROM job_progress WHERE job_id = ?"), arguments: [id])
        }
    }

    // MARK: Rows

    static func record(_ db: Database, _ id: String, _ at: Double, _ state: JobState, _ attempt: Int, _ error: String?) throws {
        try db.cachedStatement(sql: "INSERT INTO job_events (job_id, at, state, attempt, error) VALUES (?,?,?,?,?)")
            .execute(arguments: [id, at, state.rawValue, attempt, error])
    }

    static func job(_ row: Row) throws -> JobRecord {
        guard let state = JobState(rawValue: row["state"]) else { throw StorageError.internal("unknown job state") }
        let bucket: String? = row["source_bucket"]
        let name: String? = row["source_name"]
        let leaseUntil: Double? = row["lease_until"]
        return JobRecord(
            id: row["id"], kind: row["kind"], key: row["key"], tenant: row["tenant"],
            source: try bucket.flatMap { b in try name.map { ObjectKey(bucket: b, path: try ObjectPath($0)) } },
            payload: row["payload"], state: state, attempts: row["attempts"], maxAttempts: row["max_attempts"],
            runAfter: Date(timeIntervalSince1970: row["run_after"]), leaseOwner: row["lease_owner"],
            leaseUntil: leaseUntil.map { Date(timeIntervalSince1970: $0) }, lastError: row["last_error"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }
}
