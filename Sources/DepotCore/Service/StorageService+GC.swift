import Foundation

/// What one garbage-collection pass removed.
public struct GCReport: Sendable, CustomStringConvertible {
    public var orphanBlobs = 0
    public var expiredIntents = 0
    /// Cached renditions of replaced or deleted images (or past the cache's bound).
    public var renditions = 0
    /// Resumable uploads past their expiry, with their staged bytes.
    public var expiredResumables = 0
    public var description: String {
        "removed \(orphanBlobs) orphan blob(s), \(expiredIntents) expired upload intent(s), \(expiredResumables) expired resumable upload(s) and \(renditions) stale rendition(s)"
    }
}

extension StorageService {
    /// Removes blobs that no row points at and that are older than the grace period (what a crash
    /// or a failed delete leaves), unfinished writes older than it, expired upload intents and expired resumable uploads.
    public func collectGarbage(gracePeriod: TimeInterval? = nil) async throws -> GCReport {
        let cutoff = now().addingTimeInterval(-(gracePeriod ?? settings.gcGracePeriod))
        var report = GCReport()
        if let renditions { report.renditions = await pruneRenditions(renditions) }
        let candidates = try await blobs.blobs(writtenBefore: cutoff)
        var index = 0
        while index < candidates.count {
            let batch = Array(candidates[index..<min(index + 500, candidates.count)])
            index += batch.count
            let referenced = try await metadata.referencedBlobs(among: batch)
            let orphans = batch.filter { !referenced.contains($0) }
            try await blobs.delete(orphans)
            report.orphanBlobs += orphans.count
        }
        report.expiredIntents = try await metadata.deleteIntents(expiredBefore: cutoff)
        if let resumable {
            for id in try await resumable.expired(before: now()) {
                try await resumable.delete(id: id)
                report.expiredResumables += 1
            }
        }
        return report
    }
}
