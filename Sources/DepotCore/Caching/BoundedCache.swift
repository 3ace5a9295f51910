import Synchronization

/// A thread-safe cache bounded by total cost, evicting the least recently used entries in batches.
/// Each mutation bumps nothing by itself; ``CachedMetadataStore`` layers versioning on top.
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// Which new keys a full cache takes in.
    public enum Admission: Sendable {
        /// Every one (evicting the least recently used).
        case always
        /// When taking a new key in would evict, only one refused before among the last `window`
        /// refusals: a working set larger than the cache read in a cycle (a gallery scrolled
        /// through, a scan) leaves the cache as it is — a stable part of it found there — instead
        /// of evicting each entry before its next use and finding nothing; a key asked for
        /// again soon gets in.
        case secondMissWhenFull(window: Int)
    }

    /// A key with its hash, worked out once per call and outside the lock. The table compares the
    /// stored hashes first, so a probe past another key reads no string of it (a row's path, a
    /// blob's id are on the heap: one cache miss each) — only the key that matches is compared.
    @usableFromInline
    struct Hashed: Hashable, Sendable {
        @usableFromInline let key: Key
        @usableFromInline let hash: Int
        @inlinable
        init(_ key: Key) {
            self.key = key
            hash = key.hashValue
        }
        @inlinable
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        @inlinable
        static func == (a: Hashed, b: Hashed) -> Bool { a.hash == b.hash && a.key == b.key }
    }

    @usableFromInline
    struct Entry {
        @usableFromInline var value: Value
        @usableFromInline var cost: Int
        @usableFromInline var lastUse: UInt64
        @usableFromInline
        init(value: Value, cost: Int, lastUse: UInt64) {
            self.value = value
            self.cost = cost
            self.lastUse = lastUse
        }
    }

    @usableFromInline
    struct State {
        @usableFromInline var entries: [Hashed: Entry] = [:]
        @usableFromInline var totalCost = 0
        @usableFromInline var tick: UInt64 = 0
        /// Bumped by every invalidation; an insert computed before the bump is dropped.
        @usableFromInline var version: UInt64 = 0
        /// The hashes of keys refused by a full cache (``Admission/secondMissWhenFull(window:)``),
        /// and the order they were refused in (a ring of `window`; `nextRefused` is the oldest
        /// slot). Hashes, not keys: nothing is retained or compared, and a key sharing a refused
        /// key's hash is merely taken in one miss early.
        @usableFromInline var refused: Set<Int> = []
        @usableFromInline var refusedOrder: [Int] = []
        @usableFromInline var nextRefused = 0
        @usableFromInline init() {}
    }

    @usableFromInline let state = Mutex(State())
    /// Bumped with every invalidation, read without the lock (see ``epoch``).
    private let invalidations = Atomic<UInt64>(0)
    public let capacity: Int
    @usableFromInline let admission: Admission

    /// - Parameters:
    ///   - capacity: the most total cost kept (bytes, or entries when each costs 1).
    ///   - admission: which new keys a full cache takes in.
    public init(capacity: Int, admission: Admission = .always) {
        self.capacity = capacity
        self.admission = admission
    }

    // `@inlinable`, as `insert`: specialised for each cache's key and value where it is used
    // (another module's cache would otherwise copy and hash through value witnesses).
    @inlinable
    public func value(for key: Key) -> Value? {
        let key = Hashed(key)
        return state.withLock { s in
            // One hash lookup; the entry is touched in place.
            guard let i = s.entries.index(forKey: key) else { return nil }
            s.tick &+= 1
            s.entries.values[i].lastUse = s.tick
            return s.entries.values[i].value
        }
    }

    /// The version to pass to ``insert(_:for:cost:ifVersion:)`` for a value about to be loaded.
    public var version: UInt64 { state.withLock { $0.version } }

    /// Inserts unless an invalidation happened since `version` was read (the value may be stale).
    @inlinable
    public func insert(_ value: Value, for key: Key, cost: Int = 1, ifVersion version: UInt64) {
        guard cost <= capacity else { return }
        let key = Hashed(key)
        state.withLock { s in
            guard s.version == version else { return }
            if case .secondMissWhenFull(let window) = admission, s.totalCost + cost > capacity, s.entries[key] == nil,
                !Self.admitsRefused(key.hash, &s, window: window)
            {
                return
            }
            s.tick &+= 1
            if let old = s.entries[key] { s.totalCost -= old.cost }
            s.entries[key] = Entry(value: value, cost: cost, lastUse: s.tick)
            s.totalCost += cost
            if s.totalCost > capacity { Self.evict(&s, toFit: capacity) }
        }
    }

    /// Removes keys and makes every load in flight unable to insert.
    public func invalidate(_ keys: [Key]) {
        let keys = keys.map(Hashed.init)
        state.withLock { s in
            s.version &+= 1
            invalidations.add(1, ordering: .releasing)
            for k in keys {
                if let old = s.entries.removeValue(forKey: k) { s.totalCost -= old.cost }
            }
        }
    }

    /// Removes every entry and makes every load in flight unable to insert.
    public func invalidateAll() {
        state.withLock { s in
            s.version &+= 1
            invalidations.add(1, ordering: .releasing)
            s.entries.removeAll()
            s.totalCost = 0
        }
    }

    /// Changes whenever an entry may have been invalidated (never on eviction: an evicted value
    /// was still right). A value derived from entries read after `epoch` stays right for as
    /// long as `epoch` is unchanged.
    public var epoch: UInt64 { invalidations.load(ordering: .acquiring) }

    public var count: Int { state.withLock { $0.entries.count } }

    /// The total cost held (at most ``capacity``).
    public var cost: Int { state.withLock { $0.totalCost } }

    /// Whether the key of hash `key` was refused before (it is taken in now); if not, it is
    /// remembered as refused.
    @usableFromInline
    static func admitsRefused(_ key: Int, _ s: inout State, window: Int) -> Bool {
        if s.refused.remove(key) != nil { return true }
        guard window > 0 else { return false }
        if s.refusedOrder.count < window {
            s.refusedOrder.append(key)
        } else {
            s.refused.remove(s.refusedOrder[s.nextRefused])
            s.refusedOrder[s.nextRefused] = key
            s.nextRefused = (s.nextRefused + 1) % window
        }
        s.refused.insert(key)
        return false
    }

    @usableFromInline
    static func evict(_ s: inout State, toFit capacity: Int) {
        // Drop the least recently used entries down to three quarters of the capacity: the last
        // uses (plain integers, no keys or values copied) are sorted to find the newest use that
        // goes, then one pass keeps the rest. Amortised over the quarter of inserts between two
        // evictions, a cache thrashed by a larger working set (a gallery) can afford it.
        let target = capacity - capacity / 4
        var uses = [(lastUse: UInt64, cost: Int)]()
        uses.reserveCapacity(s.entries.count)
        for entry in s.entries.values { uses.append((entry.lastUse, entry.cost)) }
        uses.sort { $0.lastUse < $1.lastUse }
        var left = s.totalCost
        var newestDropped: UInt64 = 0
        for use in uses {
            if left <= target { break }
            left -= use.cost
            newestDropped = use.lastUse
        }
        s.entries = s.entries.filter { $0.value.lastUse > newestDropped }
        s.totalCost = left
    }
}
