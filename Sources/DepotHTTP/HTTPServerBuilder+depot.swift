import DepotCore
import Hummingbird
import HummingbirdCore
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 with Depot's channel handlers: the limits on slow and idle clients and on each
    /// address's connections, and the refusal of bodies and framings no route takes
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
        let limits = options.connections
        // One count for the server, shared by its connections.
        let perAddress = limits.maxConnectionsPerAddress.map { ConnectionsPerAddress(cap: $0) }
        // Evaluated once per connection: each gets its own handlers.
        return .http1(configuration: .init(additionalChannelHandlers: channelHandlers(limits: limits, perAddress: perAddress, fast: fast)))
    }

    private static func channelHandlers(
        limits: ConnectionLimits, perAddress: ConnectionsPerAddress?, fast: PipelineDownloads?
    ) -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = [OversizedHeadAnswerInstaller()]
        handlers.append(ConnectionGuardInstaller(limits: limits, perAddress: perAddress))
        if let fast { handlers.append(PipelineDownloadInstaller(downloads: fast)) }
        handlers.append(ExpectContinueHandler())
        return handlers
    }
}
