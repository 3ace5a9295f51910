import DepotCore
import Synchronization

/// An image renderer that counts its renders (and may take longer, so that concurrent requests
/// meet in flight), in front of a real one.
final class CountingRenderer: ImageRenderer {
    let base: any ImageRenderer
    let delay: Duration?
    private let renders = Atomic<Int>(0)

    init(_ base: any ImageRenderer, delay: Duration? = nil) {
        self.base = base
        self.delay = delay
    }

    var isAvailable: Bool { base.isAvailable }
    var count: Int { renders.load(ordering: .relaxed) }

    func render(_ source: [UInt8], _ request: ImageRequest) async throws -> [UInt8] {
        renders.add(1, ordering: .relaxed)
        if let delay { try await Task.sleep(for: delay) }
        return try await base.render(source, request)
    }
}
