import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// Depot's Prometheus metrics: requests by route and status, bytes in and out, upload rejections
/// by reason. One registry per application (no global bootstrap), so tests can build many apps.
public struct DepotMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let bytesIn: Counter
    let bytesOut: Counter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        bytesIn = registry.makeCounter(name: "depot_bytes_in_total", help: "Bytes of object bodies received and stored.")
        bytesOut = registry.makeCounter(name: "depot_bytes_out_total", help: "Bytes of object bodies sent.")
    }

    func recordRequest(route: String, status: Int) {
        registry.makeCounter(
            name: "depot_http_requests_total", labels: [("route", route), ("status", String(status))],
            help: "HTTP requests by route and status."
        ).increment()
    }

    func recordError(_ code: StorageError.Code) {
        switch code {
        case .payloadTooLarge, .unsupportedMediaType, .mediaTypeMismatch, .checksumMismatch, .sizeMismatch:
            registry.makeCounter(
                name: "depot_upload_rejections_total", labels: [("reason", code.rawValue)],
                help: "Uploads rejected, by reason."
            ).increment()
        default: break
        }
    }

    func recordBytesIn(_ n: Int64) { bytesIn.increment(by: n) }
    func recordBytesOut(_ n: Int) { bytesOut.increment(by: Int64(n)) }

    /// The Prometheus text exposition.
    public func render() -> String {
        var out: [UInt8] = []
        registry.emit(into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Counts every request by matched route (never the raw path, so labels stay bounded) and status.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let metrics: DepotMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.recordRequest(route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch {
            metrics.recordRequest(route: context.endpointPath ?? "unmatched", status: 500)
            throw error
        }
    }
}
