import DepotCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Keeps a server's row cache right while other servers write the same database: listens on
/// `depot_rows`, where every write to `objects` and `buckets` is announced by a trigger
/// (migration 3), and drops the rows named from the cache (``RowCacheControl``). A connection of
/// its own (a pooled one could not listen) is checked every ``heartbeat``; each check answered
/// renews the cache's lease for ``lease`` from the moment it was asked, so a connection that dies
/// or hangs stops the cache within the lease, and a lost connection drops the cache whole. On
/// reconnecting, it listens first, then drops the cache (what was written meanwhile) and renews.
public struct PostgresRowListener: Sendable {
    public static let channel = "depot_rows"
    /// The listening connection's `application_name` (seen in `pg_stat_activity`).
    public static let applicationName = "depot-row-listener"
    let target: PostgresMetadataStore.Target
    let logger: Logger
    /// How often the connection is checked.
    public var heartbeat: Duration = .milliseconds(200)
    /// How long rows are trusted after a check was asked (and answered).
    public var lease: Duration = .milliseconds(700)
    /// The longest a check may take before the connection is given up.
    public var checkTimeout: Duration = .seconds(2)
    /// The wait before connecting again.
    public var retryDelay: Duration = .milliseconds(500)

    public init(store: PostgresMetadataStore, heartbeat: Duration = .milliseconds(200), lease: Duration = .milliseconds(700)) {
        self.heartbeat = heartbeat
        self.lease = lease
        self.target = store.target
        self.logger = store.logger
    }

    /// Listens until the task is cancelled; the cache is distrusted whenever it is not listening.
    public func run(_ control: RowCacheControl) async {
        var attempt = 0
        let failing = FailureStreak()
        while !Task.isCancelled {
            control.distrust()
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: try target.connection(), id: attempt, logger: logger)
                // Closed in the background: a connection the server dropped must not hold up the
                // next attempt.
                defer { Task { try? await connection.close() } }
                try await listen(
                    on: connection, control,
                    heard: {
                        if failing.end() { logger.info("row cache: listening to PostgreSQL again") }
                    })
            } catch {
                if !Task.isCancelled, failing.begin() {
                    logger.warning("row cache: lost PostgreSQL's notifications, rows are read from the database until they are back (\(error))")
                }
            }
            control.distrust()
            try? await Task.sleep(for: retryDelay)
        }
        control.distrust()
    }

    private func listen(on connection: PostgresConnection, _ control: RowCacheControl, heard: @escaping @Sendable () -> Void) async throws {
        try await connection.listen(on: Self.channel) { notifications in
            // Listening: whatever was written before this point is dropped, later writes are heard.
            control.invalidateAll()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await notification in notifications { Self.apply(notification.payload, to: control) }
                    throw StorageError.unavailable("the notifications ended")
                }
                group.addTask {
                    var first = true
                    while true {
                        let asked = ContinuousClock.now
                        try await check(connection)
                        control.renew(for: lease - (ContinuousClock.now - asked))
                        if first { heard() }
                        first = false
                        try await Task.sleep(for: heartbeat)
                    }
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
    }

    /// One round trip on the listening connection, within ``checkTimeout``. PostgreSQL sends a
    /// listening session the notifications of transactions committed before its query, before its
    /// answer: once answered, nothing written before it was asked is unheard.
    ///
    /// Not awaited past the timeout: a query sent on a connection the server has just dropped may
    /// never be answered nor fail (its promise is never completed), and cannot be cancelled, so a
    /// task group waiting for it would never end and the listener never reconnect (seen in the
    /// full test suite). The abandoned query ends with its connection, if ever.
    private func check(_ connection: PostgresConnection) async throws {
        let checkTimeout = self.checkTimeout
        _ = try await abandoningAfter(checkTimeout, { StorageError.unavailable("PostgreSQL did not answer within \(checkTimeout)") }) {
            [logger] in try await connection.query("SELECT 1", logger: logger).collect()
        }
    }

    /// `o:<bucket>/<name>`, `b:<name>` or `*` (anything else drops everything).
    static func apply(_ payload: String, to control: RowCacheControl) {
        if payload.hasPrefix("o:") {
            let key = payload.dropFirst(2)
            if let slash = key.firstIndex(of: "/"), let path = try? ObjectPath(String(key[key.index(after: slash)...])) {
                control.invalidate(object: ObjectKey(bucket: String(key[..<slash]), path: path))
                return
            }
        } else if payload.hasPrefix("b:") {
            control.invalidate(bucket: String(payload.dropFirst(2)))
            return
        }
        control.invalidateAll()
    }
}

/// Whether the listener is failing: one log line when it starts, one when it ends.
private final class FailureStreak: Sendable {
    private let failing = Mutex(false)

    /// True when this starts a streak.
    func begin() -> Bool { swap(true) == false }

    /// True when this ends a streak.
    func end() -> Bool { swap(false) == true }

    private func swap(_ new: Bool) -> Bool {
        failing.withLock { old in
            let was = old
            old = new
            return was
        }
    }
}
