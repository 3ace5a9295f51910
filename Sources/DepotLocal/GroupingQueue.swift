import Synchronization

/// Items that arrive while a group is being processed wait and are processed together, as the
/// next group; an item that arrives when nothing is in flight is processed at once, alone. The
/// mechanism under SQLite's group commit (``GroupCommit``) and the blob files' sync groups
/// (``BlobSyncGroup``). One group is processed at a time, in arrival order.
final class GroupingQueue<Item: Sendable, Output: Sendable>: Sendable {
    /// Processes a group; returns one result per item, in order.
    typealias Process = @Sendable ([Item]) async -> [Result<Output, any Error>]

    private struct Waiter {
        let item: Item
        let continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var queue: [Waiter] = []
        var draining = false
    }

    private let state = Mutex(State())
    /// The most items one group holds.
    let maxGroup: Int
    private let process: Process

    init(maxGroup: Int, process: @escaping Process) {
        self.maxGroup = maxGroup
        self.process = process
    }

    /// Queues `item` and returns its result once its group has been processed.
    func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { s -> Bool in
                s.queue.append(Waiter(item: item, continuation: continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Processes groups until the queue is empty.
    private func drain() async {
        while true {
            let group: [Waiter] = state.withLock { s in
                if s.queue.isEmpty {
                    s.draining = false
                    return []
                }
                let n = min(s.queue.count, maxGroup)
                let group = Array(s.queue.prefix(n))
                s.queue.removeFirst(n)
                return group
            }
            if group.isEmpty { return }
            let results = await process(group.map(\.item))
            for (waiter, result) in zip(group, results) { waiter.continuation.resume(with: result) }
        }
    }
}
