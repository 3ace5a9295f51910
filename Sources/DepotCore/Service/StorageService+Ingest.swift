import Crypto
import Foundation
import NIOCore

extension StorageService {
    /// Checks what can be checked before reading a byte: declared size and declared type.
    public func precheck(_ rules: IngestRules, contentLength: Int64?) throws(StorageError) {
        if let declared = rules.declaredType, !declared.isEmpty { _ = try MediaType.normalize(declared) }
        if let len = contentLength {
            if len > rules.maxSize {
                throw StorageError(.payloadTooLarge, "the body is larger than the \(rules.maxSize) bytes allowed")
            }
            if let exact = rules.exactSize, len > exact {
                throw StorageError(.payloadTooLarge, "the body is larger than the \(exact) bytes declared")
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
        let rules = try Self.checkedDeclaredType(rules)
        let id = BlobID.random()
        // A size declared in advance that the limits allow: the store may send the blob as one stream.
        let writer =
            if let exact = rules.exactSize, exact <= rules.maxSize {
                try await blobs.makeWriter(for: id, size: exact)
            } else {
                try await blobs.makeWriter(for: id)
            }
        let limit = rules.exactSize.map { min($0, rules.maxSize) } ?? rules.maxSize
        do {
            var hasher = PipelinedSHA256()
            var count: Int64 = 0
            var head: ByteBuffer? = ByteBuffer()
            var contentType: String? = nil
            try await produce { received in
                let chunk = received.compactedIfSparse()
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

    /// A declared type must be one `type/subtype[; params]`; it is stored as sent (Supabase
    /// clients read back the exact string they sent), trimmed.
    static func checkedDeclaredType(_ rules: IngestRules) throws -> IngestRules {
        var rules = rules
        if let declared = rules.declaredType {
            let trimmed = declared.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { _ = try MediaType.normalize(trimmed) }
            rules.declaredType = trimmed.isEmpty ? nil : trimmed
        }
        return rules
    }

    func decideType(_ head: ByteBuffer, rules: IngestRules) throws(StorageError) -> String {
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
            let what = sniffed.map { "the bytes are \($0)" } ?? "the bytes are of no type Depot recognises"
            throw StorageError(.unsupportedMediaType, "\(what); allowed: \(allowed.sorted().joined(separator: ", "))")
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
    /// - Parameter finishing: the resumable upload this commit completes (its own hold is not
    ///   counted against the quota).
    func commit(
        _ blob: IngestedBlob, at key: ObjectKey, owner: String?, upsert: Bool,
        cacheControl: String? = nil, metadata userMetadata: String? = nil, finishing upload: ResumableUpload? = nil
    ) async throws -> (ObjectRecord, replaced: Bool) {
        let t = now()
        var record = ObjectRecord(
            bucket: key.bucket, path: key.path, owner: owner, blobID: blob.id, size: blob.size,
            contentType: blob.contentType, sha256: blob.sha256, cacheControl: cacheControl,
            metadata: userMetadata, createdAt: t)
        let replaced: ObjectRecord?
        do {
            let jobs = try await jobBatch(for: record, upsert: upsert)
            let quota = await commitQuota(owner: owner, finishing: upload)
            replaced = try await metadata.putObject(record, upsert: upsert, quota: quota, jobs: jobs)
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
