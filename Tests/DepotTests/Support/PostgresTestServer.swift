import DepotCore
import DepotPostgres
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the tests use, started by `scripts/test` (through
/// `scripts/pg-test-server`); its URL (a superuser) comes from the environment.
enum PostgresTestServer {
    static let environment = ProcessInfo.processInfo.environment
    static let adminURL = environment["DEPOT_TEST_DATABASE_URL"]

    /// Whether the PostgreSQL suites run: when the server is configured, and always in CI.
    static let enabled = adminURL != nil || environment["CI"] != nil
    static let skipNote = "PostgreSQL tests skipped: DEPOT_TEST_DATABASE_URL is not set (scripts/test starts PostgreSQL and sets it)"

    static var logger: Logger {
        let l = TestLogging.logger("depot-test-pg", level: .critical)
        return l
    }

    /// The stores' bound on one statement: generous, since every suite starts at once and a loaded
    /// 2-core machine can take more than the product's 10 s to create and migrate a database
    /// (these tests are not about time; the bound itself has its own test).
    static let timeout: Duration = .seconds(60)

    /// A connection pool on the server's admin database, running for the whole test process.
    static let admin: PostgresClient? = {
        guard let adminURL, let store = try? PostgresMetadataStore(url: adminURL, logger: logger) else { return nil }
        Task { await store.run() }
        return store.client
    }()

    /// A URL of a new, empty database (one per test, so tests do not see each other).
    static func makeDatabase() async throws -> String {
        guard let adminURL, let admin else {
            throw StorageError.unavailable("DEPOT_TEST_DATABASE_URL is not set; run the tests with scripts/test")
        }
        let name = "depot_t_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        var c = URLComponents(string: adminURL)!
        c.path = "/" + name
        return c.string!
    }

    /// A migrated store on a new database; `stop` ends its connection pool.
    static func makeStore(claimLease: TimeInterval = 600) async throws -> (PostgresMetadataStore, stop: @Sendable () -> Void) {
        let store = try PostgresMetadataStore(url: try await makeDatabase(), claimLease: claimLease, timeout: timeout, logger: logger)
        let runner = await store.start()
        try await store.migrate()
        return (store, { runner.cancel() })
    }
}
