import ArgumentParser
import Depot
import DepotCore
import Foundation
import Logging

/// `depot jobs …`: the durable job queue (image variants, folder jobs) seen and steered by an operator, on the
/// same database as the servers (safe while they run).
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract:
            "See and steer the background jobs (image variants, folder deletes and moves): list, show, retry dead letters, purge finished jobs.",
        subcommands: [List.self, Show.self, Retry.self, Purge.self])

    /// The job queue of the data directory's database or of PostgreSQL, open for `body`.
    static func withJobs<T>(_ data: DataOptions, _ metadata: MetadataOptions, _ body: (any JobStore) async throws -> T) async throws -> T {
        let dir = data.resolvedDataDir
        guard metadata.postgresURL != nil || FileManager.default.fileExists(atPath: dir + "/depot.sqlite") else {
            throw DepotFailure("no Depot data in \(dir)")
        }
        var logger = Logger(label: "depot")
        logger.logLevel = .warning
        let rows = try await OpenedMetadataStore.open(metadata.backend, dataDir: dir, migrate: false, logger: logger)
        return try await closing(rows.close) { try await body(rows.jobs) }
    }

    static func line(_ j: JobRecord) -> String {
        let when = ISO8601DateFormatter().string(from: j.updatedAt)
        let source = j.source.map { " \($0)" } ?? ""
        let error = j.lastError.map { "  — \($0)" } ?? ""
        return
            "\(j.id)  \(j.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(j.attempts)/\(j.maxAttempts)  \(when)  \(j.kind)\(source)\(error)"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first, with their state, attempts and last error.")
        @OptionGroup var data: DataOptions
        @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
        @Option(help: "Only jobs in this state: queued, running, succeeded, dead or cancelled.")
        var state: String?
        @Option(help: "At most this many (1 … 10000, default 100).")
        var limit = 100

        func run() async throws {
            let filter: JobState?
            do { filter = try state.map(JobState.parse) } catch { throw ValidationError("--state: \(error.message)") }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1 … 10000") }
            try await JobsCommand.withJobs(data, metadataOptions) { jobs in
                let counts = try await jobs.jobCounts()
                print(JobState.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
                for j in try await jobs.listJobs(state: filter, after: nil, limit: limit) { print(JobsCommand.line(j)) }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One job and every transition of it.")
        @OptionGroup var data: DataOptions
        @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            try await JobsCommand.withJobs(data, metadataOptions) { jobs in
                guard let j = try await jobs.job(id: id) else { throw DepotFailure("no job \(id)") }
                print(JobsCommand.line(j))
                print("  key: \(j.key)")
                let f = ISO8601DateFormatter()
                for e in try await jobs.jobEvents(id: id) {
                    print("  \(f.string(from: e.at))  \(e.state.rawValue) (attempt \(e.attempt))\(e.error.map { "  — \($0)" } ?? "")")
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue dead jobs again with fresh attempts: the ids given, or --all-dead.")
        @OptionGroup var data: DataOptions
        @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
        @Flag(help: "Every dead job.") var allDead = false
        @Argument(help: "Ids of dead jobs.") var ids: [String] = []

        func validate() throws {
            guard allDead != !ids.isEmpty else { throw ValidationError("give job ids or --all-dead (not both)") }
        }

        func run() async throws {
            let n = try await JobsCommand.withJobs(data, metadataOptions) { jobs in
                try await jobs.retryJobs(ids: allDead ? nil : ids, now: Date())
            }
            print("\(n) dead job(s) queued again")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove finished jobs (succeeded, cancelled; dead ones with --dead) and their histories. Open jobs are never removed.")
        @OptionGroup var data: DataOptions
        @OptionGroup(title: "Metadata store") var metadataOptions: MetadataOptions
        @Option(help: "Only jobs finished more than this many seconds ago (default 604800 = 7 days).")
        var olderThan = 604_800
        @Flag(help: "Remove dead jobs too (their errors are then gone).") var dead = false

        func run() async throws {
            guard olderThan >= 0 else { throw ValidationError("--older-than must be ≥ 0") }
            var states: Set<JobState> = [.succeeded, .cancelled]
            if dead { states.insert(.dead) }
            let n = try await JobsCommand.withJobs(data, metadataOptions) { jobs in
                try await jobs.purgeJobs(states: states, before: Date().addingTimeInterval(-TimeInterval(olderThan)))
            }
            print("\(n) finished job(s) removed")
        }
    }
}
