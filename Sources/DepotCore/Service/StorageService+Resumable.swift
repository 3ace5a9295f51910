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
// and commits the object in one step: nothing is visible before that; the upload's record stays,
// marked finished, until it expires. Only the caller who created it (same owner and role), or for
// one made with an upload URL only that URL's token, sees or continues an upload; to anyone else
// it does not exist.

/// Who asks about, appends to or ends a resumable upload.
public enum ResumableCaller: Sendable {
    /// A caller's token: only uploads it created (same owner and role) exist for it.
    case user(Identity)
    /// An upload URL's token (`x-signature`): only the upload of the object that URL names.
    case signed(token: String)
}

extension StorageService {
    /// What a created or continued upload reports.
    public struct ResumableState: Sendable {
        public var upload: ResumableUpload
        public var offset: Int64
        /// The object, once the upload is complete (only in the answer to the append that
        /// completed it).
        public var object: ObjectRecord?
    }

    func resumableStore() throws(StorageError) -> any ResumableStore {
        guard let resumable else { throw StorageError.unavailable("this server keeps no resumable uploads") }
        return resumable
    }

    /// The caller's upload `id` and its offset (its length once finished).
    /// - Throws: `.notFound` for an unknown or expired upload, or one that is not the caller's.
    public func resumableState(as caller: ResumableCaller, id: String) async throws -> ResumableState {
        let store = try resumableStore()
        let gone = StorageError.notFound("no such upload (or it expired)")
        guard let (upload, offset) = try await store.upload(id: id), upload.expiresAt > now() else { throw gone }
        switch caller {
        case .user(let identity):
            guard upload.intentID == nil, upload.role == identity.role.rawValue, upload.owner == identity.owner else { throw gone }
        case .signed(let token):
            guard let intent = upload.intentID else { throw gone }
            // The token of the URL the upload was made with, judged as of the upload's creation
            // (when its validity was checked): signature, scope, name and intent.
            let path = try upload.key().path
            let at = Int64(upload.createdAt.timeIntervalSince1970)
            guard let claims = try? signer.verify(token, scope: .upload, bucket: upload.bucket, path: path, now: at), claims.binding == intent
            else { throw gone }
            // Its URL used by another upload (its PUT) meanwhile: this one can never finish.
            if upload.finishedAt == nil, try await metadata.intent(id: intent)?.state == .consumed {
                try? await endResumable(id, store: store)
                throw StorageError.notFound("no such upload (its URL was used by another upload)")
            }
        }
        return ResumableState(upload: upload, offset: offset)
    }

    /// A body's digest as a client declares it (TUS `Upload-Checksum`).
    public enum BodyChecksum: Sendable {
        case sha1([UInt8])
        case sha256([UInt8])
    }

    /// Appends `body` at `offset`; the append that reaches the upload's length commits the object.
    /// What a refused append sent is not kept (the offset stays); a body cut short by the client
    /// keeps what arrived, unless it came with a checksum (which it cannot match). An empty append
    /// at the length of a finished upload answers its state.
    /// - Parameters:
    ///   - checksum: the body's digest (TUS `checksum`); a mismatch keeps nothing of it.
    ///   - bodyLength: the body's declared size (`Content-Length`): past the upload's length, it is
    ///     refused before any byte is read.
    /// - Throws: `.conflict` (the offset is not the upload's), `.checksumMismatch`,
    ///   `.payloadTooLarge` (past the declared length), the type and write errors of an upload.
    public func appendResumable<Body: AsyncSequence>(
        as caller: ResumableCaller, id: String, offset: Int64, checksum: BodyChecksum?, bodyLength: Int64? = nil, body: Body
    ) async throws -> ResumableState where Body.Element == ByteBuffer {
        let store = try resumableStore()
        runningAppends.begin(id)
        defer { runningAppends.end(id) }
        let state = try await resumableState(as: caller, id: id)
        let upload = state.upload
        guard offset == state.offset else {
            throw StorageError(
                .conflict,
                "Upload-Offset \(offset) is not the upload's offset (\(state.offset) now): HEAD the upload for its offset, then continue from it")
        }
        if upload.finishedAt != nil {
            for try await chunk in body where chunk.readableBytes > 0 {
                throw StorageError(.payloadTooLarge, "the upload is complete: it takes no more bytes")
            }
            return state
        }
        if let bodyLength, bodyLength > upload.length - offset {
            throw StorageError(
                .payloadTooLarge, "a body of \(bodyLength) bytes at offset \(offset) goes past the upload's length, \(upload.length)")
        }
        // The rules may have changed since the upload began.
        let bucket = try await resumableBucket(caller, upload)
        let rules = try resumableRules(upload, in: bucket)
        // The whole upload's SHA-256, carried from append to append in this process (after a
        // restart, or when an append failed, the commit reads the staged bytes back instead).
        // Hashed beside the append (on other tasks), as a single upload is: not in the way of
        // receiving and writing. The chunks it holds meanwhile are compacted as `ingest`'s are.
        var running = (resumableDigests.take(id, at: offset) ?? (offset == 0 ? SHA256() : nil)).map(PipelinedSHA256.init(continuing:))
        var sha256 = checksum.flatMap { if case .sha256 = $0 { SHA256() } else { nil } }
        var sha1 = checksum.flatMap { if case .sha1 = $0 { Insecure.SHA1() } else { nil } }
        let end: Int64
        do {
            end = try await store.append(
                id: id, at: offset, limit: upload.length, keepPartial: checksum == nil, body: body.map { $0.compactedIfSparse() }
            ) { chunk in
                await running?.update(chunk)
                if sha256 != nil || sha1 != nil {
                    chunk.withUnsafeReadableBytes {
                        sha256?.update(bufferPointer: $0)
                        sha1?.update(bufferPointer: $0)
                    }
                }
            }
        } catch {
            // A body cut short keeps what arrived: judged as an append of its own (its first
            // bytes' type; the commit when it reached the length), though no one hears the answer.
            // (Not for a PATCH refused before its first byte: another one of this upload was running.)
            let refusedAtOnce = (error as? StorageError)?.code == .conflict
            if checksum == nil, !refusedAtOnce, let kept = try? await store.upload(id: id)?.offset, kept > offset {
                _ = try? await settleAppend(state, from: offset, to: kept, running: nil, rules: rules, store: store)
            }
            throw error
        }
        do {
            let matches: Bool
            switch checksum {
            case .sha256(let expected): matches = sha256.map { Array($0.finalize()) == expected } ?? false
            case .sha1(let expected): matches = sha1.map { Array($0.finalize()) == expected } ?? false
            case nil: matches = true
            }
            if !matches { throw StorageError(.checksumMismatch, "the body's digest does not match Upload-Checksum") }
        } catch {
            try await store.truncate(id: id, to: offset)
            throw error
        }
        let hashed: SHA256? = if var running { await running.state() } else { nil }
        return try await settleAppend(state, from: offset, to: end, running: hashed, rules: rules, store: store)
    }

