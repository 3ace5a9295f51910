import Foundation
import NIOCore

/// Transformed images, made once and kept: rows in the ``RenditionStore``, bytes as blobs, the
/// rows most recently found also in memory. Concurrent requests for one rendition wait for one
/// render (single flight); renders at once are bounded (``RenderGate``); the total size is bounded,
/// the least recently used go first (``RenditionStore/pruneRenditions(maxBytes:)``).
public final class RenditionCache: Sendable {
    public let store: any RenditionStore
    public let maxBytes: Int64
    let gate: RenderGate
    let flights = Flights()
    let recent = BoundedCache<String, RenditionRecord>(capacity: 4096)
    /// How stale a row's `usedAt` may be before a hit writes it again.
    static let touchInterval: TimeInterval = 60

    public init(store: any RenditionStore, maxBytes: Int64, concurrentRenders: Int, waitingRenders: Int) {
        self.store = store
        self.maxBytes = maxBytes
        self.gate = RenderGate(limit: concurrentRenders, queue: waitingRenders)
    }

    /// The rendition under `key`: from memory, from the store, or made by `make` (once, whoever
    /// else asks meanwhile) and stored.
    func rendition(
        key: String, now: Date, make: @escaping @Sendable () async throws -> RenditionRecord
    ) async throws -> RenditionRecord {
        let version = recent.version
        if var hit = recent.value(for: key) {
            if now.timeIntervalSince(hit.usedAt) > Self.touchInterval {
                hit.usedAt = now
                recent.insert(hit, for: key, ifVersion: recent.version)
                try await store.touchRenditions([key], at: now)
            }
            return hit
        }
        let found: RenditionRecord
        if var stored = try await store.rendition(key: key) {
            if now.timeIntervalSince(stored.usedAt) > Self.touchInterval {
                try await store.touchRenditions([key], at: now)
                stored.usedAt = now
            }
            found = stored
        } else {
            found = try await flights.run(key: key, make)
        }
        recent.insert(found, for: key, ifVersion: version)
        return found
    }

    /// Drops the rows kept in memory (the store answers next).
    public func forgetRecent() { recent.invalidateAll() }

    /// Forgets rows that pruning removed (their blobs are about to go).
    func forget(_ refs: [RenditionRef]) {
        if !refs.isEmpty { recent.invalidate(refs.map(\.key)) }
    }
}

/// One task per key at a time; later callers for the key wait for its result.
actor Flights {
    private var running: [String: Task<RenditionRecord, any Error>] = [:]

    func run(key: String, _ body: @escaping @Sendable () async throws -> RenditionRecord) async throws -> RenditionRecord {
        if let task = running[key] { return try await task.value }
        let task = Task { try await body() }
        running[key] = task
        defer { running[key] = nil }
        return try await task.value
    }
}

/// At most `limit` renders at once (each holds its source in memory) and `queue` waiting; past
/// that a render is refused with 503 + Retry-After instead of piling up memory.
actor RenderGate {
    let limit: Int
    let queue: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int, queue: Int) {
        self.limit = max(1, limit)
        self.queue = max(0, queue)
    }

    /// Waits for a free slot, or throws when `queue` callers already wait.
    func acquire() async throws {
        if running < limit {
            running += 1
            return
        }
        guard waiting.count < queue else {
            throw StorageError(.unavailable, "too many images are being transformed; try again shortly", retryAfter: 1)
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
