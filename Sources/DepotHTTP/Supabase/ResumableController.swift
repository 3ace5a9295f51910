import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Resumable uploads, TUS 1.0.0 with `creation`, `creation-with-upload`, `termination`,
/// `expiration` and `checksum` (sha1, sha256), at three entries (``Entry``): Supabase's
/// `/storage/v1/upload/resumable` (a caller's token), its `/sign` form (an upload URL's token in
/// `x-signature`, no caller token), and the Assets API's `/v1/uploads`. The Storage API's entries
/// answer a missing or bad caller token in Supabase's JSON envelope, and what the upload refuses
/// with its real status and a plain-text message (as upstream's TUS handler does); the Assets
/// API's entry answers both in its JSON errors. 460 for a checksum mismatch everywhere.
struct ResumableController: Sendable {
    let service: StorageService
    let metrics: DepotMetrics
    static let checksumMismatch = HTTPResponse.Status(code: 460, reasonPhrase: "Checksum Mismatch")

    /// Where an upload is created and continued: who may, what its metadata says, how errors look.
    enum Entry: Sendable, CaseIterable {
        /// `Upload-Metadata` `bucketName`, `objectName`, `contentType`, `cacheControl`,
        /// `metadata`; `x-upsert: true` replaces.
        case storage
        /// As `storage`, with an upload URL's token in `x-signature` instead of a caller's token;
        /// owner and upsert are the URL's.
        case signed
        /// `Upload-Metadata` `jobId`, `contentType` (or `filetype`), `suffix`, `visibility`,
        /// `checksum`: the server names the object as for a presigned upload.
        case assets

        var path: String {
            switch self {
            case .storage: "/storage/v1/upload/resumable"
            case .signed: "/storage/v1/upload/resumable/sign"
            case .assets: "/v1/uploads"
            }
        }
    }

    func addRoutes(to router: Router<DepotRequestContext>) {
        for entry in Entry.allCases {
            let path = entry.path
            router.on(RouterPath(stringLiteral: path), method: .options, use: options)
            router.on(RouterPath(stringLiteral: path + "/{id}"), method: .options, use: options)
            router.post(RouterPath(stringLiteral: path)) { try await create($0, context: $1, entry) }
            router.head(RouterPath(stringLiteral: path + "/{id}")) { try await head($0, context: $1, entry) }
            router.patch(RouterPath(stringLiteral: path + "/{id}")) { try await patch($0, context: $1, entry) }
            router.delete(RouterPath(stringLiteral: path + "/{id}")) { try await terminate($0, context: $1, entry) }
            // TUS core: `X-HTTP-Method-Override` is the method (for clients that can only POST).
            router.post(RouterPath(stringLiteral: path + "/{id}")) { request, context in
                switch request.headers[.xHTTPMethodOverride]?.uppercased() {
                case "PATCH": return try await patch(request, context: context, entry)
                case "DELETE": return try await terminate(request, context: context, entry)
                case "HEAD": return try await head(request, context: context, entry)
                default: throw StorageError.notFound("POST to an upload needs X-HTTP-Method-Override: PATCH, DELETE or HEAD")
                }
            }
        }
        router.get(RouterPath(stringLiteral: Entry.assets.path + "/{id}"), use: assetOfUpload)
    }

