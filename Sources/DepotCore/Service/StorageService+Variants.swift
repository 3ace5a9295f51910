import Foundation
import Logging
import NIOCore

/// A variant's size, `{W}x{H}` (1–4096 pixels a side).
public struct VariantSize: Sendable, Hashable, Codable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// `112x112` → 112 × 112; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ (1...4).contains($0.count) && $0.utf8.allSatisfy { (48...57).contains($0) } }),
            let w = Int(parts[0]), let h = Int(parts[1]), (1...4096).contains(w), (1...4096).contains(h)
        else { return nil }
        self.init(width: w, height: h)
    }

    public var description: String { "\(width)x\(height)" }

    /// At most this many variants per image.
    public static let maxCount = 8

    /// Why a list of sizes was refused (``parseList(_:)``).
    public enum ListError: Error, Equatable {
        /// This item is not `WxH` of 1–4096 a side.
        case notASize(String)
        /// More than ``maxCount`` different sizes.
        case tooMany
    }

    /// A list of sizes (`--variants`, a bucket's `variants`), duplicates dropped, in order.
    public static func parseList(_ items: [some StringProtocol]) throws(ListError) -> [VariantSize] {
        var sizes: [VariantSize] = []
        for item in items {
            guard let size = VariantSize(item) else { throw .notASize(String(item)) }
            if !sizes.contains(size) { sizes.append(size) }
        }
        guard sizes.count <= maxCount else { throw .tooMany }
        return sizes
    }

    /// `112x112,56x56` (as stored); nil when a part is not a size or there are more than ``maxCount``.
    public static func list(_ text: String) -> [VariantSize]? {
        try? parseList(text.split(separator: ","))
    }

    /// The stored spelling of a list; nil for none.
    public static func text(_ sizes: [VariantSize]) -> String? {
        sizes.isEmpty ? nil : sizes.map(\.description).joined(separator: ",")
    }
}

/// One variant of an asset as the Assets API shows it.
public struct AssetVariant: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable { case pending, ready, failed }
    public var path: String
    public var size: String
    public var state: State
    /// Why it failed (the job's last error).
    public var error: String?
}

/// What a variant job needs (its payload).
struct VariantPayload: Codable {
    /// The image's bucket; absent in jobs queued before buckets had variants of their own (then
    /// one of the Assets API's two).
    var bucket: String?
    var path: String
    var blob: String
    var width: Int
    var height: Int
}

extension StorageService {
    /// The job kind that makes variants.
    public static let variantJobKind = "variant"

    /// Whether the Assets API's images get variants here: sizes configured, a renderer and a job
    /// queue present.
    public var makesVariants: Bool {
        !settings.variants.isEmpty && makesImages
    }

    /// Whether this server can make images at all (a job queue and a working renderer): its job
    /// workers run then (variants of the Assets API's buckets or of a bucket's own settings).
    public var makesImages: Bool { jobs != nil && (images?.isAvailable ?? false) }

    func isAssetsBucket(_ bucket: String) -> Bool { bucket == settings.privateBucket || bucket == settings.publicBucket }

    /// The variants made of images in `bucket`: `--variants` for the Assets API's two buckets,
    /// the bucket's own list (`variants` in its settings) for the others; none when this server
    /// makes no images.
    public func variantSizes(in bucket: String) async throws -> [VariantSize] {
        guard makesImages else { return [] }
        if isAssetsBucket(bucket) { return settings.variants }
        return try await metadata.bucket(named: bucket)?.variants ?? []
    }

    /// Whether an object gets variants: an image Depot reads, not itself a variant, sizes given.
    func hasVariants(_ record: ObjectRecord, sizes: [VariantSize]) -> Bool {
        !sizes.isEmpty && ImageFormat(contentType: record.contentType) != nil && !Self.isVariantName(record.path)
    }

    /// ``hasVariants(_:sizes:)`` for an asset (the Assets API's sizes).
    func hasVariants(_ record: ObjectRecord) -> Bool {
        makesVariants && hasVariants(record, sizes: settings.variants)
    }

