import DepotCore
import Foundation
import NIOCore
import NIOHTTP1
import Prometheus

/// For tests only (`@_spi(Testing) import DepotHTTP`), not an API: the front's answer to a plain
/// GET, whose head it writes itself (``PipelineDownloads/frontAnswer(to:)``), beside the decoded
/// path's answer to the same request, whose head NIO's encoder writes — so that a test can show
/// they are the same bytes.
@_spi(Testing)
public struct FrontProbe: Sendable {
    /// What the front does with a plain GET.
    public enum Front: Equatable, Sendable {
        /// Writes this head and body itself; `repeated`: the current second's kept answer.
        case written(head: [UInt8], body: [UInt8], repeated: Bool, fromFile: Bool)
        /// Passes the request on to the decoder and the pipeline's handler.
        case handedOver
    }

    private let downloads: PipelineDownloads

    public init(service: StorageService, serverName: String?) {
        downloads = PipelineDownloads(service: service, metrics: DepotMetrics(), serverName: serverName, cors: CORSOrigins([]))
    }

    /// The front's answer to a plain GET of `target` (a request target: path and query).
    public func front(_ target: String) -> Front {
        guard case .wire(let wire, let repeated) = downloads.frontAnswer(to: target) else { return .handedOver }
        return .written(
            head: Array(wire.head.readableBytesView), body: Array(wire.body.readableBytesView), repeated: repeated, fromFile: wire.fromFile)
    }

    /// The head of the decoded path's answer to a plain keep-alive GET of `target`, as it hands it
    /// to NIO's encoder; `nil` when the router answers.
    public func decodedHead(_ target: String) -> HTTPResponseHead? {
        downloads.answer(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: ["Host": "x"]))?.head
    }
}

@_spi(Testing)
extension FrontProbe.Front: CustomStringConvertible {
    /// The head as text and the body's length (what a failed expectation shows).
    public var description: String {
        switch self {
        case .handedOver: "handedOver"
        case .written(let head, let body, let repeated, let fromFile):
            "written(\(String(decoding: head, as: UTF8.self).debugDescription), \(body.count) bytes, repeated: \(repeated), fromFile: \(fromFile))"
        }
    }
}

/// For tests only (`@_spi(Testing) import DepotHTTP`), not an API: a ``RecentAnswers`` of its
/// own, its answers told apart by their bodies (`tag`).
@_spi(Testing)
public struct RecentAnswersProbe: Sendable {
    private let answers = RecentAnswers(keepsWireHeads: true)
    private let requests = LoopCounter(PrometheusCollectorRegistry().makeCounter(descriptor: .depot("probe_requests_total", help: "")))

    public init() {}

    /// Keeps an answer as ``RecentAnswerFront`` keeps one it wrote itself — after two asks for
    /// `target` that found nothing unless `asked` is false (an answer is kept on its second ask).
    public func keepFront(_ tag: String, for target: String, second: Int64, epoch: UInt64, asked: Bool = true) {
        if asked { askTwice(target, second: second, epoch: epoch) }
        let wire = RecentAnswers.Wire(
            head: ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n"), body: ByteBuffer(string: tag), requests: requests, fromFile: false)
        answers.keep(wire, for: RecentAnswers.Key(target), second: second, epoch: epoch)
    }

    /// Keeps an answer as the decoded path keeps one (after two asks, as ``keepFront``).
    public func keepDecoded(_ tag: String, for target: String, second: Int64, epoch: UInt64, asked: Bool = true) {
        if asked { askTwice(target, second: second, epoch: epoch) }
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": String(tag.utf8.count)])
        answers.keep(
            PipelineDownloads.Answer(head: head, body: .bytes(ByteBuffer(string: tag)), requests: requests), for: target, second: second, epoch: epoch
        )
    }

    private func askTwice(_ target: String, second: Int64, epoch: UInt64) {
        for _ in 0..<2 { _ = answers.kept(for: RecentAnswers.Key(target), second: second, epoch: epoch) }
    }

    /// The tag of the answer kept for `target` in `second` under `epoch` (an ask: noted when
    /// nothing is kept).
    public func kept(for target: String, second: Int64, epoch: UInt64) -> String? {
        answers.kept(for: RecentAnswers.Key(target), second: second, epoch: epoch)?.wire.map { String(buffer: $0.body) }
    }

    /// The calling thread's slot (``LoopThread/slot``): threads of one slot share their answers.
    public static var slot: Int { LoopThread.slot }
    /// The slots of event loops are those below this one, the slot all other threads share.
    public static var sharedSlot: Int { LoopThread.sharedSlot }
}

/// For tests only (`@_spi(Testing) import DepotHTTP`), not an API: a ``LoopCounter`` of a
/// ``DepotMetrics`` of its own, named `probe_total`.
@_spi(Testing)
public struct LoopCounterProbe: Sendable {
    private let metrics = DepotMetrics()
    private let counter: LoopCounter

    public init() {
        counter = metrics.loopCounter(metrics.registry.makeCounter(descriptor: .depot("probe_total", help: "A probe.")))
    }

    /// Adds `amount` on the calling thread's slot.
    public func increment(by amount: Int64) { counter.increment(by: amount) }

    /// The counter's value as ``DepotMetrics/render()`` shows it.
    public func rendered() -> Int64? {
        metrics.render().split(separator: "\n").first { $0.hasPrefix("probe_total ") }.flatMap { Int64($0.split(separator: " ")[1]) }
    }
}
