import NIOPosix
import Synchronization

/// A small number for each thread that asks, in the order they first ask (0, 1, 2, …): an event
/// loop's index into values kept per loop (``PerLoop``, ``LoopCounter``), with no lookup by thread
/// or loop identity.
enum LoopThread {
    private final class Index: Sendable {
        let value: Int
        init(_ value: Int) { self.value = value }
    }
    private static let perThread = ThreadSpecificVariable<Index>()
    private static let next = Atomic<Int>(0)

    /// Slots kept per loop (a power of two): one per event loop on machines of up to as many
    /// cores; more threads share them (still correct, each slot is locked or atomic).
    static let slots = 8

    /// The calling thread's number.
    static var index: Int {
        if let index = perThread.currentValue { return index.value }
        let index = Index(next.add(1, ordering: .relaxed).oldValue)
        perThread.currentValue = index
        return index.value
    }

    /// The calling thread's slot, below ``slots``.
    static var slot: Int { index & (slots - 1) }
}

/// A value kept per event loop: each loop reads and writes its own, under a lock no other loop
/// takes (bar threads that share a slot), in memory no other loop writes. What every request
/// touches (the `Date` header's text, the current second's answers) is kept this way, so that
/// two loops never wait for each other, nor pass a cache line back and forth, for it.
final class PerLoop<Value: Sendable>: Sendable {
    private let slots: [Slot]

    private final class Slot: Sendable {
        let value: Mutex<Value>
        /// Keeps two loops' values out of one cache line (each slot is its own allocation).
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        init(_ value: Value) { self.value = Mutex(value) }
    }

    init(_ make: () -> Value) {
        slots = (0..<LoopThread.slots).map { _ in Slot(make()) }
    }

    /// Runs `body` on the calling loop's value.
    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
        slots[LoopThread.slot].value.withLock(body)
    }
}