    /// `alice/job/x.png` → `alice/job/x_112x112.png` (the extension, if any, kept last).
    public static func variantPath(of path: ObjectPath, size: VariantSize) -> ObjectPath? {
        let name = path.string
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        let last = name[slash...]
        let suffix = "_\(size)"
        if let dot = last.lastIndex(of: "."), dot != last.startIndex {
            return try? ObjectPath(String(name[..<dot]) + suffix + String(name[dot...]))
        }
        return try? ObjectPath(name + suffix)
    }

    /// The sizes of the variants beside an image (`{stem}_{W}x{H}{.ext}`, any size: its bucket's
    /// own and those a move brought from another bucket), one listing by prefix.
    func presentVariantSizes(of key: ObjectKey) async throws -> [VariantSize] {
        let name = key.path.string
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        let dot = name[slash...].lastIndex(of: ".").flatMap { $0 == slash ? nil : $0 }
        let stem = String(name[..<(dot ?? name.endIndex)]) + "_"
        let ext = dot.map { String(name[$0...]) } ?? ""
        let rows = try await metadata.listObjects(in: key.bucket, prefix: stem, after: nil, limit: 256)
        return rows.compactMap { row in
            let rest = row.path.string.dropFirst(stem.count)
            guard rest.hasSuffix(ext), !rest.dropLast(ext.count).contains(".") else { return nil }
            return VariantSize(rest.dropLast(ext.count))
        }
    }

