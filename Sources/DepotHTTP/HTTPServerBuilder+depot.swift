import DepotCore
import Hummingbird
import HummingbirdCore

extension HTTPServerBuilder {
    /// HTTP/1.1 with Depot's channel handlers: 100-continue and, given the service the router
    /// uses, answers to signed and public GETs of cached objects straight from the pipeline
    /// (``FastDownloadHandler``), counted in the same `metrics`, with the router's CORS `options`.
    public static func depot(
        fastDownloadsFrom service: StorageService? = nil, metrics: DepotMetrics = DepotMetrics(), serverName: String? = nil,
        options: DepotHTTPOptions = DepotHTTPOptions()
    ) -> HTTPServerBuilder {
        let fast = service.map {
            FastDownloads(service: $0, metrics: metrics, serverName: serverName, cors: CORSOrigins(options.objectCORSOrigins))
        }
        // Evaluated once per connection: each gets its own handlers.
        return .http1(configuration: .init(
            additionalChannelHandlers: fast.map { [FastDownloadInstaller(downloads: $0), ExpectContinueHandler()] }
                ?? [ExpectContinueHandler()]))
    }
}
