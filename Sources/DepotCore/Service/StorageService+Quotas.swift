import Foundation

// MARK: - Per-tenant quotas
//
// A tenant (the owner of its objects: a JWT `sub`) may hold at most `settings.quota.bytes` bytes
// and `settings.quota.objects` objects over every bucket, and keep at most
// `settings.quota.pendingUploads` upload URLs open. Usage is one row per tenant, kept by the
// metadata store in the transaction of every object write (``MetadataStore/usage(of:now:)``).
//
// Enforced where it cannot be raced: the metadata store checks the owner's usage after the write,
// inside the write's transaction, and rolls back a write past the quota
// (``MetadataStore/putObject(_:upsert:quota:)``); the ingested blob is then discarded, so nothing
// over quota is stored, however many uploads of one tenant run at once. A body declared large
// (``earlyQuotaCheckMinimum`` or more) is checked early as well, before any byte of it is read
// (one indexed row read); a smaller one costs less to read than that read costs every upload.
// The bytes that unfinished resumable uploads declared count as stored, in these early checks and
// in every commit's (``commitQuota(owner:finishing:)``), so that a held upload's space is still
// there when its last byte arrives. The service role (no owner) has no quota.

extension StorageService {
    /// The smallest declared body checked against the quota before it is read (256 KiB).
    static let earlyQuotaCheckMinimum: Int64 = 256 * 1024

    /// Refuses, before any byte is read, a body declared ``earlyQuotaCheckMinimum`` or larger that
    /// would take `owner` past its quota. Smaller or undeclared bodies are checked at the commit.
    func checkQuotaEarly(owner: String?, declared: Int64?, replacing key: ObjectKey?) async throws {
        guard let declared, declared >= Self.earlyQuotaCheckMinimum else { return }
        try await checkQuota(owner: owner, adding: declared, replacing: key)
    }

    /// Refuses a write that would take `owner` past its quota (the commit checks again, atomically,
    /// with the real size).
    /// - Parameters:
    ///   - adding: the bytes about to be written (0 when not known yet).
    ///   - replacing: the name written; an object already there (of the same owner) is replaced,
    ///     so its size and count are given back. Looked up only when the write would not fit
    ///     without it.
    ///   - held: the bytes the owner's unfinished resumable uploads declared (nil: ask the store);
    ///     they count as stored.
    /// - Throws: `.quotaExceeded` naming the limit.
    func checkQuota(owner: String?, adding bytes: Int64, held: Int64? = nil, replacing key: ObjectKey?) async throws {
        let quota = settings.quota
        guard let owner, quota.limitsStorage else { return }
        let usage = try await metadata.usage(of: owner, now: now())
        var reserved = held ?? 0
        if held == nil, let resumable { reserved = await resumable.openUploads(owner: owner, now: now()).bytes }
        let stored = RequestNumber.saturatingAdd(usage.bytes, reserved)
        var after = TenantUsage(bytes: RequestNumber.saturatingAdd(stored, bytes), objects: usage.objects + 1)
        if quota.allows(after) { return }
        if let key, let existing = try await metadata.object(at: key), existing.owner.map({ $0.bytesEqual(owner) }) ?? false {
            after.bytes -= existing.size
            after.objects -= 1
        }
        try quota.check(after)
    }

    /// The quota a commit of `owner`'s object is checked against, in its transaction: the bytes
    /// the owner's unfinished resumable uploads hold count as stored, except `finishing`'s own.
    /// Asks the resumable store only when bytes are limited (files: memory; S3: one LIST).
    func commitQuota(owner: String?, finishing upload: ResumableUpload? = nil) async -> TenantQuota {
        var quota = settings.quota
        guard let owner, quota.bytes > 0, let resumable else { return quota }
        let open = await resumable.openUploads(owner: owner, now: now())
        quota.heldBytes = max(0, open.bytes - (upload.map { $0.finishedAt == nil ? $0.length : 0 } ?? 0))
        return quota
    }

    /// Refuses a new upload URL when `owner` has too many open, or the declared size would not fit.
    /// - Throws: `.rateLimited` (retry once some URLs were used or expired), `.quotaExceeded`.
    func checkUploadURLQuota(owner: String?, size: Int64) async throws {
        let quota = settings.quota
        guard let owner else { return }
        if quota.pendingUploads > 0 {
            let usage = try await metadata.usage(of: owner, now: now())
            if usage.pendingIntents >= quota.pendingUploads {
                throw StorageError(
                    .rateLimited, "the user has \(usage.pendingIntents) upload URLs open (at most \(quota.pendingUploads)); use or let some expire",
                    retryAfter: Int(settings.uploadURLTTL))
            }
        }
        if size > 0 { try await checkQuota(owner: owner, adding: size, replacing: nil) }
    }
}

/// What one tenant holds against its quota (`GET /v1/usage`).
public struct UsageReport: Sendable, Codable, Equatable {
    public struct Limits: Sendable, Codable, Equatable {
        /// 0: no limit.
        public var bytes: Int64
        public var objects: Int
        public var openUploads: Int
    }
    public var user: String
    public var bytes: Int64
    public var objects: Int
    /// Unused upload URLs (presigned or signed).
    public var openUploadURLs: Int
    /// Unfinished, unexpired resumable uploads, and the bytes they declared (held against `bytes`).
    public var resumableUploads: Int
    public var resumableBytes: Int64
    public var limits: Limits
}

extension StorageService {
    /// The caller's usage, or (service role) any user's.
    /// - Throws: `.forbidden` for another user's without the service role; `.invalidRequest` when
    ///   the service role names no user.
    public func usageReport(as identity: Identity, of user: String?) async throws -> UsageReport {
        let owner: String
        if let user, identity.role == .serviceRole || identity.owner.map({ user.bytesEqual($0) }) == true {
            owner = user
        } else if user != nil {
            throw StorageError.forbidden("only the service role sees another user's usage")
        } else if let own = identity.owner {
            owner = own
        } else {
            throw StorageError.invalidRequest("the service role has no usage of its own: name a user (?user=)")
        }
        let usage = try await metadata.usage(of: owner, now: now())
        let open = await resumable?.openUploads(owner: owner, now: now()) ?? (count: 0, bytes: 0)
        let quota = settings.quota
        return UsageReport(
            user: owner, bytes: usage.bytes, objects: usage.objects, openUploadURLs: usage.pendingIntents, resumableUploads: open.count,
            resumableBytes: open.bytes, limits: .init(bytes: quota.bytes, objects: quota.objects, openUploads: quota.pendingUploads))
    }
}