    /// Whether a name is itself a variant (`…_{W}x{H}[.ext]`): variants get no variants.
    public static func isVariantName(_ path: ObjectPath) -> Bool {
        let name = path.string
        let slash = name.lastIndex(of: "/").map { name.index(after: $0) } ?? name.startIndex
        var stem = name[slash...]
        if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = stem[..<dot] }
        guard let underscore = stem.lastIndex(of: "_") else { return false }
        return VariantSize(stem[stem.index(after: underscore)...]) != nil
    }

    /// A variant job's key: the image's bucket, name and blob, and the size (an image moved to
    /// another bucket or name needs jobs of its own there).
    static func variantKey(of record: ObjectRecord, size: VariantSize) -> String {
        "variant:\(record.bucket)/\(record.path.string)@\(record.blobID.rawValue):\(size)"
    }

    /// The jobs an object's write starts, queued in its transaction: one per variant of an image
    /// (``variantSizes(in:)``). Any overwrite in a bucket with variants cancels the open jobs of
    /// what it replaces. Nothing (not even a query) when the bucket has no variants.
    func jobBatch(for record: ObjectRecord, upsert: Bool) async throws -> JobBatch {
        let sizes = try await variantSizes(in: record.bucket)
        if sizes.isEmpty { return .none }
        let new = variantJobs(for: record, sizes: sizes)
        if new.isEmpty && !upsert { return .none }
        return JobBatch(jobs: new, limits: settings.jobLimits, now: now(), cancelsReplaced: upsert)
    }

    /// One job per size for an image (none for what is not one, or is itself a variant).
    func variantJobs(for record: ObjectRecord, sizes: [VariantSize]) -> [NewJob] {
        guard hasVariants(record, sizes: sizes) else { return [] }
        return sizes.compactMap { size in
            guard Self.variantPath(of: record.path, size: size) != nil else { return nil }
            let payload = VariantPayload(
                bucket: record.bucket, path: record.path.string, blob: record.blobID.rawValue, width: size.width, height: size.height)
            return NewJob(
                kind: Self.variantJobKind, key: Self.variantKey(of: record, size: size),
                tenant: record.owner, source: record.key,
                payload: String(decoding: (try? JSONEncoder().encode(payload)) ?? Data(), as: UTF8.self))
        }
    }

    /// Each configured variant of an image asset with its state: `ready` when a variant at least
    /// as new as the image is there (made here, or uploaded by the client), `pending` while its
    /// job is queued or running, `failed` when the job is dead. Variants with neither a job nor an
    /// object are left out.
    public func variants(of record: ObjectRecord) async throws -> [AssetVariant]? {
        guard hasVariants(record), let jobs else { return nil }
        var out: [AssetVariant] = []
        for size in settings.variants {
            guard let path = Self.variantPath(of: record.path, size: size) else { continue }
            if let existing = try await metadata.object(at: ObjectKey(bucket: record.bucket, path: path)),
                existing.updatedAt >= record.updatedAt
            {
                out.append(AssetVariant(path: path.string, size: "\(size)", state: .ready))
                continue
            }
            guard let job = try await jobs.job(id: JobRecord.id(forKey: Self.variantKey(of: record, size: size)))
            else { continue }
            switch job.state {
            case .queued, .running: out.append(AssetVariant(path: path.string, size: "\(size)", state: .pending))
            case .dead: out.append(AssetVariant(path: path.string, size: "\(size)", state: .failed, error: job.lastError))
            case .succeeded, .cancelled: continue
            }
        }
        return out
    }

    /// The variants a just-written image will get, all pending (their jobs were queued with it).
    func pendingVariants(of record: ObjectRecord) -> [AssetVariant]? {
        guard hasVariants(record) else { return nil }
        return settings.variants.compactMap { size in
            Self.variantPath(of: record.path, size: size).map { AssetVariant(path: $0.string, size: "\(size)", state: .pending) }
        }
    }

    /// Moves an asset's variants with it (a visibility flip); a variant missing is skipped.
    func moveVariants(of path: ObjectPath, from: String, to: String) async {
        await moveVariants(from: ObjectKey(bucket: from, path: path), to: ObjectKey(bucket: to, path: path), sizes: settings.variants)
    }

    /// Moves an image's variants of `sizes` with it (rename, bucket change); a variant missing, or
    /// whose new name is taken, is skipped (and logged in the second case).
    func moveVariants(from: ObjectKey, to: ObjectKey, sizes: [VariantSize]) async {
        guard !Self.isVariantName(from.path) else { return }
        for size in sizes {
            guard let v = Self.variantPath(of: from.path, size: size), let w = Self.variantPath(of: to.path, size: size) else { continue }
            do {
                _ = try await metadata.moveObject(
                    from: ObjectKey(bucket: from.bucket, path: v), to: ObjectKey(bucket: to.bucket, path: w), generation: .newGeneration(),
                    at: now())
            } catch let e as StorageError where e.code == .notFound {
                continue
            } catch let e as StorageError where e.code == .alreadyExists {
                // The new name's variant is there already (the client's own): it stays, and this
                // one, whose image is gone from here, goes.
                if let removed = try? await metadata.deleteObject(at: ObjectKey(bucket: from.bucket, path: v)) {
                    await discard(removed.blobID)
                }
            } catch {
                logger.warning("could not move variant \(v) with its image", metadata: ["error": "\(error)"])
            }
        }
    }

    /// After a move or a visibility flip: queues the variants the image lacks at its new place
    /// (its bucket's sizes; jobs of the old place are cancelled by their handler, which finds the
    /// image gone from there).
    func queueMissingVariants(of record: ObjectRecord) async {
        do {
            let sizes = try await variantSizes(in: record.bucket)
            guard let jobs, hasVariants(record, sizes: sizes) else { return }
            var missing: [VariantSize] = []
            for size in sizes {
                guard let v = Self.variantPath(of: record.path, size: size) else { continue }
                if try await metadata.object(at: ObjectKey(bucket: record.bucket, path: v)) == nil { missing.append(size) }
            }
            let new = variantJobs(for: record, sizes: missing)
            if !new.isEmpty { _ = try await jobs.enqueue(new, limits: settings.jobLimits, now: now()) }
        } catch {
            logger.warning("could not queue the variants of \(record.key)", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes a deleted image's variants (of its bucket's `sizes`).
    func deleteVariants(of removed: ObjectRecord, sizes: [VariantSize]) async {
        guard hasVariants(removed, sizes: sizes) else { return }
        await deleteVariants(of: removed.path, in: removed.bucket, sizes: sizes)
    }

    /// Deletes an asset's variants with it.
    func deleteVariants(of path: ObjectPath, in bucket: String) async {
        await deleteVariants(of: path, in: bucket, sizes: settings.variants)
    }

    /// Deletes an image's variants of `sizes` with it.
    func deleteVariants(of path: ObjectPath, in bucket: String, sizes: [VariantSize]) async {
        guard !sizes.isEmpty, !Self.isVariantName(path) else { return }
        for size in sizes {
            guard let v = Self.variantPath(of: path, size: size) else { continue }
            do {
                if let removed = try await metadata.deleteObject(at: ObjectKey(bucket: bucket, path: v)) { await discard(removed.blobID) }
            } catch {
                logger.warning("could not delete variant \(v) with its image", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Makes one variant (a job of kind ``StorageService/variantJobKind``). Idempotent: a variant at
/// least as new as its source is current (made by an earlier run cut off before it reported, or
/// uploaded by the client) and is left as it is; a source replaced, moved away or deleted since
/// the job was queued cancels it.
public struct VariantJobHandler: JobHandler {
    let service: StorageService
    let renderer: any ImageRenderer

    public init(service: StorageService, renderer: any ImageRenderer) {
        self.service = service
        self.renderer = renderer
    }

    public func run(_ job: JobRecord) async throws {
        guard let payload = try? JSONDecoder().decode(VariantPayload.self, from: Data(job.payload.utf8)),
            let path = try? ObjectPath(payload.path), (1...4096).contains(payload.width), (1...4096).contains(payload.height)
        else { throw PermanentJobFailure("the job's payload is not a variant's") }
        let size = VariantSize(width: payload.width, height: payload.height)
        guard let target = StorageService.variantPath(of: path, size: size) else {
            throw PermanentJobFailure("\(path) has no name for a \(size) variant")
        }
        let found =
            if let bucket = payload.bucket { try await service.metadata.object(at: ObjectKey(bucket: bucket, path: path)) } else {
                try await service.locate(path)
            }
        guard let source = found, source.blobID.rawValue == payload.blob else {
            throw JobCancelled("its image was replaced or deleted")
        }
        let variantKey = ObjectKey(bucket: source.bucket, path: target)
        if let existing = try await service.metadata.object(at: variantKey), existing.updatedAt >= source.updatedAt { return }
        guard let format = ImageFormat(contentType: source.contentType) else {
            throw PermanentJobFailure("\(source.contentType) is not an image Depot reads")
        }
        guard source.size <= service.settings.maxImageSourceBytes else {
            throw PermanentJobFailure("the image is \(source.size) bytes, more than the \(service.settings.maxImageSourceBytes) variants are made of")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(source.size))
        try await service.blobs.read(source.blobID, range: nil) { chunk in bytes += chunk.readableBytesView }
        let rendered: [UInt8]
        do {
            rendered = try await renderer.render(bytes, ImageRequest(width: size.width, height: size.height, fit: .cover, format: format))
        } catch let e as ImageError where e.permanent {
            throw PermanentJobFailure(e.message)
        }
        var rules = IngestRules(maxSize: Int64(rendered.count), allowedTypes: [format.contentType], declaredType: format.contentType)
        rules.typing = .sniffed
        let blob = try await service.ingest(rules: rules) { consume in try await consume(ByteBuffer(bytes: rendered)) }
        let (written, _) = try await service.commit(
            blob, at: variantKey, owner: source.owner, upsert: true, cacheControl: source.cacheControl)
        // The image may have moved (a visibility flip) or changed while this ran: then this
        // variant is in the wrong place, and must not stay (a public thumbnail of a private image).
        let after =
            if payload.bucket != nil { try await service.metadata.object(at: source.key) } else { try await service.locate(path) }
        if let after, after.bucket == source.bucket, after.blobID == source.blobID { return }
        if let removed = try await service.metadata.deleteObject(at: written.key) { await service.discard(removed.blobID) }
        throw JobRetry("its image moved while the variant was made; made again")
    }
}

/// Thrown by a handler whose job no longer has anything to do: the job ends `cancelled`.
public struct JobCancelled: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A retryable failure with a readable reason.
struct JobRetry: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
