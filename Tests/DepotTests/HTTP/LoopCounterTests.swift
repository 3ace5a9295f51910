import Foundation
import Testing

@_spi(Testing) import DepotHTTP

/// Counters the event loops add to apart (one slot each, more threads than slots sharing them):
/// every increment reaches the rendered metric, once, however the renders and increments interleave.
@Suite struct LoopCounterTests {
    @Test func everyThreadsCountsReachTheMetricOnce() async throws {
        let probe = LoopCounterProbe()
        #expect(probe.rendered() == 0)
        // More threads than slots (8): some share one.
        let threads = 24
        let perThread = 5_000
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<threads {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread.detachNewThread {
                            for i in 0..<perThread {
                                probe.increment(by: 1)
                                // Renders while others count: nothing counted twice or lost.
                                if i % 1_000 == 0 { _ = probe.rendered() }
                            }
                            done.resume()
                        }
                    }
                }
            }
        }
        #expect(probe.rendered() == Int64(threads * perThread))
        #expect(probe.rendered() == Int64(threads * perThread))
        probe.increment(by: 7)
        #expect(probe.rendered() == Int64(threads * perThread) + 7)
    }
}
