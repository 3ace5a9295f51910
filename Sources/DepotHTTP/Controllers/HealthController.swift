import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `GET /health` (checks both stores, open to anyone: load balancers call it) and `GET /metrics`
/// (Prometheus text, for the service role only: request counts per route and error codes are
/// the operator's business, not the public's — scrape with the `service_role` key as a bearer token).
struct HealthController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    var runnerCounts: (@Sendable () -> JobRunner.Counts)? = nil

    func addRoutes(to router: Router<DepotRequestContext>) {
        @Sendable func health() async throws {
            do {
                try await service.health()
            } catch {
                throw StorageError.unavailable("a store is not answering", cause: error)
            }
        }
        router.get("/health") { _, _ in
            try await health()
            return try JSONResponse.make(["status": "ok"])
        }
        // The same check for monitors that ask with HEAD: the status alone.
        router.head("/health") { _, _ in
            try await health()
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"])
        }
        router.get("/metrics") { _, context in
            guard try context.requireIdentity().role == .serviceRole else {
                throw StorageError.forbidden("metrics are for the service_role key")
            }
            if let jobs = service.jobs, service.makesImages {
                do { metrics.recordJobCounts(try await jobs.jobCounts()) } catch {
                    context.logger.warning("cannot count the jobs for /metrics: \(error)")
                }
            }
            if let runnerCounts { metrics.recordJobRunner(runnerCounts()) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}
