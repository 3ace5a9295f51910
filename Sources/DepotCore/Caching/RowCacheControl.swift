import Dispatch
import Synchronization

/// Keeps a ``CachedMetadataStore`` right when other servers write the same rows (PostgreSQL):
/// something that hears of every write (the database's notifications) drops the rows it names,
/// and vouches, by renewing a short lease, that it is still hearing. Rows are served from memory
/// only while the lease runs; when it lapses (the listener lost its connection or is stuck) every
/// lookup goes to the database and nothing is kept until it is renewed, so a write made on another
/// server is never hidden for longer than the lease. Losing the connection drops the cache whole
/// (``distrust()``); the listener renews only once it hears again (after ``invalidateAll()``).
public final class RowCacheControl: Sendable {
    /// Until when (``DispatchTime/uptimeNanoseconds``) rows may be served from memory.
    private let trustedUntil = Atomic<UInt64>(0)
    /// Changes on every read of ``epoch`` while the lease has lapsed, so that nothing built from
    /// the cache meanwhile (a hot URL's answer) is ever reused.
    private let lapses = Atomic<UInt64>(0)
    let invalidations = Mutex<[@Sendable (Invalidation) -> Void]>([])

    enum Invalidation {
        case object(ObjectKey)
        case bucket(String)
        case all
    }

    public init() {}

    /// Whether rows may be served from memory now.
    public var isTrusted: Bool { DispatchTime.now().uptimeNanoseconds < trustedUntil.load(ordering: .acquiring) }

    /// Rows may be served from memory for `lease` from now (the listener heard from the database
    /// at the start of this call or later).
    public func renew(for lease: Duration) {
        let (seconds, attoseconds) = lease.components
        let nanos = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        trustedUntil.store(DispatchTime.now().uptimeNanoseconds + nanos, ordering: .releasing)
    }

    /// Rows may no longer be served from memory, and every row kept is dropped.
    public func distrust() {
        trustedUntil.store(0, ordering: .releasing)
        invalidateAll()
    }

    /// Another server wrote the object row at `key` (created, replaced, moved away, deleted).
    public func invalidate(object key: ObjectKey) { send(.object(key)) }
    /// Another server wrote the bucket row `name`.
    public func invalidate(bucket name: String) { send(.bucket(name)) }
    /// Anything may have changed.
    public func invalidateAll() { send(.all) }

    /// Folded into the cache's epoch: unchanged while trusted, new on every read while not, and
    /// never lower than before (the epoch only rises: `RecentAnswers` keeps nothing over an answer
    /// of a later epoch). Reads while not trusted take even values, each its own; trusted, the odd
    /// one above the last of them. (Summed with the tables' epochs, read one after another, two
    /// readers racing a write may see one sum for two states; while lapsed nothing is kept from
    /// memory, and while trusted this part does not move.)
    var epochSalt: UInt64 { isTrusted ? lapses.load(ordering: .relaxed) &+ 1 : lapses.add(2, ordering: .relaxed).newValue }

    func subscribe(_ handler: @escaping @Sendable (Invalidation) -> Void) {
        invalidations.withLock { $0.append(handler) }
    }

    private func send(_ invalidation: Invalidation) {
        for handler in invalidations.withLock({ $0 }) { handler(invalidation) }
    }
}
