import DepotCore
import DepotPostgres
import Foundation
import Logging
import PostgresNIO
import Testing

/// What the PostgreSQL store does beyond the conformance suite: what sharing one database
/// between servers needs.
@Suite("PostgreSQL metadata store", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipNote)))
struct PostgresMetadataStoreTests {
    let now = Date()

    func intent(_ id: String, expires: TimeInterval = 300) throws -> UploadIntent {
        UploadIntent(
            id: id, bucket: "assets", path: try ObjectPath("alice/job/\(id).png"), owner: "alice", contentType: "image/png",
            size: 10, sha256: nil, upsert: false, state: .pending, expiresAt: now.addingTimeInterval(expires), createdAt: now)
    }

    /// A second store (its own connection pool, as another server has) on the same database.
    func secondServer(on store: PostgresMetadataStore, url: String, claimLease: TimeInterval = 600) async throws -> (
        PostgresMetadataStore, @Sendable () -> Void
    ) {
        let other = try PostgresMetadataStore(
            url: url, claimLease: claimLease, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let runner = await other.start()
        return (other, { runner.cancel() })
    }

    @Test func anIntentIsClaimedOnceAcrossServers() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        let a = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let runA = await a.start()
        defer { runA.cancel() }
        try await a.migrate()
        let (b, stopB) = try await secondServer(on: a, url: url)
        defer { stopB() }
        for round in 0..<10 {
            try await a.createIntent(try intent("i\(round)"))
            let wins = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        (try? await (i % 2 == 0 ? a : b).claimIntent(id: "i\(round)", now: self.now)) != nil
                    }
                }
                var n = 0
                for await won in group where won { n += 1 }
                return n
            }
            #expect(wins == 1, "round \(round)")
        }
    }

    @Test func aClaimLeftByADeadServerLapsesAfterTheLease() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        let store = try PostgresMetadataStore(url: url, claimLease: 1, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let runner = await store.start()
        defer { runner.cancel() }
        try await store.migrate()
        try await store.createBucket(BucketRecord(name: "assets", isPublic: false, createdAt: now))
        try await store.createIntent(try intent("x"))
        _ = try await store.claimIntent(id: "x", now: now)
        // Within the lease: in use.
        await #expect(throws: StorageError.self) { try await store.claimIntent(id: "x", now: self.now.addingTimeInterval(0.5)) }
        // After it, the claim is taken as abandoned; the URL works again, once.
        let again = try await store.claimIntent(id: "x", now: now.addingTimeInterval(2))
        #expect(again.state == .uploading)
        await #expect(throws: StorageError.self) { try await store.claimIntent(id: "x", now: self.now.addingTimeInterval(2.5)) }
        // A consumed intent never comes back, however old.
        _ = try await store.commitIntent(
            id: "x",
            object: ObjectRecord(
                bucket: "assets", path: try ObjectPath("alice/job/x.png"), owner: "alice", blobID: .random(), size: 10,
                contentType: "image/png", sha256: String(repeating: "0", count: 64), generation: 1, createdAt: now))
        do {
            _ = try await store.claimIntent(id: "x", now: now.addingTimeInterval(3600))
            Issue.record("a consumed URL must not be claimable")
        } catch let e as StorageError {
            #expect(e.code == .uploadConsumed)
        }
    }

    @Test func serversMigratingTogetherApplyEachVersionOnce() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        let stores = try (0..<4).map { _ in
            try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        }
        var runners: [Task<Void, Never>] = []
        for s in stores { runners.append(await s.start()) }
        defer { runners.forEach { $0.cancel() } }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for s in stores { group.addTask { try await s.migrate() } }
            var all: [[Int]] = []
            for try await a in group { all.append(a) }
            return all
        }
        #expect(applied.filter { !$0.isEmpty } == [Array(1...PostgresMetadataStore.latestVersion)])
        #expect(try await stores[0].migrate().isEmpty)
    }

    /// A store on a new database whose statements give up after `timeout` (the shared test bound
    /// is a minute, too long for what these tests wait out), with an `assets` bucket made through a
    /// store with the shared bound (a loaded machine may take longer than `timeout` to set up).
    func boundedStore(_ timeout: Duration) async throws -> (PostgresMetadataStore, url: String, stop: @Sendable () -> Void) {
        let url = try await PostgresTestServer.makeDatabase()
        let setup = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let setupRunner = await setup.start()
        defer { setupRunner.cancel() }
        try await setup.migrate()
        try await setup.createBucket(BucketRecord(name: "assets", isPublic: false, createdAt: now))
        let store = try PostgresMetadataStore(url: url, timeout: timeout, logger: PostgresTestServer.logger)
        let runner = await store.start()
        return (store, url, { runner.cancel() })
    }

    @Test func thePoolReconnectsAfterTheServerDropsItsConnections() async throws {
        let (store, url, stop) = try await boundedStore(.seconds(5))
        defer { stop() }
        _ = try? await store.bucket(named: "assets")  // the pool has a connection
        let database = try #require(URL(string: url)?.lastPathComponent)
        // What a PostgreSQL restart looks like from here: every connection closed by the server.
        try await PostgresTestServer.admin!.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database) AND pid <> pg_backend_pid()")
        // A request may meet a dead connection (503, the client retries), and a statement sent on
        // one may never be answered: it is abandoned after the store's timeout, never awaited for
        // ever (that hung the whole test suite once). Then it works again.
        var recovered = false
        for _ in 0..<20 {
            let start = ContinuousClock.now
            if (try? await store.bucket(named: "assets")) != nil { recovered = true; break }
            #expect(ContinuousClock.now - start < .seconds(30), "one request must end soon after the 5 s bound")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(recovered)
    }

    @Test func aStatementThatWaitsPastTheTimeoutIsUnavailable() async throws {
        let (store, url, stop) = try await boundedStore(.seconds(3))
        defer { stop() }
        // Another server holds the buckets table locked for a long time.
        let (other, stopOther) = try await secondServer(on: store, url: url)
        defer { stopOther() }
        let locked = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await other.client.withTransaction(logger: PostgresTestServer.logger) { conn in
                _ = try await conn.query("LOCK TABLE buckets IN ACCESS EXCLUSIVE MODE", logger: PostgresTestServer.logger)
                locked.continuation.yield()
                try await Task.sleep(for: .seconds(40))
            }
        }
        defer { holder.cancel() }
        for await _ in locked.stream { break }
        let start = ContinuousClock.now
        do {
            _ = try await store.bucket(named: "assets")
            Issue.record("the read must give up while the table is locked")
        } catch let e as StorageError {
            #expect(e.code == .unavailable)
        }
        // Given up at the bound, not when the lock ends (40 s).
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test func anUnreachableDatabaseIsUnavailable() async throws {
        let store = try PostgresMetadataStore(
            url: "postgres://depot:depot@127.0.0.1:9/none?sslmode=disable", timeout: .seconds(1), logger: PostgresTestServer.logger)
        let runner = await store.start()
        defer { runner.cancel() }
        let start = ContinuousClock.now
        do {
            try await store.ping()
            Issue.record("ping must fail")
        } catch let e as StorageError {
            #expect(e.code == .unavailable)
        }
        // Not a timing test: only far below the minute the pool would otherwise keep the request waiting.
        #expect(ContinuousClock.now - start < .seconds(15))
    }

    @Test func badURLsAreRefusedWithAReason() {
        for url in ["mysql://u@h/db", "postgres://host/db", "postgres://u@h/db?sslmode=sometimes", "not a url"] {
            #expect(throws: StorageError.self, "\(url)") {
                _ = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
            }
        }
    }
}