    /// Settles what an append kept (`offset` to `end`): refuses it when the upload's first bytes
    /// are all here now and are not of an allowed type (rather than after the last byte; the
    /// upload is ended then, as no later byte could make it right), and commits the object when it
    /// reached the upload's length (refused: nothing of this append is kept; a refusal no retry
    /// can change — the name taken, the type — ends the upload too). An acknowledged offset never
    /// goes back: an upload either keeps its acknowledged bytes or no longer exists.
    /// - Parameter running: the SHA-256 of the bytes up to `end`, kept for the next append (nil:
    ///   the commit reads the staged bytes back).
    private func settleAppend(
        _ state: ResumableState, from offset: Int64, to end: Int64, running: SHA256?, rules: IngestRules, store: any ResumableStore
    ) async throws -> ResumableState {
        var state = state
        let upload = state.upload
        let prefix = Int64(MediaSniffer.prefixLength)
        if offset < prefix, end >= min(prefix, upload.length) {
            do {
                _ = try decideType(try await store.head(id: upload.id, count: MediaSniffer.prefixLength), rules: Self.checkedDeclaredType(rules))
            } catch let error as StorageError {
                // The first bytes are refused: no later append could make them right.
                try await endResumable(upload.id, store: store)
                throw StorageError(error.code, error.message + "; the upload is ended (start a new one)")
            }
        }
        if let running { resumableDigests.put(upload.id, at: end, running) }
        state.offset = end
        guard end == upload.length else { return state }
        // One commit at a time per upload in this process: a HEAD (or a GET) that commits an
        // upload whose bytes are all there must not run beside the last PATCH's own commit.
        return try await uploadTurns.serialize(upload.id) {
            try await commitResumable(state, appendedFrom: offset, rules: rules, store: store)
        }
    }

    /// The caller's upload `id` and its offset, as `HEAD` reports it. An upload whose bytes are
    /// all staged but which is not finished (its last append was cut off as its last byte arrived,
    /// or the server stopped before the commit) is committed now: a client that sees the offset at
    /// the length takes the upload for done.
    /// - Throws: as ``resumableState(as:id:)``; the commit's refusal or failure.
    public func resumableStatus(as caller: ResumableCaller, id: String) async throws -> ResumableState {
        // An append running in this process: its bytes are not acknowledged yet (it may be refused,
        // or commit the upload), so the offset is told once it ended — never one that goes back,
        // nor the length of an upload not yet committed.
        var waited = 0
        while runningAppends.isRunning(id) {
            guard waited < 1000 else {
                throw StorageError(.conflict, "another request is still writing this upload: ask again in a moment")
            }
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        let state = try await resumableState(as: caller, id: id)
        guard state.upload.finishedAt == nil, state.offset == state.upload.length, state.upload.length > 0 else { return state }
        do {
            return try await appendResumable(as: caller, id: id, offset: state.offset, checksum: nil, body: EmptyBody())
        } catch let error as StorageError where error.code == .conflict {
            return state  // the last PATCH is still being settled: it answers for the commit
        }
    }
}
