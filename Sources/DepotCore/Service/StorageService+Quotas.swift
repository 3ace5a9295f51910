import Foundation

// MARK: - Per-tenant quotas
//
// A tenant (the owner of its objects: a JWT `sub`) may hold at most `settings.quota.bytes` bytes
// and `settings.quota.objects` objects over every bucket, and keep at most
// `settings.quota.pendingUploads` upload URLs open. Usage is one row per tenant, kept by the
// metadata store in the transaction of every object write (``MetadataStore/usage(of:now:)``).
// Checked before any byte is read (with the declared size) and again, with the real size, just
// before the commit; what fails the second check is discarded, so nothing over quota is stored.
// Concurrent uploads of one tenant may each pass the check and together overshoot by at most what
// they carry. The service role (no owner) has no quota.

extension StorageService {
    /// Refuses a write that would take `owner` past its quota.
    /// - Parameters:
    ///   - adding: the bytes about to be written (0 when not known yet).
    ///   - replacing: the name written; an object already there (of the same owner) is replaced,
    ///     so its size and count are given back.
    /// - Throws: `.quotaExceeded` naming the limit.
    func checkQuota(owner: String?, adding bytes: Int64, replacing key: ObjectKey?) async throws {
        let quota = settings.quota
        guard let owner, quota.bytes > 0 || quota.objects > 0 else { return }
        let usage = try await metadata.usage(of: owner, now: now())
        var bytesAfter = RequestNumber.saturatingAdd(usage.bytes, bytes)
        var objectsAfter = usage.objects + 1
        if let key, let existing = try await metadata.object(at: key), existing.owner.map({ $0.bytesEqual(owner) }) ?? false {
            bytesAfter -= existing.size
            objectsAfter -= 1
        }
        if quota.bytes > 0, bytesAfter > quota.bytes {
            throw StorageError(
                .quotaExceeded,
                "this upload would take the user's storage to \(bytesAfter) bytes; the quota is \(quota.bytes) bytes (\(usage.bytes) used)")
        }
        if quota.objects > 0, objectsAfter > quota.objects {
            throw StorageError(.quotaExceeded, "the user already has \(usage.objects) objects; the quota is \(quota.objects)")
        }
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
