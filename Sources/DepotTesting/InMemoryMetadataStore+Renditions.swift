import DepotCore
import Foundation

extension InMemoryMetadataStore: RenditionStore {
    public func rendition(key: String) async throws -> RenditionRecord? { renditions[key] }

    public func putRendition(_ record: RenditionRecord) async throws -> RenditionRecord {
        if let existing = renditions[record.key] { return existing }
        renditions[record.key] = record
        return record
    }

    public func touchRenditions(_ keys: [String], at date: Date) async throws {
        for key in keys where renditions[key] != nil {
            renditions[key]!.usedAt = max(renditions[key]!.usedAt, date)
        }
    }

    public func pruneRenditions(maxBytes: Int64) async throws -> RenditionPrune {
        var prune = RenditionPrune()
        let sources = Set(objects.values.map(\.blobID))
        for (key, r) in renditions.sorted(by: { $0.key < $1.key }) where !sources.contains(r.sourceBlob) {
            prune.stale.append(r.ref)
            renditions[key] = nil
        }
        var total = renditions.values.reduce(0) { $0 + $1.size }
        let oldest = renditions.values.sorted { ($0.usedAt, $0.key) < ($1.usedAt, $1.key) }
        for r in oldest where total > maxBytes {
            prune.evicted.append(r.ref)
            renditions[r.key] = nil
            total -= r.size
        }
        return prune
    }

    public func renditionUsage() async throws -> (count: Int, bytes: Int64) {
        (renditions.count, renditions.values.reduce(0) { $0 + $1.size })
    }
}
