import DepotCore
import Hummingbird
import HummingbirdCore
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 with Depot's channel handlers: the limits on slow and idle clients
    /// (``ConnectionGuard``, from `options.connections`), 100-continue and, given the service the
    /// router uses, answers to signed and public GETs of cached objects straight from the pipeline
    /// (``PipelineDownloadHandler``), counted in the same `metrics`, with the router's CORS `options`.
    /// The cap on connections is the application's: `options.connections.availableConnectionsDelegate`.
    public static func depot(
        pipelineDownloadsFrom service: StorageService? = nil, metrics: DepotMetrics = DepotMetrics(), serverName: String? = nil,
        options: DepotHTTPOptions = DepotHTTPOptions()
    ) -> HTTPServerBuilder {
        let fast = service.map {
            PipelineDownloads(service: $0, metrics: metrics, serverName: serverName, cors: CORSOrigins(options.objectCORSOrigins))
        }
        let limits = options.connections.guardsConnections ? options.connections : nil
        // Evaluated once per connection: each gets its own handlers.
        return .http1(configuration: .init(additionalChannelHandlers: channelHandlers(limits: limits, fast: fast)))
    }

    private static func channelHandlers(limits: ConnectionLimits?, fast: PipelineDownloads?) -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = [OversizedHeadAnswerInstaller()]
        if let limits { handlers.append(ConnectionGuardInstaller(limits: limits)) }
        if let fast { handlers.append(PipelineDownloadInstaller(downloads: fast)) }
        handlers.append(ExpectContinueHandler())
        return handlers
    }
}
