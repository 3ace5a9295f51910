import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `GET /health` (checks both stores) and `GET /metrics` (Prometheus text).
struct HealthController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.get("/health") { _, _ in
            do {
                try await service.health()
            } catch {
                throw StorageError.unavailable("a store is not answering", cause: error)
            }
            return try JSONResponse.make(["status": "ok"])
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}
