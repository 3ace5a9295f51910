import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The last of the current second's answers (``RecentAnswers``) that an event loop's front wrote
/// again, with its request target: the same URL asked for again on the same loop, in the same
/// second, with the caches' epoch unchanged — `RecentAnswers`' own rule — is answered without the
/// table's lock and lookup (the loop's own table, ``PerLoop``), a string of the target or its hash. One per event-loop
/// thread, so it holds at most one answer's head per loop (its body belongs to the blob cache).
/// Taken on a table hit only: a URL asked for once a second (a large gallery) never gets here.
///
/// The variable is the thread's, not a server's: several servers may share the event loops (in
/// one process, on NIO's shared group), so the answer is kept with the table it came from and
/// found only for that table — held, so that no other table can reuse its address meanwhile.
final class HotAnswer: @unchecked Sendable {
    // @unchecked: an instance is only ever reached through its own thread's variable.
    private var table: RecentAnswers?
    private var target: [UInt8] = []
    private var second: Int64 = .min
    private var epoch: UInt64 = 0
    private var wire: RecentAnswers.Wire?

    private static let perThread = ThreadSpecificVariable<HotAnswer>()

    /// This thread's answer from `table` to a plain GET of `target` in `second` with the caches'
    /// `epoch`.
    static func current(from table: RecentAnswers, for target: UnsafeRawBufferPointer, second: Int64, epoch: UInt64) -> RecentAnswers.Wire? {
        guard let hot = perThread.currentValue, hot.table === table, hot.second == second, hot.epoch == epoch, let wire = hot.wire,
            hot.target.count == target.count,
            hot.target.withUnsafeBytes({ memcmp($0.baseAddress!, target.baseAddress!, target.count) == 0 })
        else { return nil }
        return wire
    }

    /// Makes `wire`, kept in `table` for `target` in `second` under `epoch`, this thread's answer.
    static func remember(
        _ wire: RecentAnswers.Wire, from table: RecentAnswers, for target: UnsafeRawBufferPointer, second: Int64, epoch: UInt64
    ) {
        let hot: HotAnswer
        if let current = perThread.currentValue {
            hot = current
        } else {
            hot = HotAnswer()
            perThread.currentValue = hot
        }
        hot.table = table
        hot.target.removeAll(keepingCapacity: true)
        hot.target.append(contentsOf: target)
        hot.second = second
        hot.epoch = epoch
        hot.wire = wire
    }
}
