import DepotCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// Metadata in PostgreSQL, for several stateless Depot servers sharing one database.
///
/// Same contract as the SQLite store (one conformance suite runs against both). What differs is
/// what sharing needs: every check-then-write runs in a transaction that locks the rows it reads
/// (`FOR UPDATE`), unique violations become `.alreadyExists`, an upload URL is claimed by one
/// conditional `UPDATE … RETURNING` (so two servers receiving the same PUT cannot both win), and a
/// claim left by a server that died lapses after ``claimLease`` instead of being released at start
/// (other servers may be mid-upload). Names are compared and ordered bytewise (`COLLATE "C"`), as
/// in SQLite.
public final class PostgresMetadataStore: MetadataStore {
    /// The connection pool (for tools and tests that need other statements).
    public let client: PostgresClient
    let logger: Logger
    /// How long a claimed upload URL stays claimed without its upload finishing; after that, the
    /// claim is taken to be abandoned (its server died) and the URL can be used again.
    public let claimLease: TimeInterval
    /// Longest wait for one statement or transaction, connection included. While the database is
    /// down the pool keeps trying to connect; requests give up after this with `.unavailable`
    /// (503) instead of hanging.
    public let timeout: Duration
    let target: Target

    /// - Parameter url: `postgres://user:password@host:port/database[?sslmode=disable|prefer|require|verify-full]`.
    ///   Call ``run()`` (it runs the connection pool) before the first query, and ``migrate()``.
    public init(
        url: String, claimLease: TimeInterval = 600, timeout: Duration = .seconds(10), maxConnections: Int = 20, logger: Logger
    ) throws(StorageError) {
        self.target = try Target(url: url)
        var configuration = try Self.configuration(from: url)
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(5)
        // The server ends a statement at the same bound the store gives up on it, so an abandoned
        // statement (a lock wait, a dead client) does not go on holding its locks and connection.
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(max(1, milliseconds))")]
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.claimLease = claimLease
        self.timeout = timeout
    }

    /// Runs the connection pool until the calling task is cancelled. Queries wait for it.
    public func run() async { await client.run() }

    /// Runs the connection pool in a task of its own (cancel the task to close the pool), and
    /// gives it a moment to start, so the first query does not find it missing.
    public func start() async -> Task<Void, Never> {
        let runner = Task { await client.run() }
        try? await Task.sleep(for: .milliseconds(20))
        return runner
    }

    /// Parses a `postgres://` URL. TLS follows libpq's `sslmode`: `disable`; `prefer` (the default)
    /// and `require` encrypt without checking the certificate; `verify-ca`/`verify-full` check it.
    static func configuration(from url: String) throws(StorageError) -> PostgresClient.Configuration {
        let target = try Target(url: url)
        let tls: PostgresClient.Configuration.TLS
        switch target.tls {
        case .disable: tls = .disable
        case .prefer(let c): tls = .prefer(c)
        case .require(let c): tls = .require(c)
        }
        return PostgresClient.Configuration(
            host: target.host, port: target.port, username: target.user, password: target.password, database: target.database, tls: tls)
    }

    /// Where a `postgres://` URL points, for the pool and for single connections (the listener).
    struct Target: Sendable {
        enum TLS {
            case disable
            case prefer(TLSConfiguration)
            case require(TLSConfiguration)
        }
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String?
        var tls: TLS

        init(url: String) throws(StorageError) {
            guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme ?? ""),
                let host = c.host, !host.isEmpty, let user = c.user, !user.isEmpty
            else {
                throw .invalidRequest("the database URL must look like postgres://user:password@host:5432/database")
            }
            let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
            let mode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            switch mode {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer(unverified)
            case "require": tls = .require(unverified)
            case "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
            default: throw .invalidRequest("sslmode must be disable, prefer, require, verify-ca or verify-full, got '\(mode)'")
            }
            self.host = host
            self.port = c.port ?? 5432
            self.user = user
            self.password = c.password.flatMap { $0.removingPercentEncoding }
            self.database = database.isEmpty ? nil : database
        }

        /// A single connection's configuration (its own TLS context).
        func connection() throws -> PostgresConnection.Configuration {
            let tls: PostgresConnection.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer(let c): tls = .prefer(try NIOSSLContext(configuration: c))
            case .require(let c): tls = .require(try NIOSSLContext(configuration: c))
            }
            var configuration = PostgresConnection.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: tls)
            configuration.options.additionalStartupParameters = [("application_name", PostgresRowListener.applicationName)]
            // The listener reconnects on its own: a connection attempt that hangs is given up soon.
            configuration.options.connectTimeout = .seconds(2)
            return configuration
        }
    }

    // MARK: Running statements

    /// Runs `body` in a transaction, translating errors at the boundary.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [client, logger] in
            try await client.withTransaction(logger: logger) { conn in try await body(conn) }
        }
    }

    /// Runs one statement outside a transaction and collects its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await bounded { [client, logger] in try await client.query(query, logger: logger).collect() }
    }

    /// Runs `work` for at most ``timeout``; errors leave translated. A statement that outlives the
    /// timeout is abandoned, not awaited (``abandoningAfter(_:_:_:)``).
    private func bounded<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = self.timeout
        do {
            return try await abandoningAfter(timeout, { StorageError.unavailable("the database did not answer within \(timeout)") }, work)
        } catch {
            throw Self.translate(error)
        }
    }

    /// The one place where PostgreSQL errors become `StorageError`s.
    static func translate(_ error: any Error) -> any Error {
        if error is StorageError || error is CancellationError { return error }
        if let e = error as? PostgresTransactionError {
            return translate(e.closureError ?? e.beginError ?? e.commitError ?? e.rollbackError ?? StorageError.internal("transaction failed"))
        }
        if let e = error as? PSQLError {
            switch e.code {
            case .server:
                let state = e.serverInfo?[.sqlState] ?? ""
                if state == "23505" { return StorageError(.alreadyExists, "the name is taken", cause: e) }
                if state == "23503" { return StorageError(.notFound, "bucket not found", cause: e) }
                // 08: connection exceptions, 40: serialization failures and deadlocks, 53: out of
                // resources, 57: operator intervention (shutdown), 58: system errors.
                if ["08", "40", "53", "57", "58"].contains(String(state.prefix(2))) {
                    return StorageError(.unavailable, "the database is not available", cause: e)
                }
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
                return StorageError(.unavailable, "the database is not answering", cause: e)
            default: break
            }
        }
        return StorageError(.internalError, "metadata store error", cause: error)
    }

    public func ping() async throws {
        _ = try await rows("SELECT 1")
    }
}