/// Rows cached by one server while another writes the same database: every write is heard
/// (`depot_rows` notifications) and drops the cached row within the lease, and a server that loses
/// its listening connection serves nothing from memory until it listens again.
@Suite("PostgreSQL row cache across servers", .enabled(if: PostgresTestServer.enabled, Comment(rawValue: PostgresTestServer.skipNote)))
struct PostgresRowCacheTests {
    let now = Date()

    /// Server A writes through its own store; server B reads through a cache kept by a listener.
    struct Servers {
        let a: PostgresMetadataStore
        let b: CachedMetadataStore
        let bStore: PostgresMetadataStore
        let control: RowCacheControl
        let url: String
    }

    func withServers(_ body: (Servers) async throws -> Void) async throws {
        let url = try await PostgresTestServer.makeDatabase()
        let a = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let runA = await a.start()
        defer { runA.cancel() }
        try await a.migrate()
        let bStore = try PostgresMetadataStore(url: url, timeout: PostgresTestServer.timeout, logger: PostgresTestServer.logger)
        let runB = await bStore.start()
        defer { runB.cancel() }
        let control = RowCacheControl()
        let listener = Task { await PostgresRowListener(store: bStore).run(control) }
        defer { listener.cancel() }
        try await waitUntil("B listens", limit: .seconds(10)) { control.isTrusted }
        try await a.createBucket(BucketRecord(name: "assets", isPublic: false, createdAt: now))
        try await body(Servers(a: a, b: CachedMetadataStore(bStore, control: control), bStore: bStore, control: control, url: url))
    }

