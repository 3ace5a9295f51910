import DepotCore
import HTTPTypes
import Hummingbird

/// Supabase's render API: transformed images (``ImageTransform``: `width`, `height`, `resize`,
/// `quality`, `format`), made once and kept (``RenditionCache``), sent like objects (ETag, 304,
/// Range, HEAD):
/// - `GET|HEAD /storage/v1/render/image/public/{bucket}/{path}?…` — a public bucket's image;
/// - `GET|HEAD /storage/v1/render/image/authenticated/{bucket}/{path}?…` — with a JWT;
/// - `GET|HEAD /storage/v1/render/image/sign/{bucket}/{path}?token=…` — the token's transformation.
struct RenderController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    var downloads: DownloadResponder { DownloadResponder(service: service, metrics: metrics) }

    func addRoutes(to router: Router<DepotRequestContext>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on(RouterPath(stringLiteral: ObjectURLPath.renderPublic + "**"), method: method, use: publicImage)
            router.on(RouterPath(stringLiteral: ObjectURLPath.renderAuthenticated + "**"), method: method, use: authenticated)
            router.on(RouterPath(stringLiteral: ObjectURLPath.renderSigned + "**"), method: method, use: signed)
        }
    }

    @Sendable func publicImage(_ request: Request, context: DepotRequestContext) async throws -> Response {
        try await render(request, after: ObjectURLPath.renderPublic, access: .public)
    }

    @Sendable func authenticated(_ request: Request, context: DepotRequestContext) async throws -> Response {
        try await render(request, after: ObjectURLPath.renderAuthenticated, access: .authenticated(try context.requireIdentity()))
    }

    @Sendable func signed(_ request: Request, context: DepotRequestContext) async throws -> Response {
        guard let token = request.query("token") else { throw StorageError(.signatureInvalid, "the URL has no token") }
        return try await render(request, after: ObjectURLPath.renderSigned, access: .signed(token: token))
    }

    private func render(_ request: Request, after prefix: String, access: RenderAccess) async throws -> Response {
        let (bucket, path) = try request.bucketAndPath(after: prefix)
        // A signed URL's transformation is its token's; the query's is not read (nor checked).
        let transform: ImageTransform
        if case .signed = access { transform = ImageTransform() } else { transform = try ImageTransform.parse { request.query($0) } }
        let (decision, varies) = try await service.renderImage(
            bucket: bucket, path: path, access: access, transform: transform, accept: request.headers[.accept],
            conditions: DownloadConditions(request))
        var response = try await downloads.render(decision, head: request.method == .head)
        if varies { response.headers[.vary] = "Accept" }
        return response
    }
}
