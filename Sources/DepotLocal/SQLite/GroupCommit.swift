import GRDB
import Synchronization

/// Group commit: write transactions that arrive while another is committing are collected and
/// committed together, as one SQLite transaction — one WAL fsync for the whole group instead of
/// one each.
///
/// Each write runs in its own savepoint, in arrival order, so a write that throws (a taken name, a
/// consumed intent) is rolled back alone and the others of its group still commit. A write learns
/// its result only after the group's commit has returned, so nothing is reported stored before it
/// is durable. When the group cannot commit (or SQLite rolled the whole transaction back under a
/// write, as it does on I/O errors), nothing of it is stored, and each write is tried again alone,
/// in its own transaction.
///
/// With no concurrent writers a write commits at once, alone: grouping adds no waiting.
final class GroupCommit: Sendable {
    typealias Body = @Sendable (Database) throws -> any Sendable

    private struct Job {
        let body: Body
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
    }

    /// Raised inside a group's transaction to roll all of it back.
    private struct GroupAborted: Error {}

    private let pool: DatabasePool
    private let state = Mutex(State())
    /// The most writes one transaction holds.
    let maxGroup: Int

    init(pool: DatabasePool, maxGroup: Int = 256) {
        self.pool = pool
        self.maxGroup = maxGroup
    }

    /// Runs `body` in a write transaction, grouped with concurrent ones; returns once it is durable.
    func submit(_ body: @escaping Body) async throws -> any Sendable {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { s -> Bool in
                s.queue.append(Job(body: body, continuation: continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Commits groups until the queue is empty. Only one drain runs at a time.
    private func drain() async {
        while true {
            let group: [Job] = state.withLock { s in
                if s.queue.isEmpty {
                    s.draining = false
                    return []
                }
                let n = min(s.queue.count, maxGroup)
                let group = Array(s.queue.prefix(n))
                s.queue.removeFirst(n)
                return group
            }
            if group.isEmpty { return }
            if group.count == 1 {
                await runAlone(group[0])
            } else {
                await runGroup(group)
            }
        }
    }

    private func runGroup(_ group: [Job]) async {
        let bodies = group.map(\.body)
        let results: [Result<any Sendable, any Error>]
        do {
            results = try await pool.write { db in
                var results: [Result<any Sendable, any Error>] = []
                results.reserveCapacity(bodies.count)
                for body in bodies {
                    do {
                        var value: (any Sendable)?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        results.append(.success(value!))
                    } catch {
                        // SQLite may have rolled back the whole transaction (I/O errors, a full
                        // disk): then the writes before this one are gone too.
                        guard db.isInsideTransaction else { throw GroupAborted() }
                        results.append(.failure(error))
                    }
                }
                return results
            }
        } catch {
            for job in group { await runAlone(job) }
            return
        }
        for (job, result) in zip(group, results) { job.continuation.resume(with: result) }
    }

    private func runAlone(_ job: Job) async {
        do {
            job.continuation.resume(returning: try await pool.write(job.body))
        } catch {
            job.continuation.resume(throwing: error)
        }
    }
}