    /// Polls `condition` every 10 ms; fails after `limit`. Returns how long it took.
    @discardableResult
    func waitUntil(_ what: String, limit: Duration = .seconds(1), _ condition: () async throws -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if try await condition() { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("\(what): not within \(limit)")
        return limit
    }

    func object(_ path: String, generation: Int64 = 1) throws -> ObjectRecord {
        ObjectRecord(
            bucket: "assets", path: try ObjectPath(path), owner: "alice", blobID: BlobID.random(), size: 10, contentType: "image/png",
            sha256: String(repeating: "0", count: 64), cacheControl: nil, metadata: nil, generation: generation, createdAt: now,
            updatedAt: now)
    }

    @Test func aWriteOnOneServerDropsTheRowCachedByTheOther() async throws {
        try await withServers { s in
            let key = ObjectKey(bucket: "assets", path: try ObjectPath("alice/job/x.png"))
            _ = try await s.a.putObject(try object("alice/job/x.png", generation: 1), upsert: false)
            #expect(try await s.b.object(at: key)?.generation == 1)
            // Cached on B (once the insert's own notification, which may drop the first load, is heard).
            try await waitUntil("B caches the row", limit: .seconds(10)) {
                _ = try await s.b.object(at: key)
                return s.b.peekObject(at: key)?.generation == 1
            }

            // Revoked on A (a new generation): B's cached row goes within the second.
            _ = try await s.a.setGeneration(2, at: key, date: now)
            try await waitUntil("the revoke reaches B") { s.b.peekObject(at: key) == nil }
            #expect(try await s.b.object(at: key)?.generation == 2)

            // Moved (a flip) and deleted on A.
            let moved = ObjectKey(bucket: "assets", path: try ObjectPath("alice/job/y.png"))
            _ = try await s.a.moveObject(from: key, to: moved, generation: 3, at: now)
            try await waitUntil("the move reaches B") { s.b.peekObject(at: key) == nil }
            #expect(try await s.b.object(at: key) == nil)
            #expect(try await s.b.object(at: moved)?.generation == 3)
            _ = try await s.a.deleteObject(at: moved)
            try await waitUntil("the delete reaches B") { s.b.peekObject(at: moved) == nil }
            #expect(try await s.b.object(at: moved) == nil)

            // A bucket made public on A.
            #expect(try await s.b.bucket(named: "assets")?.isPublic == false)
            try await s.a.updateBucket(BucketRecord(name: "assets", isPublic: true, createdAt: now), endingLinks: true)
            try await waitUntil("the bucket change reaches B") { s.b.peekBucket(named: "assets") == nil }
            #expect(try await s.b.bucket(named: "assets")?.isPublic == true)
        }
    }

    @Test func aServerThatLosesItsListenerServesNothingFromMemoryUntilItListensAgain() async throws {
        try await withServers { s in
            let key = ObjectKey(bucket: "assets", path: try ObjectPath("alice/job/x.png"))
            _ = try await s.a.putObject(try object("alice/job/x.png", generation: 1), upsert: false)
            #expect(try await s.b.object(at: key)?.generation == 1)

            // The listening connection is killed: B stops trusting its rows (a hot URL's answer too).
            let killed = try await s.a.client.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(PostgresRowListener.applicationName) AND datname = current_database()",
                logger: PostgresTestServer.logger
            ).collect()
            #expect(killed.count == 1)
            try await waitUntil("B distrusts its rows") { !s.control.isTrusted }
            #expect(s.b.peekObject(at: key) == nil)
            #expect(s.b.peekEpoch != s.b.peekEpoch)
            // Meanwhile a write on A: B reads it from the database, and caches nothing.
            _ = try await s.a.setGeneration(2, at: key, date: now)
            #expect(try await s.b.object(at: key)?.generation == 2)

            // Listening again: rows are cached and right.
            // (Under a heavily loaded machine heartbeats may come back later than the lease: the
            // cache then stays off, which is right; hence the long limit.)
            try await waitUntil("B listens again", limit: .seconds(30)) { s.control.isTrusted }
            try await waitUntil("B caches the row again", limit: .seconds(30)) {
                let row = try await s.b.object(at: key)
                return row?.generation == 2 && s.b.peekObject(at: key)?.generation == 2
            }
        }
    }

    @Test func aStatementWritingManyRowsDropsTheWholeCache() async throws {
        try await withServers { s in
            var keys: [ObjectKey] = []
            for i in 0..<101 {
                let o = try object("alice/job/\(i).png")
                _ = try await s.a.putObject(o, upsert: false)
                keys.append(o.key)
            }
            // Cached on B once the inserts' own notifications are heard.
            try await waitUntil("B caches the rows", limit: .seconds(5)) {
                for key in keys.prefix(3) { _ = try await s.b.object(at: key) }
                return keys.prefix(3).allSatisfy { s.b.peekObject(at: $0) != nil }
            }
            // A bucket's visibility change gives all 101 rows a new generation in one statement: `*`.
            try await s.a.updateBucket(BucketRecord(name: "assets", isPublic: true, createdAt: now), endingLinks: true)
            try await waitUntil("the change reaches B") { keys.prefix(3).allSatisfy { s.b.peekObject(at: $0) == nil } }
            #expect(try await s.b.object(at: keys[0])?.generation != 1)
        }
    }
}
