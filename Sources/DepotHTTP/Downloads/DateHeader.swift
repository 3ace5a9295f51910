import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The `Date` header's value, formatted once per second on each event loop (``PerLoop``: no
/// lock or cache line shared by the loops).
final class DateHeader: Sendable {
    private let cached = PerLoop<(second: Int64, value: String)> { _ in (-1, "") }

    func current() -> String {
        let now = Date()
        let second = Int64(now.timeIntervalSince1970)
        return cached.withLock { c in
            if c.second != second { c = (second, HTTPDate.format(now)) }
            return c.value
        }
    }
}
