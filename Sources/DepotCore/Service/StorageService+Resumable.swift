import Crypto
import Foundation
import Logging
import NIOCore
import Synchronization

// MARK: - Resumable uploads (TUS 1.0)
//
// An upload is created with its object's name and exact size, checked as an upload would be (the
// caller's rules, the bucket, size limits and declared type, an existing name without upsert, the
// quota); then its bytes arrive in any number of appends, each durable before it is acknowledged;
// the first append's bytes are sniffed at once against the bucket's types. The append that
// completes the upload ingests the staged bytes as any upload (type, size, SHA-256 of the whole)
// and commits the object in one step: nothing is visible before that. Only the caller who created
// it (same owner and role) sees or continues an upload; to anyone else it does not exist.

extension StorageService {
    /// What a created or continued upload reports.
    public struct ResumableState: Sendable {
        public var upload: ResumableUpload
        public var offset: Int64
        /// The object, once the upload is complete.
        public var object: ObjectRecord?
    }

    func resumableStore() throws(StorageError) -> any ResumableStore {
        guard let resumable else { throw StorageError.unavailable("this server keeps no resumable uploads") }
        return resumable
    }

    /// Creates an upload of `length` bytes for `key`, refusing what the finished upload would be
    /// refused for.
    /// - Throws: `.forbidden`, `.bucketNotFound`, `.payloadTooLarge`, `.unsupportedMediaType`,
    ///   `.alreadyExists` (no upsert), `.quotaExceeded`.
    public func createResumable(as identity: Identity, at key: ObjectKey, length: Int64, _ write: ObjectWrite) async throws -> ResumableUpload {
        let store = try resumableStore()
        guard length >= 0 else { throw StorageError.invalidRequest("Upload-Length must be 0 or more") }
        try BucketRecord.validate(name: key.bucket)
        let bucket = try await writableBucket(identity, key, upsert: write.upsert)
        let rules = bucketRules(bucket, declaredType: write.contentType, path: key.path)
        try precheck(rules, contentLength: length)
        // A declared type the bucket refuses is refused now (upstream checks `contentType` here).
        if case .bucket(let allowed?) = rules.typing, let declared = write.contentType, !allowed.accepts(declared) {
            throw StorageError(.unsupportedMediaType, "mime type \(declared) is not supported")
        }
        try await refuseExisting(key, upsert: write.upsert)
        // The user's unfinished uploads hold their declared bytes: staged ones count as stored.
        let open = await store.openUploads(owner: identity.owner)
        try await checkQuota(owner: identity.owner, adding: RequestNumber.saturatingAdd(length, open.bytes), replacing: write.upsert ? key : nil)
        let most = settings.quota.pendingUploads
        if most > 0, identity.owner != nil, open.count >= most {
            throw StorageError(
                .rateLimited, "the user has \(open.count) resumable uploads open (at most \(most)); finish or terminate some, or let them expire",
                retryAfter: 60)
        }
        let t = now()
        let upload = ResumableUpload(
            id: ResumableUpload.newID(), bucket: key.bucket, path: key.path.string, owner: identity.owner, role: identity.role.rawValue,
            upsert: write.upsert, length: length, contentType: write.contentType, cacheControl: write.cacheControl,
            userMetadata: write.userMetadata, createdAt: t, expiresAt: t.addingTimeInterval(TimeInterval(settings.resumableTTL)))
        try await store.create(upload)
        return upload
    }

    /// The caller's upload `id` and its offset.
    /// - Throws: `.notFound` for an unknown, expired or someone else's upload.
    public func resumableState(as identity: Identity, id: String) async throws -> ResumableState {
        let store = try resumableStore()
        guard let (upload, offset) = try await store.upload(id: id), upload.expiresAt > now(),
            upload.role == identity.role.rawValue, upload.owner == identity.owner
        else { throw StorageError.notFound("no such upload (or it expired)") }
        return ResumableState(upload: upload, offset: offset)
    }

    /// A body's digest as a client declares it (TUS `Upload-Checksum`).
    public enum BodyChecksum: Sendable {
        case sha1([UInt8])
        case sha256([UInt8])
    }

