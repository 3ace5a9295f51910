import DepotCore
import NIOCore
import Prometheus

// MARK: - Answers written by `RecentAnswerFront`

extension PipelineDownloads {
    /// What ``RecentAnswerFront`` does with a plain GET of `target` (an HTTP/1.1 keep-alive GET
    /// without Range, Origin, conditions or Expect).
    enum FrontAnswer {
        /// Sends this answer's head and body as they are.
        case wire(RecentAnswers.Wire, repeated: Bool)
        /// Passes the head on, with what ``PipelineDownloadHandler`` answers it with: this answer
        /// (a file to open or read first), or `nil`, the router.
        case handOver(Answer?)
    }

    /// The front's answer to a plain GET of `target`: the current second's answer when there is
    /// one, else one written now from the decision (``plan(_:range:accept:)``) straight into its
    /// wire bytes, and kept for the rest of the second — a small object's read from its file
    /// when the page cache holds it (``SmallFiles``), so that it is never decoded either. No
    /// response head of NIO's types is built for what is written here.
    func frontAnswer(to target: String) -> FrontAnswer {
        // Read before anything the answer is built from (see `RecentAnswers`).
        let epoch = service.cacheEpoch
        return frontAnswer(to: target, second: service.unixNow(), epoch: epoch)
    }

    /// ``frontAnswer(to:)`` in `second` with the caches' `epoch`, read by the caller before
    /// anything else.
    func frontAnswer(to target: String, second: Int64, epoch: UInt64) -> FrontAnswer {
        let key = RecentAnswers.Key(target)
        if let kept = recentAnswers.kept(for: key, second: second, epoch: epoch) {
            if let wire = kept.wire { return .wire(wire, repeated: true) }
            return .handOver(kept.answer)
        }
        guard let plan = plan(target), case .whole = plan.decision.outcome, !plan.variesByAccept else { return .handOver(nil) }
        let object = plan.decision.object
        switch plan.found {
        case .bytes(let bytes):
            guard bytes.readableBytes == object.size else { return .handOver(nil) }
            let wire = RecentAnswers.Wire(head: frontHead(plan), body: bytes, requests: plan.requests, fromFile: false)
            recentAnswers.keep(wire, for: key, second: second, epoch: epoch)
            return .wire(wire, repeated: false)
        case .smallFile(let path, let blobEpoch):
            // Not kept: the next request finds the bytes in memory.
            guard case .bytes(let bytes) = SmallFiles.readIfCached(path, expecting: Int(object.size)) else {
                return .handOver(build(plan, isGet: true, allowOrigin: nil))
            }
            service.keepInMemory(bytes, of: object, epoch: blobEpoch)
            return .wire(RecentAnswers.Wire(head: frontHead(plan), body: bytes, requests: plan.requests, fromFile: true), repeated: false)
        case .file:
            guard let answer = build(plan, isGet: true, allowOrigin: nil) else { return .handOver(nil) }
            recentAnswers.keep(answer, for: key, second: second, epoch: epoch)
            return .handOver(answer)
        }
    }

    /// The head of a whole object's answer to a plain GET, written as NIO's encoder writes the
    /// head ``build(_:isGet:allowOrigin:)`` gives it — the version's headers as the header cache
    /// keeps them on the wire, then `Cache-Control`, `Date` and `Server` — without building it.
    private func frontHead(_ plan: Plan) -> ByteBuffer {
        let version = objectHeaders.wire(for: plan.decision.object, size: Int(plan.decision.object.size))
        let date = dates.current()
        var out = ByteBuffer()
        out.reserveCapacity(96 + version.readableBytes + plan.decision.cacheControl.utf8.count + (serverName?.utf8.count ?? 0))
        out.writeStaticString("HTTP/1.1 200 OK\r\n")
        out.writeImmutableBuffer(version)
        out.writeStaticString("Cache-Control: ")
        out.writeString(plan.decision.cacheControl)
        out.writeStaticString("\r\nDate: ")
        out.writeString(date)
        if let serverName {
            out.writeStaticString("\r\nServer: ")
            out.writeString(serverName)
        }
        out.writeStaticString("\r\n\r\n")
        return out
    }

    /// Counts an answer sent by ``RecentAnswerFront``.
    func recordFront(_ wire: RecentAnswers.Wire, repeated: Bool) {
        if repeated { metrics.recordRepeatedDownload() }
        wire.requests.increment()
        if wire.fromFile { metrics.recordSmallFileDownload() } else { metrics.recordMemoryDownload() }
        metrics.recordBytesOut(wire.body.readableBytes)
    }
}
