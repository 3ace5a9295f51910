import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import Synchronization

/// Depot's Prometheus metrics: requests by route and status, bytes in and out, upload rejections
/// by reason. One registry per application (no global bootstrap), so tests can build many apps.
public struct DepotMetrics: Sendable {
    /// The counters and gauges. Emitting it directly shows the downloads' per-loop counters
    /// (``LoopCounter``) as of the last ``render()``, which brings them up to date first.
    public let registry: PrometheusCollectorRegistry
    let bytesIn: Counter
    /// The runner's counts last brought into `depot_job_attempts_total`.
    private let jobRunnerSeen = SeenCounts()
    /// Counters the downloads' event loops add to (``LoopCounter``), brought up to date by
    /// ``render()``.
    private let loopCounters = LoopCounters()
    let bytesOut: LoopCounter
    let memoryDownloads: LoopCounter
    let fileDownloads: LoopCounter
    let smallFileDownloads: LoopCounter
    let smallFileDiskReads: LoopCounter
    let repeatedDownloads: LoopCounter
    /// Request counters by route and status, made once each (`makeCounter` per request was 2 % of
    /// a small download).
    private let requestCounters = CounterTable()

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        bytesIn = registry.makeCounter(descriptor: .depot("depot_bytes_in_total", help: "Bytes of object bodies received and stored."))
        bytesOut = loopCounters.add(registry.makeCounter(descriptor: .depot("depot_bytes_out_total", help: "Bytes of object bodies sent.")))
        memoryDownloads = loopCounters.add(
            registry.makeCounter(
                descriptor: .depot(
                    "depot_downloads_from_memory_total",
                    help: "Signed and public downloads answered from memory in the channel pipeline (also in depot_http_requests_total).")))
        fileDownloads = loopCounters.add(
            registry.makeCounter(
                descriptor: .depot(
                    "depot_downloads_sendfile_total",
                    help:
                        "Signed and public downloads of large local blobs sent by the kernel (sendfile) from the channel pipeline (also in depot_http_requests_total)."
                )))
        smallFileDownloads = loopCounters.add(
            registry.makeCounter(
                descriptor: .depot(
                    "depot_downloads_small_file_total",
                    help:
                        "Signed and public downloads of small blobs not in memory, read whole from their local file in the channel pipeline and kept in memory (also in depot_http_requests_total)."
                )))
        smallFileDiskReads = loopCounters.add(
            registry.makeCounter(
                descriptor: .depot(
                    "depot_downloads_small_file_disk_total",
                    help:
                        "Of depot_downloads_small_file_total, those whose bytes were not all in the page cache: read on a thread instead of the event loop (many: the page cache is smaller than the objects asked for)."
                )))
        repeatedDownloads = loopCounters.add(
            registry.makeCounter(
                descriptor: .depot(
                    "depot_downloads_repeated_total",
                    help:
                        "Plain GETs of a URL already answered in the current second, answered again from the same bytes before HTTP decoding (also in depot_downloads_from_memory_total)."
                )))
    }

    func recordRequest(route: String, status: Int) {
        requestCounter(route: route, status: status).increment()
    }

    /// The counter of one route and status, to keep where the same pair is counted per request.
    func requestCounter(route: String, status: Int) -> Counter {
        requestCounters.counter(route: route, status: status) {
            registry.makeCounter(
                descriptor: .depot("depot_http_requests_total", help: "HTTP requests by route and status."),
                labels: [("route", route), ("status", String(status))])
        }
    }

    func recordError(_ code: StorageError.Code) {
        switch code {
        case .payloadTooLarge, .unsupportedMediaType, .mediaTypeMismatch, .checksumMismatch, .sizeMismatch:
            registry.makeCounter(
                descriptor: .depot("depot_upload_rejections_total", help: "Uploads rejected, by reason."), labels: [("reason", code.rawValue)]
            ).increment()
        default: break
        }
    }

    /// `depot_jobs{state}`: the jobs of the whole queue (every server's) in each state, read from
    /// the database when /metrics is scraped.
    func recordJobCounts(_ counts: [JobState: Int]) {
        for state in JobState.allCases {
            registry.makeGauge(
                descriptor: .depot("depot_jobs", help: "Background jobs (image variants) in each state, over every server."),
                labels: [("state", state.rawValue)]
            ).set(Int64(counts[state] ?? 0))
        }
    }

    /// `depot_job_attempts_total{outcome}`: this server's job attempts by how they ended (and
    /// `claimed`), brought up to the runner's own counts when /metrics is scraped.
    func recordJobRunner(_ counts: JobRunner.Counts) {
        let now: [(String, Int)] = [
            ("claimed", counts.claimed), ("succeeded", counts.succeeded), ("retried", counts.retried), ("dead", counts.dead),
            ("cancelled", counts.cancelled), ("dropped", counts.dropped),
        ]
        let deltas = jobRunnerSeen.table.withLock { seen in
            now.map { name, value in
                let delta = max(0, value - (seen[name] ?? 0))
                seen[name] = max(value, seen[name] ?? 0)
                return (name, delta)
            }
        }
        for (outcome, delta) in deltas {
            registry.makeCounter(
                descriptor: .depot("depot_job_attempts_total", help: "This server's job attempts, by outcome (claimed: started)."),
                labels: [("outcome", outcome)]
            ).increment(by: Int64(delta))
        }
    }

    func recordBytesIn(_ n: Int64) { bytesIn.increment(by: n) }
    func recordBytesOut(_ n: Int) { bytesOut.increment(by: Int64(n)) }
    func recordMemoryDownload() { memoryDownloads.increment() }
    func recordFileDownload() { fileDownloads.increment() }
    func recordSmallFileDownload() { smallFileDownloads.increment() }
    func recordSmallFileDiskRead() { smallFileDiskReads.increment() }
    func recordRepeatedDownload() { repeatedDownloads.increment() }

    /// `counter`, incremented per event loop and brought up to date by ``render()``.
    func loopCounter(_ counter: Counter) -> LoopCounter { loopCounters.add(counter) }

    /// The Prometheus text exposition.
    public func render() -> String {
        loopCounters.publish()
        var out: [UInt8] = []
        registry.emit(into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Values of outside counts already added to counters.
final class SeenCounts: Sendable {
    let table = Mutex<[String: Int]>([:])
}

/// Counters made on first use and kept. Routes are the router's patterns, so the table is bounded.
final class CounterTable: Sendable {
    private struct Key: Hashable {
        let route: String
        let status: Int
    }
    private let table = Mutex<[Key: Counter]>([:])

    func counter(route: String, status: Int, make: () -> Counter) -> Counter {
        let key = Key(route: route, status: status)
        if let counter = table.withLock({ $0[key] }) { return counter }
        let counter = make()
        table.withLock { $0[key] = counter }
        return counter
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

extension MetricNameDescriptor {
    /// A metric named exactly `name` (its unit, e.g. `_total`, is part of it).
    static func depot(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
