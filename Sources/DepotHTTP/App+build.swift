import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// HTTP-level options.
public struct DepotHTTPOptions: Sendable {
    /// CORS origins for the object routes (signed, public, upload URLs); `*` allows any.
    public var objectCORSOrigins: [String] = ["*"]
    /// CORS origins for the authenticated API; none by default.
    public var apiCORSOrigins: [String] = []
    /// When set (`--download-mode redirect`), a signed GET is answered, after Depot's checks, with a
    /// 302 to a URL of the blob store that serves the bytes directly; nil streams them (proxy).
    public var directDownloads: (any BlobRedirecting)? = nil
    /// Lifetime of those URLs, seconds.
    public var directURLLifetime: Int = 60
    /// Requests per second per caller that presents a token (``RateLimiter``).
    public var rateLimits = RateLimiter.Limits()
    /// What this server's job workers have done (`depot_job_attempts_total` at `/metrics`).
    public var jobRunnerCounts: (@Sendable () -> JobRunner.Counts)? = nil
    /// Limits on slow and idle clients and on open connections.
    public var connections = ConnectionLimits()
    /// Whether signed and public GETs of cached objects are answered in the channel pipeline
    /// (``PipelineDownloadHandler``) before the router. Never with ``directDownloads``, whose signed
    /// GETs are redirects.
    public var pipelineDownloads = true
    /// The `Server` header; nil sends none.
    public var serverName: String? = "Depot"
    public init() {}
}

/// The one assembly of Depot's HTTP application, used by `depot serve` (through the `Depot`
/// library's ``DepotServer``) and by the tests: the router (``buildRouter``) behind Depot's server
/// (``HTTPServerBuilder/depot(pipelineDownloadsFrom:metrics:serverName:options:)``), listening on
/// `host`:`port` with the connection cap of `options.connections`. Port 0 picks a free port;
/// `onServerRunning` is given the listening channel (its `localAddress` has the port). The
/// connections are served by NIO's shared event loops (one per core) unless `eventLoops` says
/// otherwise.
public func buildApplication(
    service: StorageService, jwt: ProjectJWT, metrics: DepotMetrics = DepotMetrics(),
    options: DepotHTTPOptions = DepotHTTPOptions(), host: String = "127.0.0.1", port: Int = 8080,
    eventLoops: EventLoopGroupProvider = .singleton,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }, logger: Logger
) -> Application<RouterResponder<DepotRequestContext>> {
    let fast = options.pipelineDownloads && options.directDownloads == nil
    return Application(
        router: buildRouter(service: service, jwt: jwt, metrics: metrics, options: options),
        server: .depot(pipelineDownloadsFrom: fast ? service : nil, metrics: metrics, serverName: options.serverName, options: options),
        configuration: .init(
            address: .hostname(host, port: port), serverName: options.serverName,
            availableConnectionsDelegate: options.connections.availableConnectionsDelegate),
        onServerRunning: onServerRunning, eventLoopGroupProvider: eventLoops, logger: logger)
}

/// Builds Depot's router: every route of the Assets API (`/v1`), the Supabase Storage-compatible
/// API (`/storage/v1`) and the object URLs, behind the metrics, CORS and error middleware. Backends are already inside `service`; this function names none.
public func buildRouter(
    service: StorageService, jwt: ProjectJWT, metrics: DepotMetrics = DepotMetrics(),
    options: DepotHTTPOptions = DepotHTTPOptions()
) -> Router<DepotRequestContext> {
    let router = Router(context: DepotRequestContext.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: CORSPolicyMiddleware(objectOrigins: options.objectCORSOrigins, apiOrigins: options.apiCORSOrigins))
    router.add(middleware: ErrorMiddleware(metrics: metrics))
    router.add(middleware: IdentityMiddleware(jwt: jwt, limiter: RateLimiter(options.rateLimits)))

    HealthController(service: service, metrics: metrics, runnerCounts: options.jobRunnerCounts).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)
    ConsoleController().addRoutes(to: router)
    let objects = ObjectURLController(
        service: service, metrics: metrics, directDownloads: options.directDownloads, directURLLifetime: options.directURLLifetime)
    objects.addPublicRoutes(to: router)
    objects.addAuthenticatedRoutes(to: router.group("/storage/v1/object").add(middleware: RequireIdentity()))

    StorageBucketController(service: service).addRoutes(to: router)
    StorageObjectController(service: service, metrics: metrics).addRoutes(to: router)
    StorageListController(service: service).addRoutes(to: router)
    RenderController(service: service, metrics: metrics).addRoutes(to: router)
    ResumableController(service: service, metrics: metrics).addRoutes(to: router)
    router.get("/storage/v1/version") { _, _ in DepotVersion.string }
    router.get("/storage/v1/status") { _, _ in HTTPResponse.Status.ok }
    // Upstream's health check: any valid key or token; 200 either way, the answer in the body.
    router.get("/storage/v1/health") { _, context in
        _ = try context.requireIdentity()
        let healthy = (try? await service.health()) != nil
        return try JSONResponse.make(["healthy": healthy])
    }

    let v1 = router.group("/v1").add(middleware: RequireIdentity())
    AssetsController(service: service, metrics: metrics).addRoutes(to: v1)
    SigningController(service: service).addRoutes(to: v1)
    JobsController(service: service).addRoutes(to: v1)
    FolderController(service: service).addRoutes(to: v1)
    SeedCompatibilityController(service: service, metrics: metrics).addRoutes(to: router.group("").add(middleware: RequireIdentity()))
    return router
}

/// Depot's version, as `/storage/v1/version` and `depot --version` report it.
public enum DepotVersion {
    public static let string = "0.5.0"
}
