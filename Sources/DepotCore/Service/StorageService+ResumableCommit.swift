import Crypto
import Foundation
import Logging
import NIOCore
import Synchronization

// MARK: - Resumable uploads: the commit and the end of an upload

/// No bytes, as an append's body.
struct EmptyBody: AsyncSequence, Sendable {
    struct AsyncIterator: AsyncIteratorProtocol {
        mutating func next() async throws -> ByteBuffer? { nil }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator() }
}

extension StorageService {
    /// Commits a complete upload, in its turn (``UploadTurns``): unless a request before it
    /// committed or ended it meanwhile.
    func commitResumable(
        _ state: ResumableState, appendedFrom offset: Int64, rules: IngestRules, store: any ResumableStore
    ) async throws -> ResumableState {
        var state = state
        let upload = state.upload
        guard let (current, staged) = try await store.upload(id: upload.id) else {
            throw StorageError.notFound("no such upload (it ended)")
        }
        if current.finishedAt != nil {
            state.upload = current
            return state
        }
        guard staged == upload.length else {
            throw StorageError(.conflict, "the upload's offset is \(staged) now: HEAD the upload for its offset, then continue from it")
        }
        do {
            state.object = try await finishResumable(upload, rules: rules, store: store)
            state.upload.finishedAt = now()
        } catch {
            // The same last append, sent to another server as well, finished it there first
            // (asked before anything is dropped: the bytes may be its object's).
            if let (again, _) = try? await store.upload(id: upload.id), again.finishedAt != nil {
                state.upload = again
                return state
            }
            // The name was taken by this very upload's commit on another server, not yet marked
            // finished there: it is complete.
            if (error as? StorageError)?.code == .alreadyExists, let key = try? upload.key(),
                let existing = try? await metadata.object(at: key), (try? await isCommitted(upload, as: existing, store: store)) == true
            {
                try? await store.finish(id: upload.id, at: now())
                state.object = existing
                state.upload.finishedAt = now()
                return state
            }
            if let refusal = error as? StorageError, Self.endsResumable(refusal.code) {
                try? await endResumable(upload.id, store: store)
                throw StorageError(refusal.code, refusal.message + "; the upload is ended")
            }
            // Refused (the quota) or failed: this append is not kept, so the upload is not taken
            // for done; the client may send it again.
            try? await store.truncate(id: upload.id, to: offset)
            throw error
        }
        return state
    }

    /// Ingests the staged bytes of a complete upload and commits its object (with the upload
    /// URL's intent, for a signed one); the staged bytes are dropped once the object exists.
    func finishResumable(_ upload: ResumableUpload, rules: IngestRules, store: any ResumableStore) async throws -> ObjectRecord {
        let key = try upload.key()
        let existing = try await metadata.object(at: key)
        if let existing, try await isCommitted(upload, as: existing, store: store) {
            // This upload's own commit, cut off (a crash) before the upload was marked finished.
            do { try await store.finish(id: upload.id, at: now()) } catch {
                logger.warning("could not mark a resumable upload finished; garbage collection will remove it", metadata: ["upload": "\(upload.id)"])
            }
            return existing
        }
        try precheck(rules, contentLength: upload.length)
        if existing != nil, !upload.upsert { throw StorageError(.alreadyExists, "the object already exists") }
        // A signed upload consumes its URL's intent, unless the URL expired since the upload began
        // (nothing else can use it then); a URL used by another upload meanwhile refuses this one.
        var intent: UploadIntent? = nil
        if let id = upload.intentID {
            do { intent = try await metadata.claimIntent(id: id, now: now()) } catch let e as StorageError
                where e.code == .urlExpired || e.code == .notFound
            {
                intent = nil
            }
        }
        let record: ObjectRecord
        do {
            let blob: IngestedBlob
            if let adopted = try await adoptStaged(upload, rules: rules, store: store) {
                blob = adopted
            } else {
                blob = try await ingest(rules: rules) { consume in try await store.read(id: upload.id, into: consume) }
            }
            if let intent {
                record = try await commitClaimed(
                    blob, intent: intent, cacheControl: upload.cacheControl, userMetadata: upload.userMetadata, finishing: upload)
            } else {
                (record, _) = try await commit(
                    blob, at: key, owner: upload.owner, upsert: upload.upsert, cacheControl: upload.cacheControl, metadata: upload.userMetadata,
                    finishing: upload)
            }
        } catch {
            if let intent { await release(intent) }
            throw error
        }
        do { try await store.finish(id: upload.id, at: now()) } catch {
            logger.warning("could not mark a resumable upload finished; garbage collection will remove it", metadata: ["upload": "\(upload.id)"])
        }
        return record
    }

    /// Whether `object` is what committing `upload` made: written by its owner since the upload
    /// began, with its size and the SHA-256 of its staged bytes (read back only when the rest agrees).
    func isCommitted(_ upload: ResumableUpload, as object: ObjectRecord, store: any ResumableStore) async throws -> Bool {
        guard object.size == upload.length, object.owner == upload.owner, object.updatedAt >= upload.createdAt else { return false }
        var hasher = PipelinedSHA256()
        var count: Int64 = 0
        try await store.read(id: upload.id) { chunk in
            count += Int64(chunk.readableBytes)
            await hasher.update(chunk)
        }
        let digest = await hasher.finalize()
        return count == upload.length && digest == object.sha256
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
        if let expected = rules.sha256, expected.lowercased() != digest {
            throw StorageError(.checksumMismatch, "the body's SHA-256 does not match the declared checksum")
        }
        guard try await files.adopt(file: staged, as: id) else { return nil }
        return IngestedBlob(id: id, size: upload.length, sha256: digest, contentType: type)
    }

    /// Commit refusals that sending the last bytes again cannot change: the name taken, the
    /// type, the URL used. (A whole object's declared checksum can: its last PATCH may have been
    /// damaged on the way, and is not kept.)
    static func endsResumable(_ code: StorageError.Code) -> Bool {
        code == .alreadyExists || code == .unsupportedMediaType || code == .mediaTypeMismatch || code == .uploadConsumed
    }

    /// Drops an upload (its bytes, its record, so its quota hold and open-upload slot): it no
    /// longer exists for anyone.
    func endResumable(_ id: String, store: any ResumableStore) async throws {
        _ = resumableDigests.take(id, at: 0)
        try await store.delete(id: id)
    }

    /// Ends an unfinished upload and drops its bytes (TUS `termination`).
    /// - Throws: `.notFound`; `.invalidRequest` for a finished upload (delete its object instead).
    public func terminateResumable(as caller: ResumableCaller, id: String) async throws {
        let store = try resumableStore()
        let state = try await resumableState(as: caller, id: id)
        // In turn with a commit of this process: a DELETE racing the last PATCH either ends the
        // upload before its commit or finds it complete.
        try await uploadTurns.serialize(id) {
            guard let (current, _) = try await store.upload(id: id) else { throw StorageError.notFound("no such upload (or it expired)") }
            guard current.finishedAt == nil, state.upload.finishedAt == nil else {
                throw StorageError.invalidRequest("the upload is complete: delete its object instead")
            }
            try await endResumable(id, store: store)
        }
    }
}

extension ResumableUpload {
    func key() throws -> ObjectKey { ObjectKey(bucket: bucket, path: try ObjectPath(path)) }
}
