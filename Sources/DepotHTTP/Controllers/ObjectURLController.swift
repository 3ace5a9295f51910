import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The URLs Depot hands out, in Supabase's shapes:
/// - `GET|HEAD /storage/v1/object/sign/{bucket}/{path}?token=…` — signed download, no headers needed;
/// - `GET|HEAD /storage/v1/object/public/{bucket}/{path}` — public download;
/// - `GET|HEAD /storage/v1/object/authenticated/{bucket}/{path}` — with a JWT;
/// - `PUT /storage/v1/object/upload/sign/{bucket}/{path}?token=…` — phase two of a direct upload.
struct ObjectURLController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    var directDownloads: (any BlobRedirecting)? = nil
    var directURLLifetime = 60
    var downloads: DownloadResponder { DownloadResponder(service: service, metrics: metrics) }

    /// Route labels (metrics) of the two download routes, shared with ``PipelineDownloadHandler``.
    static let signedRoute = ObjectURLPath.signed + "**"
    static let publicRoute = ObjectURLPath.public + "**"

    func addPublicRoutes(to router: Router<DepotRequestContext>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on(RouterPath(stringLiteral: Self.signedRoute), method: method, use: signed)
            router.on(RouterPath(stringLiteral: Self.publicRoute), method: method, use: publicObject)
        }
        router.put(RouterPath(stringLiteral: ObjectURLPath.signedUpload + "**"), use: uploadToSignedURL)
    }

    func addAuthenticatedRoutes(to group: RouterGroup<DepotRequestContext>) {
        group.on("authenticated/**", method: .get, use: authenticated)
        group.on("authenticated/**", method: .head, use: authenticated)
    }

    @Sendable func signed(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let (bucket, path) = try request.bucketAndPath(after: ObjectURLPath.signed)
        guard let token = request.query("token") else { throw StorageError(.signatureInvalid, "the URL has no token") }
        let decision = try await service.decideDownload(
            bucket: bucket, path: path, access: .signed(token: token), conditions: DownloadConditions(request))
        if let direct = directDownloads, request.method == .get {
            return redirect(decision, direct)
        }
        return try await downloads.render(decision, head: request.method == .head)
    }

    /// `302` to a short-lived URL of the blob store: the bytes skip this server. The URL makes the
    /// store answer with the decision's type, disposition and cache policy (the store evaluates
    /// the request's Range and conditions itself); the redirect itself is not cached (the URL it
    /// points to expires first).
    func redirect(_ decision: DownloadDecision, _ direct: any BlobRedirecting) -> Response {
        let object = decision.object
        let url = direct.directURL(
            for: object.blobID, lifetime: directURLLifetime,
            headers: DirectDownloadHeaders(
                contentType: object.contentType, contentDisposition: decision.disposition, cacheControl: decision.cacheControl))
        return Response(status: .found, headers: [.location: url, .cacheControl: "no-store"])
    }

    @Sendable func publicObject(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let (bucket, path) = try request.bucketAndPath(after: ObjectURLPath.public)
        let decision = try await service.decideDownload(bucket: bucket, path: path, access: .public, conditions: DownloadConditions(request))
        return try await downloads.render(decision, head: request.method == .head)
    }

    @Sendable func authenticated(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let (bucket, path) = try request.bucketAndPath(after: ObjectURLPath.authenticated)
        let decision = try await service.decideDownload(
            bucket: bucket, path: path, access: .authenticated(context.requireIdentity()), conditions: DownloadConditions(request))
        return try await downloads.render(decision, head: request.method == .head)
    }

    struct UploadResult: Encodable {
        var path: String
        var fileSize: Int64
        var contentType: String
        var checksum: String
        /// Supabase clients read `Key` (`bucket/path`).
        var Key: String
    }

    /// The PUT to an upload URL. An Assets API URL takes exactly the declared bytes (201 with the
    /// object); a Supabase signed upload URL takes a form or raw body like an upload through the
    /// server (200 with `Key`).
    @Sendable func uploadToSignedURL(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let (bucket, path) = try request.bucketAndPath(after: ObjectURLPath.signedUpload)
        guard let token = request.query("token") else { throw StorageError(.signatureInvalid, "the URL has no token") }
        let intent = try await service.uploadIntent(bucket: bucket, path: path, token: token)
        if intent.isOpen {
            let upload = try await SupabaseUpload.read(request, upsert: intent.upsert, maxFileSize: service.settings.maxFileSize)
            let record = try await service.completeUpload(
                intent, declaration: UploadDeclaration(contentType: upload.write.contentType, contentLength: upload.write.contentLength),
                cacheControl: upload.write.cacheControl, userMetadata: upload.write.userMetadata, body: upload.body)
            metrics.recordBytesIn(record.size)
            return SupabaseJSON.object(["Key": "\(bucket)/\(record.path.string)"])
        }
        let record = try await service.completeUpload(intent, declaration: request.uploadDeclaration(), body: request.body)
        metrics.recordBytesIn(record.size)
        return try JSONResponse.make(
            UploadResult(
                path: record.path.string, fileSize: record.size, contentType: record.contentType, checksum: record.sha256,
                Key: "\(bucket)/\(record.path.string)"),
            status: .created)
    }
}
