import Crypto
import Foundation
import Logging
import NIOCore

/// Who may have a transformed image (Supabase's `/render/image/{public|authenticated|sign}/…`).
public enum RenderAccess: Sendable {
    /// Any caller, when the bucket is public.
    case `public`
    /// The tenant rule (public buckets readable by any caller).
    case authenticated(Identity)
    /// A render token, which carries the transformation: the request's own parameters are ignored.
    case signed(token: String)
}

extension StorageService {
    /// The answer to a render request: the source resolved for `access`, its rendition found or
    /// made (``RenditionCache``), then the objects' own download decision (ETag, 304, Range) about a
    /// stand-in row whose blob is the rendition's and whose ETag is the rendition key.
    /// - Returns: the decision, and whether the answer depends on `Accept` (no `format` asked).
    /// - Throws: what resolving throws; `.unavailable` when image work is off or too busy;
    ///   `.unsupportedMediaType` for an object that is not a PNG, JPEG, WebP or GIF;
    ///   `.payloadTooLarge` for a source over ``StorageSettings/maxImageSourceBytes``;
    ///   `.invalidRequest` for an image that cannot be decoded.
    public func renderImage(
        bucket: String, path: ObjectPath, access: RenderAccess, transform asked: ImageTransform, accept: String?,
        conditions: DownloadConditions
    ) async throws -> (decision: DownloadDecision, variesByAccept: Bool) {
        let object: ObjectRecord
        let cacheControl: String
        var transform = asked
        switch access {
        case .public:
            object = try await resolvePublic(bucket: bucket, path: path)
            cacheControl = CachePolicy.publicURL(object, settings)
        case .authenticated(let identity):
            object = try await resolveAuthenticated(as: identity, bucket: bucket, path: path)
            cacheControl = CachePolicy.authenticated
        case .signed(let token):
            let (claims, bound) = try renderClaims(token, bucket: bucket, path: path)
            object = try DownloadRules.signed(try await metadata.object(at: ObjectKey(bucket: bucket, path: path)), claims: claims)
            cacheControl = CachePolicy.signed(expiresAt: claims.expiresAt, now: unixNow())
            transform = bound
        }
        let source = try checkRenderable(object)
        let output = transform.output(for: source, accept: accept)
        let request = transform.request(format: output)
        let key = Self.renditionKey(source: object.blobID, request)
        guard let cache = renditions, let images else { throw Self.imagesOff }
        let rendition = try await cache.rendition(key: key, now: now()) { [self] in
            try await makeRendition(of: object, request, key: key, cache: cache, renderer: images)
        }
        let standIn = Self.standIn(for: object, rendition)
        return (try DownloadDecision.decide(standIn, conditions, cacheControl: cacheControl, now: now()), transform.format == nil)
    }

