import Crypto
import Foundation
import NIOCore

/// The rules one upload's bytes are checked against while they stream.
public struct IngestRules: Sendable {
    /// Largest allowed body, bytes.
    public var maxSize: Int64
    /// The exact size the body must have (presigned uploads), if known.
    public var exactSize: Int64?
    /// Types the sniffed type must be one of; `nil` accepts any type (the declared one is kept).
    public var allowedTypes: Set<String>?
    /// The declared type; when sniffing recognises the bytes, the two must agree.
    public var declaredType: String?
    /// The SHA-256 hex the bytes must match.
    public var sha256: String?
    /// How the stored type is decided.
    public var typing: Typing = .sniffed

    public enum Typing: Sendable {
        /// The Assets API's rule: the sniffed type must be in `allowedTypes`, a declared type must
        /// agree with it.
        case sniffed
        /// A bucket's rule (``BucketTypes/decide(sniffed:declared:allowed:)``); `nil` accepts any type.
        case bucket(BucketTypes?)
    }

    public init(maxSize: Int64, exactSize: Int64? = nil, allowedTypes: Set<String>?, declaredType: String?, sha256: String? = nil) {
        self.maxSize = maxSize
        self.exactSize = exactSize
        self.allowedTypes = allowedTypes
        self.declaredType = declaredType
        self.sha256 = sha256
    }
}

/// What an ingest produced: a durable blob, not yet referenced by any row.
public struct IngestedBlob: Sendable {
    public var id: BlobID
    public var size: Int64
    public var sha256: String
    public var contentType: String
}

extension StorageService {
    /// Checks what can be checked before reading a byte: declared size and declared type.
    public func precheck(_ rules: IngestRules, contentLength: Int64?) throws(StorageError) {
        if let declared = rules.declaredType, !declared.isEmpty { _ = try MediaType.normalize(declared) }
        if let len = contentLength {
            if len > rules.maxSize || (rules.exactSize.map { len > $0 } ?? false) {
                throw StorageError(.payloadTooLarge, "the body is larger than \(rules.exactSize ?? rules.maxSize) bytes")
            }
            if let exact = rules.exactSize, len != exact {
                throw StorageError(.sizeMismatch, "the body must be exactly \(exact) bytes")
            }
        }
        if let allowed = rules.allowedTypes, let declared = rules.declaredType, declared != "application/octet-stream",
            !allowed.contains(declared)
        {
            throw StorageError(.unsupportedMediaType, "type '\(declared)' is not allowed")
        }
        if let sha = rules.sha256, !Self.isSHA256Hex(sha) {
            throw .invalidRequest("the checksum must be 64 hex digits (SHA-256)")
        }
    }

    /// Streams `body` into a new blob while counting, sniffing and hashing; aborts the blob and
    /// throws on the first violation. On return the blob is durable.
    public func ingest<Body: AsyncSequence>(_ body: Body, rules: IngestRules) async throws -> IngestedBlob
    where Body.Element == ByteBuffer {
        try await ingest(rules: rules) { consume in
            for try await chunk in body { try await consume(chunk) }
        }
    }

    /// ``ingest(_:rules:)`` for bytes that are pushed rather than pulled: `produce` hands every
    /// chunk to `consume` (a copy reads its source this way, checked like an upload).
    func ingest(
        rules: IngestRules, produce: (_ consume: (ByteBuffer) async throws -> Void) async throws -> Void
    ) async throws -> IngestedBlob {
        // A declared type must be one `type/subtype[; params]`; it is stored as sent (Supabase
        // clients read back the exact string they sent).
        var rules = rules
        if let declared = rules.declaredType {
            let trimmed = declared.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { _ = try MediaType.normalize(trimmed) }
            rules.declaredType = trimmed.isEmpty ? nil : trimmed
        }
        let id = BlobID.random()
        let writer = try await blobs.makeWriter(for: id)
        let limit = rules.exactSize.map { min($0, rules.maxSize) } ?? rules.maxSize
        do {
            var hasher = PipelinedSHA256()
            var count: Int64 = 0
            var head: ByteBuffer? = ByteBuffer()
            var contentType: String? = nil
            try await produce { chunk in
                count += Int64(chunk.readableBytes)
                if count > limit {
                    throw StorageError(.payloadTooLarge, "the body is larger than \(limit) bytes")
                }
                await hasher.update(chunk)
                if var pending = head {
                    var c = chunk
                    pending.writeBuffer(&c)
                    if pending.readableBytes >= MediaSniffer.prefixLength {
                        contentType = try decideType(pending, rules: rules)
                        head = nil
                        try await writer.write(pending)
                    } else {
                        head = pending
                    }
                } else {
                    try await writer.write(chunk)
                }
            }
            if let pending = head {
                contentType = try decideType(pending, rules: rules)
                if pending.readableBytes > 0 { try await writer.write(pending) }
            }
            if let exact = rules.exactSize, count != exact {
                throw StorageError(.sizeMismatch, "the body has \(count) bytes, \(exact) were declared")
            }
            let digest = await hasher.finalize()
            if let expected = rules.sha256, expected.lowercased() != digest {
                throw StorageError(.checksumMismatch, "the body's SHA-256 does not match the declared checksum")
            }
            try await writer.finish()
            return IngestedBlob(id: id, size: count, sha256: digest, contentType: contentType ?? "application/octet-stream")
        } catch {
            await writer.abort()
            throw error
        }
    }

