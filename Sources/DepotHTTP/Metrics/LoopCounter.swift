import Prometheus
import Synchronization

/// A Prometheus counter incremented per event loop: each loop adds to its own count (a relaxed
/// atomic in memory no other loop writes) and the counter is brought up to date when the metrics
/// are read (``DepotMetrics/render()``), not by every request — a shared counter's cache line
/// went from one core to the other on each download.
final class LoopCounter: Sendable {
    let counter: Counter
    private let slots: [Slot]
    /// The total already added to `counter`.
    private let published = Mutex<Int64>(0)

    private final class Slot: Sendable {
        let count = Atomic<Int64>(0)
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    init(_ counter: Counter) {
        self.counter = counter
        slots = (0..<LoopThread.slots).map { _ in Slot() }
    }

    func increment(by amount: Int64 = 1) {
        precondition(amount >= 0, "a counter only goes up")
        slots[LoopThread.slot].count.add(amount, ordering: .relaxed)
    }

    /// Adds to the counter what the loops counted since the last call.
    func publish() {
        published.withLock { published in
            var total: Int64 = 0
            for slot in slots { total &+= slot.count.load(ordering: .relaxed) }
            if total != published { counter.increment(by: total &- published) }
            published = total
        }
    }
}

/// The ``LoopCounter``s of one ``DepotMetrics``.
final class LoopCounters: Sendable {
    private let counters = Mutex<[LoopCounter]>([])

    func add(_ counter: Counter) -> LoopCounter {
        let loopCounter = LoopCounter(counter)
        counters.withLock { $0.append(loopCounter) }
        return loopCounter
    }

    func publish() {
        for counter in counters.withLock({ $0 }) { counter.publish() }
    }
}