    /// A render token's claims (its binding: the generation alone, as ``DownloadRules/signed(_:claims:)``
    /// compares it) and its transformation.
    func renderClaims(_ token: String, bucket: String, path: ObjectPath) throws -> (URLSigner.Claims, ImageTransform) {
        var claims = try signer.verify(token, scope: .render, bucket: bucket, path: path, now: unixNow())
        let parts = claims.binding.split(separator: "~", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let transform = ImageTransform(compact: parts[1]) else {
            throw StorageError(.signatureInvalid, "the URL's token is not valid")
        }
        claims.binding = String(parts[0])
        return (claims, transform)
    }

    /// The row a rendition is sent as: the object's name, times and cache policy, the rendition's
    /// blob, size and type, and its key as the ETag's source.
    static func standIn(for object: ObjectRecord, _ rendition: RenditionRecord) -> ObjectRecord {
        ObjectRecord(
            bucket: object.bucket, path: object.path, owner: object.owner, blobID: rendition.blobID, size: rendition.size,
            contentType: rendition.contentType, sha256: rendition.key, cacheControl: object.cacheControl, generation: object.generation,
            createdAt: object.createdAt, updatedAt: object.updatedAt)
    }

    /// A signed render URL answered from memory alone (the object's row, the rendition's row and
    /// its bytes or file all in memory, the rendition served within the last minute) — or `nil`,
    /// and the caller takes ``renderImage(bucket:path:access:transform:accept:conditions:)``, which
    /// gives the same answer and reports every error. Never suspends.
    public func decideRenderFromMemory(
        bucket: String, path: ObjectPath, token: String, accept: String?, conditions: DownloadConditions
    ) -> (decision: DownloadDecision, body: CachedDownload.Body, variesByAccept: Bool)? {
        guard let cache = renditions, let peek = metadataPeek,
            let (claims, transform) = try? renderClaims(token, bucket: bucket, path: path),
            let object = try? DownloadRules.signed(peek.peekObject(at: ObjectKey(bucket: bucket, path: path)), claims: claims),
            let source = ImageFormat(contentType: object.contentType), object.size <= settings.maxImageSourceBytes
        else { return nil }
        let key = Self.renditionKey(source: object.blobID, transform.request(format: transform.output(for: source, accept: accept)))
        // One not served for a minute takes the full path, which records the use (least recently
        // used renditions are evicted first).
        guard let rendition = cache.recent.value(for: key), now().timeIntervalSince(rendition.usedAt) <= RenditionCache.touchInterval
        else { return nil }
        let standIn = Self.standIn(for: object, rendition)
        guard let body = cachedBody(of: standIn),
            let decision = try? DownloadDecision.decide(
                standIn, conditions, cacheControl: CachePolicy.signed(expiresAt: claims.expiresAt, now: unixNow()), now: now())
        else { return nil }
        return (decision, body, transform.format == nil)
    }

    /// A render token for `key` with `transform`, after the same checks as ``signObject(as:at:expiresIn:)``.
    public func signRender(as identity: Identity, at key: ObjectKey, expiresIn: Int64, transform: ImageTransform) async throws -> String {
        let ttl = try checkTTL(expiresIn)
        let record = try await readObject(as: identity, at: key)
        _ = try checkRenderable(record)
        return signer.mint(
            scope: .render, bucket: key.bucket, path: key.path, binding: "\(record.generation)~\(transform.compact)",
            expiresAt: unixNow() + ttl)
    }

    /// The rendition key: what the bytes are made of and how (the output format resolved), hashed.
    static func renditionKey(source: BlobID, _ r: ImageRequest) -> String {
        let text = "v1\n\(source.rawValue)\n\(r.width)x\(r.height)\n\(r.fit.rawValue)\n\(r.quality)\n\(r.format.rawValue)"
        return SHA256.hash(data: Array(text.utf8)).hexString
    }

    static var imagesOff: StorageError {
        StorageError(.unavailable, "image transformation is off on this server (built without libvips: apt-get install libvips-dev, then rebuild)")
    }

    /// The source's format, when Depot transforms it.
    private func checkRenderable(_ object: ObjectRecord) throws -> ImageFormat {
        guard let format = ImageFormat(contentType: object.contentType) else {
            throw StorageError(.unsupportedMediaType, "only PNG, JPEG, WebP and GIF images can be transformed; this object is \(object.contentType)")
        }
        guard object.size <= settings.maxImageSourceBytes else {
            throw StorageError(
                .payloadTooLarge, "the image is \(object.size) bytes, more than the \(settings.maxImageSourceBytes) transformations are made of")
        }
        return format
    }

    /// Renders (within the gate), writes the blob, stores the row; a row that won a race is kept
    /// and this blob deleted. Then prunes past the bound.
    private func makeRendition(
        of object: ObjectRecord, _ request: ImageRequest, key: String, cache: RenditionCache, renderer: any ImageRenderer
    ) async throws -> RenditionRecord {
        guard renderer.isAvailable else { throw Self.imagesOff }
        try await cache.gate.acquire()
        let rendered: [UInt8]
        do {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(object.size))
            try await read(object) { chunk in bytes += chunk.readableBytesView }
            rendered = try await renderer.render(bytes, request)
            await cache.gate.release()
        } catch let e as ImageError {
            await cache.gate.release()
            if e.permanent { throw StorageError.invalidRequest("the image cannot be transformed: \(e.message)") }
            throw StorageError.unavailable("the image cannot be transformed now: \(e.message)")
        } catch {
            await cache.gate.release()
            throw error
        }
        let id = BlobID.random()
        let writer = try await blobs.makeWriter(for: id)
        do {
            try await writer.write(ByteBuffer(bytes: rendered))
            try await writer.finish()
        } catch {
            await writer.abort()
            throw error
        }
        let record = RenditionRecord(
            key: key, sourceBlob: object.blobID, blobID: id, size: Int64(rendered.count), contentType: request.format.contentType,
            createdAt: now())
        let stored: RenditionRecord
        do {
            stored = try await cache.store.putRendition(record)
        } catch {
            try? await blobs.delete(id)
            throw error
        }
        if stored.blobID != id { try? await blobs.delete(id) }
        await pruneRenditions(cache)
        return stored
    }

    /// Removes the renditions of replaced or deleted sources and the least recently used past the
    /// bound (rows first, then blobs: a crash between leaves orphans for garbage collection).
    /// Failures are logged: the cache is only ever too large for a while, never wrong.
    @discardableResult
    func pruneRenditions(_ cache: RenditionCache) async -> Int {
        do {
            let prune = try await cache.store.pruneRenditions(maxBytes: cache.maxBytes)
            cache.forget(prune.all)
            try await blobs.delete(prune.all.map(\.blobID))
            return prune.all.count
        } catch {
            logger.warning("pruning cached renditions failed", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
