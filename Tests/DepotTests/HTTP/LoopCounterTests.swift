import Foundation
import NIOCore
import NIOPosix
import Testing

@_spi(Testing) import DepotHTTP

/// Counters the event loops add to apart (one slot each, more loops than slots sharing them,
/// other threads one more): every increment reaches the rendered metric, once, however the
/// renders and increments interleave.
@Suite struct LoopCounterTests {
    @Test func everyThreadsCountsReachTheMetricOnce() async throws {
        let probe = LoopCounterProbe()
        #expect(probe.rendered() == 0)
        // More loops than slots (at most 64), and as many threads that are no loop.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 72)
        let threads = 144
        let perThread = 2_000
        let count: @Sendable () -> Void = {
            for i in 0..<perThread {
                probe.increment(by: 1)
                // Renders while others count: nothing counted twice or lost.
                if i % 500 == 0 { _ = probe.rendered() }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for loop in loops.makeIterator() { group.addTask { try await loop.submit(count).get() } }
            for _ in 0..<threads - 72 {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread.detachNewThread {
                            count()
                            done.resume()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await loops.shutdownGracefully()
        #expect(probe.rendered() == Int64(threads * perThread))
        #expect(probe.rendered() == Int64(threads * perThread))
        probe.increment(by: 7)
        #expect(probe.rendered() == Int64(threads * perThread) + 7)
    }
}
