import DepotCore
import Foundation
import Hummingbird

/// `/v1/jobs`: the background job queue for the service role (as `depot jobs` is for an operator
/// at the machine): list with counts, one job with its history, retry dead letters, purge finished
/// jobs. Anyone else: 403.
struct JobsController: Sendable {
    let service: StorageService

    func addRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.get("jobs", use: list)
        group.post("jobs/retry", use: retry)
        group.post("jobs/purge", use: purge)
        group.get("jobs/:id", use: show)
    }

    /// The queue, or 403 for anyone but the service role (404 where this build keeps none).
    private func jobs(_ context: DepotRequestContext) throws -> any JobStore {
        guard try context.requireIdentity().role == .serviceRole else {
            throw StorageError.forbidden("the job queue is for the service_role key")
        }
        guard let jobs = service.jobs else { throw StorageError.notFound("this server keeps no job queue") }
        return jobs
    }

    struct JobView: Encodable {
        var id, kind, state: String
        var source: String?
        var attempts, maxAttempts: Int
        var runAfter, createdAt, updatedAt: Date
        var lastError: String?
        var history: [Event]?
        struct Event: Encodable {
            var at: Date
            var state: String
            var attempt: Int
            var error: String?
        }
        init(_ j: JobRecord, history: [JobEvent]? = nil) {
            (id, kind, state, source) = (j.id, j.kind, j.state.rawValue, j.source?.description)
            (attempts, maxAttempts, runAfter, createdAt, updatedAt, lastError) = (
                j.attempts, j.maxAttempts, j.runAfter, j.createdAt, j.updatedAt, j.lastError
            )
            self.history = history?.map { Event(at: $0.at, state: $0.state.rawValue, attempt: $0.attempt, error: $0.error) }
        }
    }

    struct Page: Encodable {
        var counts: [String: Int]
        var items: [JobView]
        var nextCursor: String?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(counts, forKey: .counts)
            try c.encode(items, forKey: .items)
            try c.encode(nextCursor, forKey: .nextCursor)  // explicit null on the last page
        }
        enum CodingKeys: String, CodingKey { case counts, items, nextCursor }
    }

    @Sendable func list(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let jobs = try jobs(context)
        var limit = 100
        if let l = request.query("limit") {
            guard let n = RequestNumber.parse(l).flatMap(Int.init(exactly:)), (1...1000).contains(n) else {
                throw StorageError.invalidRequest("limit must be 1 … 1000")
            }
            limit = n
        }
        let state = try request.query("state").map(JobState.parse)
        let cursor = request.query("cursor")
        if let cursor, cursor.utf8.count != 32 || !cursor.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) {
            throw StorageError.invalidRequest("cursor must be a job id (32 hex digits)")
        }
        let page = try await jobs.listJobs(state: state, after: cursor, limit: limit)
        let counts = try await jobs.jobCounts()
        return try JSONResponse.make(
            Page(
                counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }), items: page.map { JobView($0) },
                nextCursor: page.count == limit ? page.last?.id : nil))
    }

    @Sendable func show(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let jobs = try jobs(context)
        let id = try context.parameters.require("id")
        guard let job = try await jobs.job(id: id) else { throw StorageError.notFound("job not found") }
        return try JSONResponse.make(JobView(job, history: try await jobs.jobEvents(id: id)))
    }

    struct RetryRequest: Decodable {
        var ids: [String]?
        var allDead: Bool?
    }

    @Sendable func retry(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let jobs = try jobs(context)
        let body = try await request.decodeJSON(RetryRequest.self)
        guard (body.allDead == true) != (body.ids != nil) else { throw StorageError.invalidRequest("give ids or allDead: true (not both)") }
        if let ids = body.ids, ids.count > service.settings.maxBatch {
            throw StorageError.invalidRequest("at most \(service.settings.maxBatch) ids")
        }
        let n = try await jobs.retryJobs(ids: body.allDead == true ? nil : body.ids, now: service.now())
        return try JSONResponse.make(["retried": n])
    }

    struct PurgeRequest: Decodable {
        /// Seconds since the job finished (default 7 days).
        var olderThan: Int64?
        /// Dead jobs too.
        var dead: Bool?
    }

    @Sendable func purge(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let jobs = try jobs(context)
        let body = try await request.decodeJSON(PurgeRequest.self)
        let age = body.olderThan ?? 604_800
        guard (0...366 * 86_400 * 100).contains(age) else { throw StorageError.invalidRequest("olderThan must be 0 … 3162240000 seconds") }
        var states: Set<JobState> = [.succeeded, .cancelled]
        if body.dead == true { states.insert(.dead) }
        let n = try await jobs.purgeJobs(states: states, before: service.now().addingTimeInterval(-TimeInterval(age)))
        return try JSONResponse.make(["purged": n])
    }
}