    /// Appends `body` at `offset`; the append that reaches the upload's length commits the object.
    /// What a refused append sent is not kept (the offset stays); a body cut short by the client
    /// keeps what arrived, unless it came with a checksum (which it cannot match).
    /// - Parameter checksum: the body's digest (TUS `checksum`); a mismatch keeps nothing of it.
    /// - Throws: `.conflict` (the offset is not the upload's), `.checksumMismatch`,
    ///   `.payloadTooLarge` (past the declared length), the type and write errors of an upload.
    public func appendResumable<Body: AsyncSequence>(
        as identity: Identity, id: String, offset: Int64, checksum: BodyChecksum?, body: Body
    ) async throws -> ResumableState where Body.Element == ByteBuffer {
        let store = try resumableStore()
        var state = try await resumableState(as: identity, id: id)
        let upload = state.upload
        let key = try upload.key()
        // The rules may have changed since the upload began.
        let bucket = try await writableBucket(identity, key, upsert: upload.upsert)
        guard offset == state.offset else {
            throw StorageError(.conflict, "Upload-Offset \(offset) is not the upload's offset, \(state.offset)")
        }
        // The whole upload's SHA-256, carried from append to append in this process (after a
        // restart, or when an append failed, the commit reads the staged bytes back instead).
        var running = resumableDigests.take(id, at: offset) ?? (offset == 0 ? SHA256() : nil)
        var sha256 = checksum.flatMap { if case .sha256 = $0 { SHA256() } else { nil } }
        var sha1 = checksum.flatMap { if case .sha1 = $0 { Insecure.SHA1() } else { nil } }
        let end = try await store.append(id: id, at: offset, limit: upload.length, keepPartial: checksum == nil, body: body) { chunk in
            chunk.withUnsafeReadableBytes {
                running?.update(bufferPointer: $0)
                sha256?.update(bufferPointer: $0)
                sha1?.update(bufferPointer: $0)
            }
        }
        do {
            let matches: Bool
            switch checksum {
            case .sha256(let expected): matches = sha256.map { Array($0.finalize()) == expected } ?? false
            case .sha1(let expected): matches = sha1.map { Array($0.finalize()) == expected } ?? false
            case nil: matches = true
            }
            if !matches { throw StorageError(.checksumMismatch, "the body's digest does not match Upload-Checksum") }
            // The type is known from the first bytes: refuse now (when they are all here, however
            // many appends they took) rather than after the last.
            let prefix = Int64(MediaSniffer.prefixLength)
            if offset < prefix, end >= min(prefix, upload.length) {
                let head = try await store.head(id: id, count: MediaSniffer.prefixLength)
                _ = try decideType(head, rules: bucketRules(bucket, declaredType: upload.contentType, path: key.path))
            }
        } catch {
            try await store.truncate(id: id, to: offset)
            throw error
        }
        if let running { resumableDigests.put(id, at: end, running) }
        state.offset = end
        if end == upload.length {
            do {
                state.object = try await finishResumable(as: identity, upload, in: bucket, store: store)
            } catch {
                // Refused (a taken name, the quota, the type) or failed: this append is not kept,
                // so the upload is not taken for done; the client may send it again.
                try? await store.truncate(id: id, to: offset)
                throw error
            }
        }
        return state
    }

    /// Ingests the staged bytes of a complete upload and commits its object; the staged upload is
    /// removed once the object exists.
    func finishResumable(as identity: Identity, _ upload: ResumableUpload, in bucket: BucketRecord, store: any ResumableStore) async throws
        -> ObjectRecord
    {
        let key = try upload.key()
        var rules = bucketRules(bucket, declaredType: upload.contentType, path: key.path)
        rules.exactSize = upload.length
        try precheck(rules, contentLength: upload.length)
        try await refuseExisting(key, upsert: upload.upsert)
        let blob: IngestedBlob
        if let adopted = try await adoptStaged(upload, rules: rules, store: store) {
            blob = adopted
        } else {
            blob = try await ingest(rules: rules) { consume in try await store.read(id: upload.id, into: consume) }
        }
        let (record, _) = try await commit(
            blob, at: key, owner: identity.owner, upsert: upload.upsert, cacheControl: upload.cacheControl, metadata: upload.userMetadata)
        do { try await store.delete(id: upload.id) } catch {
            logger.warning("could not remove a finished resumable upload; garbage collection will", metadata: ["upload": "\(upload.id)"])
        }
        return record
    }

    /// The staged file as a blob without copying it, when the blob store can take it (files on the
    /// same file system): checked as ``ingest(_:rules:)`` checks (type from the first bytes, the
    /// exact size, SHA-256 of the whole, read back from the page cache). Nil: copy instead.
    func adoptStaged(_ upload: ResumableUpload, rules: IngestRules, store: any ResumableStore) async throws -> IngestedBlob? {
        let id = BlobID.random()
        guard let files = blobFiles, files.localFile(of: id) != nil, let staged = store.localFile(id: upload.id) else { return nil }
        let rules = try Self.checkedDeclaredType(rules)
        let type = try decideType(try await store.head(id: upload.id, count: MediaSniffer.prefixLength), rules: rules)
        let digest: String
        if let kept = resumableDigests.take(upload.id, at: upload.length) {
            digest = kept.finalize().hexString
        } else {
            var hasher = PipelinedSHA256()
            var count: Int64 = 0
            try await store.read(id: upload.id) { chunk in
                count += Int64(chunk.readableBytes)
                await hasher.update(chunk)
            }
            digest = await hasher.finalize()
            guard count == upload.length else {
                throw StorageError(.sizeMismatch, "the upload has \(count) bytes, \(upload.length) were declared")
            }
        }
        guard try await files.adopt(file: staged, as: id) else { return nil }
        return IngestedBlob(id: id, size: upload.length, sha256: digest, contentType: type)
    }

    /// Ends an unfinished upload and drops its bytes (TUS `termination`).
    public func terminateResumable(as identity: Identity, id: String) async throws {
        let store = try resumableStore()
        _ = try await resumableState(as: identity, id: id)
        _ = resumableDigests.take(id, at: 0)
        try await store.delete(id: id)
    }
}

extension ResumableUpload {
    func key() throws -> ObjectKey { ObjectKey(bucket: bucket, path: try ObjectPath(path)) }
}

/// SHA-256 states of resumable uploads by id and the offset they cover; taken (removed) by the
/// append that continues one, put back when it succeeds. Bounded: past 10,000 uploads all are
/// dropped (their commits read the bytes back).
final class RunningDigests: Sendable {
    private let states = Mutex<[String: (offset: Int64, sha256: SHA256)]>([:])

    func take(_ id: String, at offset: Int64) -> SHA256? {
        states.withLock { states in
            guard let entry = states.removeValue(forKey: id), entry.offset == offset else { return nil }
            return entry.sha256
        }
    }

    func put(_ id: String, at offset: Int64, _ sha256: SHA256) {
        states.withLock { states in
            if states.count >= 10_000 { states.removeAll() }
            states[id] = (offset, sha256)
        }
    }
}
