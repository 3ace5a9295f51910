import GRDB

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

    /// Raised inside a group's transaction to roll all of it back.
    private struct GroupAborted: Error {}

    private let queue: GroupingQueue<Body, any Sendable>

    /// - Parameter maxGroup: the most writes one transaction holds.
    init(pool: DatabasePool, maxGroup: Int = 256) {
        queue = GroupingQueue(maxGroup: maxGroup) { bodies in
            bodies.count == 1 ? [await Self.runAlone(bodies[0], pool)] : await Self.runGroup(bodies, pool)
        }
    }

    /// Runs `body` in a write transaction, grouped with concurrent ones; returns once it is durable.
    func submit(_ body: @escaping Body) async throws -> any Sendable {
        try await queue.submit(body)
    }

    private static func runGroup(_ bodies: [Body], _ pool: DatabasePool) async -> [Result<any Sendable, any Error>] {
        do {
            return try await pool.write { db in
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
            // Nothing of the group is stored: each write again, alone.
            var results: [Result<any Sendable, any Error>] = []
            for body in bodies { results.append(await runAlone(body, pool)) }
            return results
        }
    }

    private static func runAlone(_ body: Body, _ pool: DatabasePool) async -> Result<any Sendable, any Error> {
        do {
            return .success(try await pool.write(body))
        } catch {
            return .failure(error)
        }
    }
}