    private func decideType(_ head: ByteBuffer, rules: IngestRules) throws(StorageError) -> String {
        let sniffed = head.withUnsafeReadableBytes { MediaSniffer.sniff($0) }
        if case .bucket(let allowed) = rules.typing {
            return try BucketTypes.decide(sniffed: sniffed, declared: rules.declaredType, allowed: allowed)
        }
        let declared = rules.declaredType.flatMap { $0 == "application/octet-stream" ? nil : $0 }
        guard let allowed = rules.allowedTypes else {
            if let sniffed, let declared, sniffed != declared {
                throw StorageError(.mediaTypeMismatch, "the bytes are \(sniffed), not \(declared)")
            }
            return declared ?? sniffed ?? "application/octet-stream"
        }
        guard let sniffed, allowed.contains(sniffed) else {
            throw StorageError(.unsupportedMediaType, "the bytes are not of an allowed type (\(allowed.sorted().joined(separator: ", ")))")
        }
        if let declared, declared != sniffed {
            throw StorageError(.mediaTypeMismatch, "the bytes are \(sniffed), not \(declared)")
        }
        return sniffed
    }

    static func isSHA256Hex(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0 | 0x20) }
    }

    /// Commits an ingested blob as an object row; deletes the blob when the commit fails and the
    /// replaced blob when it succeeds.
    func commit(_ blob: IngestedBlob, at key: ObjectKey, owner: String?, upsert: Bool,
                cacheControl: String? = nil, metadata userMetadata: String? = nil) async throws -> (ObjectRecord, replaced: Bool) {
        let t = now()
        var record = ObjectRecord(
            bucket: key.bucket, path: key.path, owner: owner, blobID: blob.id, size: blob.size,
            contentType: blob.contentType, sha256: blob.sha256, cacheControl: cacheControl,
            metadata: userMetadata, createdAt: t)
        let replaced: ObjectRecord?
        do {
            try await checkQuota(owner: owner, adding: blob.size, replacing: key)
            replaced = try await metadata.putObject(record, upsert: upsert)
        } catch {
            await discard(blob.id)
            throw error
        }
        if let replaced {
            // The store keeps the row's creation time across an overwrite; the generation is the
            // new row's, so every link signed for the replaced bytes stops working.
            record.createdAt = replaced.createdAt
            await discard(replaced.blobID)
        }
        return (record, replaced != nil)
    }
}

/// SHA-256 computed beside the upload rather than in its way: bytes are hashed in batches of about
/// 1 MiB on another task while the next batch arrives. At most two batches are pending, so memory
/// stays bounded whatever the hashing speed.
struct PipelinedSHA256 {
    static let batchSize = 1024 * 1024
    private var batch: [ByteBuffer] = []
    private var batchBytes = 0
    private var running: Task<SHA256, Never>?
    private var previous: Task<SHA256, Never>?

    mutating func update(_ chunk: ByteBuffer) async {
        batch.append(chunk)
        batchBytes += chunk.readableBytes
        if batchBytes >= Self.batchSize { await submit() }
    }

    private mutating func submit() async {
        // Bound the pipeline: the batch before the running one must be done.
        if let previous { _ = await previous.value }
        let (prior, buffers) = (running, batch)
        previous = running
        batch = []
        batchBytes = 0
        running = Task {
            var hasher = await prior?.value ?? SHA256()
            for b in buffers { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            return hasher
        }
    }

    /// The lower-case hex digest of everything passed to `update`.
    mutating func finalize() async -> String {
        var hasher = await running?.value ?? SHA256()
        for b in batch { b.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
        return hasher.finalize().hexString
    }
}
