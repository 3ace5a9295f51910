import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Supabase's object routes under `/storage/v1/object`: upload and update, download, HEAD, info,
/// delete and remove, move and copy, signed URLs (one, many) and signed upload URLs. Listings are
/// in ``StorageListController``. The signed, public and authenticated downloads and the PUT to an
/// upload URL are ``ObjectURLController``'s, shared with the Assets API.
struct StorageObjectController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    var downloads: DownloadResponder { DownloadResponder(service: service, metrics: metrics) }
    static let prefix = "/storage/v1/object/"

    func addRoutes(to router: Router<DepotRequestContext>) {
        router.post("/storage/v1/object/sign/**", use: sign)
        router.post("/storage/v1/object/upload/sign/**", use: createUploadURL)
        router.get("/storage/v1/object/info/**", use: info)
        router.post("/storage/v1/object/move", use: move)
        router.post("/storage/v1/object/copy", use: copy)
        router.get("/storage/v1/object/**", use: download)
        router.head("/storage/v1/object/**", use: download)
        router.post("/storage/v1/object/**", use: upload)
        router.put("/storage/v1/object/**", use: upload)
        router.delete("/storage/v1/object/**", use: delete)
    }

    private func key(_ request: Request, after prefix: String) throws -> ObjectKey {
        let (bucket, path) = try request.bucketAndPath(after: prefix)
        return ObjectKey(bucket: bucket, path: path)
    }

    // MARK: Upload, download, info, delete

    /// `POST` creates (`x-upsert: true` replaces), `PUT` replaces or creates.
    @Sendable func upload(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let key = try key(request, after: Self.prefix)
        let upsert = request.method == .put || request.headers[.xUpsert] == "true"
        let upload = try await SupabaseUpload.read(request, upsert: upsert, maxFileSize: service.settings.maxFileSize)
        let record = try await service.writeObject(as: identity, at: key, upload.write, body: upload.body)
        metrics.recordBytesIn(record.size)
        return SupabaseJSON.object(["Id": SupabaseJSON.uuid(record.blobID), "Key": key.description])
    }

    /// `GET|HEAD /object/{bucket}/{path}`: a missing or invalid JWT reads as `anon`.
    @Sendable func download(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let key = try key(request, after: Self.prefix)
        let decision = try await service.decideDownload(
            bucket: key.bucket, path: key.path, access: .caller(context.caller), conditions: DownloadConditions(request))
        return try await downloads.render(decision, head: request.method == .head)
    }

    /// `GET /object/info/[authenticated/|public/]{bucket}/{path}`.
    @Sendable func info(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let rest = try request.rawRest(after: "/storage/v1/object/info/")
        let object: ObjectRecord, bucket: BucketRecord
        if rest.hasPrefix("public/") {
            let key = try key(request, after: "/storage/v1/object/info/public/")
            object = try await service.resolvePublic(bucket: key.bucket, path: key.path)
            bucket = try await service.bucket(as: .service, named: key.bucket)
        } else if rest.hasPrefix("authenticated/") {
            let identity = try context.requireIdentity()
            (object, bucket) = try await service.readObjectAndBucket(
                as: identity, at: try key(request, after: "/storage/v1/object/info/authenticated/"))
        } else {
            (object, bucket) = try await service.readObjectAndBucket(as: context.caller, at: try key(request, after: "/storage/v1/object/info/"))
        }
        var response = SupabaseJSON.response { json in
            json.beginObject()
            json.key("id"); json.string(SupabaseJSON.uuid(object.blobID))
            json.key("name"); json.string(object.path.string)
            json.key("version"); json.string(SupabaseJSON.uuid(object.blobID))
            json.key("bucket_id"); json.string(object.bucket)
            json.key("size"); json.int(object.size)
            json.key("content_type"); json.string(object.contentType)
            json.key("cache_control"); json.string(object.cacheControl ?? "no-cache")
            json.key("etag"); json.string(object.etag)
            json.key("metadata"); SupabaseJSON.userMetadata(object, into: &json)
            json.key("last_modified"); json.string(HTTPDate.iso8601(object.updatedAt))
            json.key("created_at"); json.string(HTTPDate.iso8601(object.createdAt))
            json.endObject()
        }
        response.headers[.eTag] = object.etag
        response.headers[.lastModified] = HTTPDate.format(object.updatedAt)
        response.headers[.cacheControl] = CachePolicy.stored(object, in: bucket)
        return response
    }

    /// `DELETE /object/{bucket}` with `{"prefixes":[…]}` removes those exact names (skipping
    /// the missing and the forbidden) and returns the deleted rows; `DELETE /object/{bucket}/{path}`
    /// deletes one.
    @Sendable func delete(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let rest = try request.rawRest(after: Self.prefix)
        if rest.utf8.contains(UInt8(ascii: "/")) {
            try await service.deleteObject(as: identity, at: try key(request, after: Self.prefix))
            return SupabaseJSON.message("Successfully deleted")
        }
        let bucket = try request.segment(after: Self.prefix)
        let body = try await SupabaseBody.read(request, limit: JSONBodyLimit.batch)
        guard let prefixes = try body.strings("prefixes") else {
            throw StorageError.invalidRequest("body must have required property 'prefixes'")
        }
        let removed = try await service.removeObjects(as: identity, bucket: bucket, paths: prefixes)
        return SupabaseJSON.response { json in
            json.beginArray()
            for r in removed { SupabaseJSON.row(r, into: &json) }
            json.endArray()
        }
    }

    // MARK: Move and copy

    private func endpoints(_ body: SupabaseBody) throws -> (ObjectKey, ObjectKey) {
        let bucket = try body.requiredString("bucketId")
        let destinationBucket = try body.string("destinationBucket") ?? bucket
        try BucketRecord.validate(name: bucket)
        try BucketRecord.validate(name: destinationBucket)
        return (
            ObjectKey(bucket: bucket, path: try ObjectPath(try body.requiredString("sourceKey"))),
            ObjectKey(bucket: destinationBucket, path: try ObjectPath(try body.requiredString("destinationKey")))
        )
    }

    /// `POST /object/move`: one metadata transaction, no bytes copied.
    @Sendable func move(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let (from, to) = try endpoints(try await SupabaseBody.read(request))
        _ = try await service.moveObject(as: identity, from: from, to: to)
        return SupabaseJSON.message("Successfully moved")
    }

    /// `POST /object/copy`: the bytes are streamed into a new blob.
    @Sendable func copy(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let body = try await SupabaseBody.read(request)
        let (from, to) = try endpoints(body)
        var options = CopyOptions()
        options.upsert = request.headers[.xUpsert] == "true"
        options.copyMetadata = try body.bool("copyMetadata") ?? true
        if let overrides = body.object("metadata") {
            options.cacheControl = try overrides.string("cacheControl").map { try SupabaseUpload.cacheControl(given: $0, in: "metadata") }
            // Checked like an upload's Content-Type (refused when it is not one type/subtype), never dropped.
            options.contentType = try overrides.string("mimetype").flatMap { $0.isEmpty ? nil : $0 }
        }
        if let encoded = request.headers[.xMetadata], let data = Data(base64Encoded: encoded) {
            options.userMetadata = SupabaseUpload.jsonObjectText(data)
        }
        let record = try await service.copyObject(as: identity, from: from, to: to, options)
        return SupabaseJSON.object([
            "Id": SupabaseJSON.uuid(record.blobID), "Key": to.description, "name": record.path.string, "bucket_id": record.bucket,
        ])
    }

    // MARK: Signed URLs

    /// `POST /object/sign/{bucket}/{path}` → `{"signedURL"}`; `POST /object/sign/{bucket}` with
    /// `paths` → one `{"error","path","signedURL"}` per path, in order.
    @Sendable func sign(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        // One object (`{bucket}/{path}`) or a batch (`{bucket}` with `paths`): the body may be as
        // large as that kind of request needs, no larger.
        let single = try request.rawRest(after: ObjectURLPath.signed).utf8.contains(UInt8(ascii: "/"))
        let body = try await SupabaseBody.read(request, limit: single ? JSONBodyLimit.small : JSONBodyLimit.batch)
        guard let expiresIn = try body.int("expiresIn") else {
            throw StorageError.invalidRequest("body must have required property 'expiresIn'")
        }
        if single {
            let key = try key(request, after: ObjectURLPath.signed)
            if let transform = try Self.transform(in: body) {
                let token = try await service.signRender(as: identity, at: key, expiresIn: expiresIn, transform: transform)
                return SupabaseJSON.object(["signedURL": "/render/image/sign/\(key.bucket)/\(key.path.string)?token=\(token)"])
            }
            let token = try await service.signObject(as: identity, at: key, expiresIn: expiresIn)
            return SupabaseJSON.object(["signedURL": Self.signedURL(bucket: key.bucket, path: key.path.string, token: token)])
        }
        let bucket = try request.segment(after: ObjectURLPath.signed)
        try BucketRecord.validate(name: bucket)
        guard let paths = try body.strings("paths") else { throw StorageError.invalidRequest("body must have required property 'paths'") }
        let tokens = try await service.signObjects(as: identity, bucket: bucket, paths: paths, expiresIn: expiresIn)
        var json = JSONWriter(capacity: 64 + paths.count * 200)
        json.beginArray()
        for (path, token) in zip(paths, tokens) {
            json.beginObject()
            json.key("error")
            if token == nil { json.string("Either the object does not exist or you do not have access to it") } else { json.null() }
            json.key("path"); json.string(path)
            json.key("signedURL"); json.optionalString(token.map { Self.signedURL(bucket: bucket, path: path, token: $0) })
            json.endObject()
        }
        json.endArray()
        return JSONResponse.make(json: json.buffer)
    }

    /// A sign request's `transform` (`{"width":200,"height":200,…}`), when it has one.
    static func transform(in body: SupabaseBody) throws -> ImageTransform? {
        guard body.has("transform"), !body.isNull("transform") else { return nil }
        guard let t = body.object("transform") else { throw StorageError.invalidRequest("body/transform must be object") }
        return try ImageTransform.parse { name in
            name == "resize" || name == "format" ? try t.string(name) : try t.int(name).map { String($0) }
        }
    }

    /// Relative to the storage root, with the decoded name (clients encode the URL themselves).
    static func signedURL(bucket: String, path: String, token: String) -> String {
        "/object/sign/\(bucket)/\(path)?token=\(token)"
    }

    /// `POST /object/upload/sign/{bucket}/{path}` (no body, or a small one that is not read —
    /// clients send `{}`; `x-upsert: true` allows replacing): a single-use upload URL, valid for
    /// the configured upload URL lifetime.
    @Sendable func createUploadURL(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        _ = try await request.collectBody(upTo: JSONBodyLimit.small)
        let key = try key(request, after: ObjectURLPath.signedUpload)
        let token = try await service.createUploadToken(as: identity, at: key, upsert: request.headers[.xUpsert] == "true")
        return SupabaseJSON.object(["url": "/object/upload/sign/\(key.bucket)/\(key.path.string)?token=\(token)", "token": token])
    }
}
