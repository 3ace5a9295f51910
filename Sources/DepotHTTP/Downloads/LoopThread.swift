import NIOCore
import NIOPosix
import Synchronization

/// Which of the values kept per event loop (``PerLoop``, ``LoopCounter``) the calling thread
/// uses: each event-loop thread its own slot, numbered in the order the loops first ask (the
/// first ``loopSlots`` loops never share one), and every other thread (Swift's task executor,
/// NIO's thread pool, a test's) one shared slot, ``sharedSlot``. No lookup by thread or loop
/// identity: the slot is worked out once per thread and kept in a thread-local.
enum LoopThread {
    private final class Slot: Sendable {
        let value: Int
        init(_ value: Int) { self.value = value }
    }
    private static let perThread = ThreadSpecificVariable<Slot>()
    private static let nextLoop = Atomic<Int>(0)

    /// Slots for event loops: a power of two of at least the machine's cores (NIO's default
    /// group has one loop per core), at most 64. More loops than that (several groups) share
    /// them, still correctly: each slot is locked or atomic.
    static let loopSlots: Int = {
        var n = 1
        while n < min(max(System.coreCount, 1), 64) { n <<= 1 }
        return n
    }()

    /// The slot of the threads that are not event loops.
    static var sharedSlot: Int { loopSlots }

    /// Slots in all: one per loop and the shared one.
    static var slots: Int { loopSlots + 1 }

    /// The calling thread's slot, below ``slots``.
    static var slot: Int {
        if let slot = perThread.currentValue { return slot.value }
        let value =
            MultiThreadedEventLoopGroup.currentEventLoop == nil
            ? sharedSlot : nextLoop.add(1, ordering: .relaxed).oldValue & (loopSlots - 1)
        perThread.currentValue = Slot(value)
        return value
    }
}

/// A value kept per event loop: each loop reads and writes its own, under a lock no other loop
/// waits for (bar loops beyond ``LoopThread/loopSlots``; another loop may try it, rarely, with
/// ``forEachOther(_:)``), in memory no other loop writes; threads that are not event loops share
/// one more. What every request touches (the `Date` header's text, the current second's answers)
/// is kept this way, so that two loops never wait for each other, nor pass a cache line back and
/// forth, for it.
final class PerLoop<Value: Sendable>: Sendable {
    private let slots: [Slot]

    private final class Slot: Sendable {
        let value: Mutex<Value>
        /// Keeps two loops' values out of one cache line (each slot is its own allocation).
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        init(_ value: Value) { self.value = Mutex(value) }
    }

    /// Each slot's value made by `make`, told whether it is the slot of the threads that are no
    /// event loop (``LoopThread/sharedSlot``).
    init(_ make: (_ shared: Bool) -> Value) {
        slots = (0..<LoopThread.slots).map { Slot(make($0 == LoopThread.sharedSlot)) }
    }

    /// Runs `body` on the calling loop's value. Never calls ``forEachOther(_:)`` of the same
    /// `PerLoop` from `body` (a try-lock of a mutex its own thread holds aborts on Linux).
    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
        slots[LoopThread.slot].value.withLock(body)
    }

    /// Runs `body` on each value but the calling loop's whose lock is free now (none is waited
    /// for), and returns what it took from them, to be released after their locks: for rare
    /// work on the others' values, such as dropping what an idle loop keeps.
    func forEachOther<Taken: Sendable>(_ body: (inout sending Value) -> sending Taken) -> [Taken] {
        let mine = LoopThread.slot
        var taken: [Taken] = []
        for (index, slot) in slots.enumerated() where index != mine {
            if let value = slot.value.withLockIfAvailable(body) { taken.append(value) }
        }
        return taken
    }
}