    /// An Assets-API upload's progress while it runs (`202`, ``UploadProgress``), then the asset
    /// it made (`200`, the JSON `POST /v1/assets` answers: URL, checksum, visibility, variants).
    /// Plain JSON (no TUS headers needed), so a client reads its result as it would an upload's.
    @Sendable func assetOfUpload(_ request: Request, context: DepotRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let state = try await service.resumableStatus(as: .user(identity), id: try id(context))
        // A Storage-API upload of the same caller is no asset: it is not found here.
        guard state.upload.exactType == true else { throw StorageError.notFound("no such upload (or it expired)") }
        guard state.upload.finishedAt != nil else {
            let progress = UploadProgress(
                path: state.upload.path, offset: state.offset, length: state.upload.length, expiresAt: state.upload.expiresAt)
            var response = try JSONResponse.make(progress, status: .accepted)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        var response = try JSONResponse.make(try await service.asset(as: identity, path: try ObjectPath(state.upload.path)))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// An unfinished Assets-API upload, as `GET /v1/uploads/{id}` reports it.
    struct UploadProgress: Encodable {
        var path: String
        var offset: Int64
        var length: Int64
        var expiresAt: Date
        var complete = false
    }

    @Sendable func options(_ request: Request, context: DepotRequestContext) async throws -> Response {
        var headers: HTTPFields = [
            .tusResumable: TusHeaders.version, .tusVersion: TusHeaders.version, .tusExtension: TusHeaders.extensions,
            .tusChecksumAlgorithm: TusHeaders.checksumAlgorithms, .tusMaxSize: String(service.settings.maxFileSize),
        ]
        headers[.cacheControl] = "no-store"
        return Response(status: .noContent, headers: headers)
    }

    /// Runs `body` for the request's caller inside ``tus(_:_:_:)``. A caller's token is checked
    /// first (a missing or bad one is answered as on every route of its API, before the body is
    /// read); on the `/sign` entry, the upload URL's token in `x-signature` is what the upload
    /// needs (its absence is answered as the upload's refusals are).
    private func handle(
        _ request: Request, _ context: DepotRequestContext, _ entry: Entry, _ body: (ResumableCaller) async throws -> Response
    ) async throws -> Response {
        let user = entry == .signed ? nil : ResumableCaller.user(try context.requireIdentity())
        return try await tus(request, entry) {
            if let user { return try await body(user) }
            guard let token = request.headers[.xSignature], !token.isEmpty else {
                throw StorageError(.signatureInvalid, "the x-signature header (an upload URL's token) is required")
            }
            return try await body(.signed(token: token))
        }
    }

    func create(_ request: Request, context: DepotRequestContext, _ entry: Entry) async throws -> Response {
        try await handle(request, context, entry) { caller in
            guard request.headers[.uploadConcat] == nil else {
                throw StorageError.invalidRequest("Upload-Concat (concatenation) is not supported")
            }
            guard request.headers[.uploadDeferLength] == nil else {
                throw StorageError.invalidRequest("Upload-Defer-Length is not supported: send Upload-Length")
            }
            guard let length = try TusHeaders.number(request.headers[.uploadLength], name: "Upload-Length") else {
                throw StorageError.invalidRequest("Upload-Length is required")
            }
            let meta = try TusHeaders.metadata(request.headers[.uploadMetadata])
            let upload = try await create(caller, entry, length: length, meta: meta, upsert: request.headers[.xUpsert] == "true")
            var headers = Self.headers(upload)
            headers[.location] = service.settings.publicBaseURL + entry.path + "/" + upload.id
            if entry == .assets { headers[.depotPath] = upload.path }
            // creation-with-upload: the request's body is the first append; an empty upload is
            // complete at once (as tusd does). A refused first append ends the upload too: the
            // client never learnt its URL.
            let withBytes = request.headers[.contentType] == "application/offset+octet-stream"
            if withBytes || length == 0 {
                let body: any AsyncSequence<ByteBuffer, any Error> =
                    withBytes ? request.body : AsyncThrowingStream<ByteBuffer, any Error> { $0.finish() }
                do {
                    let state = try await service.appendResumable(
                        as: caller, id: upload.id, offset: 0, checksum: try TusHeaders.checksum(request.headers[.uploadChecksum]),
                        bodyLength: withBytes ? Self.bodyLength(request) : nil, body: body)
                    headers[.uploadOffset] = String(state.offset)
                    completed(state, entry, into: &headers)
                } catch {
                    try? await service.terminateResumable(as: caller, id: upload.id)
                    throw error
                }
            }
            return Response(status: .created, headers: headers)
        }
    }

    /// Creates the upload the entry's metadata describes.
    private func create(_ caller: ResumableCaller, _ entry: Entry, length: Int64, meta: [String: String], upsert: Bool) async throws
        -> ResumableUpload
    {
        if entry == .assets, case .user(let identity) = caller {
            guard let jobId = meta["jobId"], let type = meta["contentType"] ?? meta["filetype"] else {
                throw StorageError.invalidRequest("Upload-Metadata needs jobId and contentType")
            }
            // A malformed checksum is refused with the other declarations (`precheck`).
            let checksum = meta["checksum"].flatMap { $0.isEmpty ? nil : $0 }
            return try await service.createAssetResumable(
                as: identity, jobId: jobId, contentType: type, length: length, checksum: checksum, suffix: meta["suffix"] ?? "",
                visibility: try Visibility.parse(meta["visibility"] ?? "private"))
        }
        guard let bucket = meta["bucketName"], let name = meta["objectName"] else {
            throw StorageError.invalidRequest("Metadata header is required: Upload-Metadata needs bucketName and objectName")
        }
        let key = ObjectKey(bucket: bucket, path: try ObjectPath(name))
        var write = ObjectWrite(upsert: upsert)
        write.contentType = meta["contentType"].flatMap { $0.isEmpty ? nil : $0 }
        write.cacheControl =
            try meta["cacheControl"].map { try SupabaseUpload.cacheControl(given: $0, in: "the Upload-Metadata value") } ?? "no-cache"
        if let text = meta["metadata"] {
            guard let json = SupabaseUpload.jsonObjectText(Data(text.utf8)) else {
                throw StorageError.invalidRequest("the Upload-Metadata value 'metadata' must be a JSON object")
            }
            write.userMetadata = json
        }
        switch caller {
        case .user(let identity): return try await service.createResumable(as: identity, at: key, length: length, write)
        case .signed(let token): return try await service.createSignedResumable(token: token, at: key, length: length, write)
        }
    }

    /// A caller's upload exists only at the entry that made it: `/v1/uploads` for the Assets
    /// API's, the Storage API's paths for the others (its rules and its errors are that entry's).
    /// An upload URL's token names its upload itself.
    private func requireEntry(_ caller: ResumableCaller, _ id: String, _ entry: Entry) async throws {
        guard case .user = caller else { return }
        let state = try await service.resumableState(as: caller, id: id)
        guard (state.upload.exactType == true) == (entry == .assets) else { throw StorageError.notFound("no such upload (or it expired)") }
    }

    func head(_ request: Request, context: DepotRequestContext, _ entry: Entry) async throws -> Response {
        try await handle(request, context, entry) { caller in
            try await requireEntry(caller, try id(context), entry)
            let state = try await service.resumableStatus(as: caller, id: try id(context))
            var headers = Self.headers(state.upload)
            headers[.uploadOffset] = String(state.offset)
            headers[.uploadLength] = String(state.upload.length)
            headers[.cacheControl] = "no-store"
            if state.upload.finishedAt != nil { headers[.tusComplete] = "1" }
            if entry == .assets { headers[.depotPath] = state.upload.path }
            return Response(status: .ok, headers: headers)
        }
    }

    func patch(_ request: Request, context: DepotRequestContext, _ entry: Entry) async throws -> Response {
        try await handle(request, context, entry) { caller in
            guard request.headers[.contentType] == "application/offset+octet-stream" else {
                throw StorageError(.unsupportedMediaType, "a PATCH must have Content-Type: application/offset+octet-stream")
            }
            guard let offset = try TusHeaders.number(request.headers[.uploadOffset], name: "Upload-Offset") else {
                throw StorageError.invalidRequest("Upload-Offset is required")
            }
            try await requireEntry(caller, try id(context), entry)
            let state = try await service.appendResumable(
                as: caller, id: try id(context), offset: offset,
                checksum: try TusHeaders.checksum(request.headers[.uploadChecksum]), bodyLength: Self.bodyLength(request), body: request.body)
            var headers = Self.headers(state.upload)
            headers[.uploadOffset] = String(state.offset)
            completed(state, entry, into: &headers)
            return Response(status: .noContent, headers: headers)
        }
    }

    /// The body's declared size (`Content-Length`), when it is one number.
    static func bodyLength(_ request: Request) -> Int64? {
        request.headers[.contentLength].flatMap { RequestNumber.parse($0) }
    }

    func terminate(_ request: Request, context: DepotRequestContext, _ entry: Entry) async throws -> Response {
        try await handle(request, context, entry) { caller in
            try await requireEntry(caller, try id(context), entry)
            try await service.terminateResumable(as: caller, id: try id(context))
            return Response(status: .noContent, headers: [.tusResumable: TusHeaders.version])
        }
    }

    /// What the append that completed an upload adds: `Tus-Complete: 1` (as upstream) and the
    /// object's name, SHA-256 and type.
    /// (An upload another request completed meanwhile: `Tus-Complete` and, on the Assets API's
    /// entry, its `Depot-Path`.)
    private func completed(_ state: StorageService.ResumableState, _ entry: Entry, into headers: inout HTTPFields) {
        guard state.upload.finishedAt != nil else { return }
        headers[.tusComplete] = "1"
        guard let object = state.object else {
            if entry == .assets { headers[.depotPath] = state.upload.path }
            return
        }
        metrics.recordBytesIn(object.size)
        headers[.depotPath] = object.path.string
        headers[.depotChecksum] = object.sha256
        headers[.depotContentType] = object.contentType
    }

    private func id(_ context: DepotRequestContext) throws -> String {
        try context.parameters.require("id")
    }

    static func headers(_ upload: ResumableUpload) -> HTTPFields {
        [.tusResumable: TusHeaders.version, .uploadExpires: HTTPDate.format(upload.expiresAt)]
    }

    /// Checks `Tus-Resumable`, runs `body`, and answers what it refuses with the real status: a
    /// plain-text message on the Storage API's entries (as TUS servers do), the Assets API's JSON
    /// error on its entry. Internal failures go to the error middleware.
    private func tus(_ request: Request, _ entry: Entry, _ body: () async throws -> Response) async throws -> Response {
        guard request.headers[.tusResumable] == TusHeaders.version else {
            let message = "Tus-Resumable: \(TusHeaders.version) is required"
            guard entry != .assets else {
                var response = StorageError.invalidRequest(message).response(extraHeaders: [.tusVersion: TusHeaders.version])
                response.status = .preconditionFailed
                return response
            }
            return Response(
                status: .preconditionFailed, headers: [.tusVersion: TusHeaders.version, .contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
        }
        do {
            return try await body()
        } catch let e as StorageError where e.code != .internalError && e.code != .unavailable {
            var headers: HTTPFields = [.tusResumable: TusHeaders.version]
            if entry == .assets {
                var response = e.response(extraHeaders: headers)
                if e.code == .checksumMismatch { response.status = Self.checksumMismatch }
                return response
            }
            let status = e.code == .checksumMismatch ? Self.checksumMismatch : e.code.httpStatus
            headers[.contentType] = "text/plain; charset=utf-8"
            if let seconds = e.retryAfter { headers[.retryAfter] = String(seconds) }
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: e.message + "\n")))
        }
    }
}

extension HTTPField.Name {
    static let xSignature = Self("x-signature")!
    static let xHTTPMethodOverride = Self("X-HTTP-Method-Override")!
    static let tusComplete = Self("Tus-Complete")!
    /// The object a resumable upload makes (the Assets API's server-chosen name).
    static let depotPath = Self("Depot-Path")!
    static let depotChecksum = Self("Depot-Checksum")!
    static let depotContentType = Self("Depot-Content-Type")!
}
