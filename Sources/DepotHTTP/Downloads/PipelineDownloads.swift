import DepotCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// What the fast path may serve, and the answer it gives.
struct PipelineDownloads: Sendable {
    struct Answer {
        enum Body {
            /// HEAD: the headers alone.
            case none
            case bytes(ByteBuffer)
            /// The `range` of a local file of exactly `size` bytes, sent with `sendfile`.
            case file(path: String, size: Int64, range: Range<Int64>)
            /// The `range` of a small object whose bytes are not in memory: its file is read whole
            /// (``SmallFiles``), kept in memory for the next request, and the range sent.
            case smallFile(path: String, object: ObjectRecord, epoch: UInt64, range: Range<Int64>)
        }
        var head: HTTPResponseHead
        var body: Body
        /// The route's `depot_http_requests_total` counter for a 200.
        var requests: LoopCounter
        /// It depends on `Accept` (a transformed image without a format): never kept for others.
        var variesByAccept = false
        /// The first `count` of the head's headers, as the header cache keeps them on the wire
        /// (``ObjectHeaderCache/Fields/wire``), for ``RecentAnswers/wireHead(of:)``; `nil` when
        /// they were changed since.
        var versionFields: (wire: ByteBuffer, count: Int)?
    }

    let service: StorageService
    let metrics: DepotMetrics
    let serverName: String?
    /// The object URLs' CORS origins, as the router's middleware applies them.
    let cors: CORSOrigins
    let dates = DateHeader()
    let objectHeaders = ObjectHeaderCache()
    /// Answers to requests without CORS headers in their answer, and to cross-origin requests
    /// when any origin is allowed (the same answer for all).
    let recentAnswers = RecentAnswers(keepsWireHeads: true)
    let recentCrossOriginAnswers = RecentAnswers(keepsWireHeads: false)
    let signedRequests: LoopCounter
    let publicRequests: LoopCounter
    let renderRequests: LoopCounter
    /// Opens files off the event loop.
    let fileIO = NonBlockingFileIO(threadPool: .singleton)
    /// Reads small files whole, off the event loop.
    let smallFiles = SmallFiles(threadPool: .singleton)

    init(service: StorageService, metrics: DepotMetrics, serverName: String?, cors: CORSOrigins) {
        self.service = service
        self.metrics = metrics
        self.serverName = serverName
        self.cors = cors
        signedRequests = metrics.loopCounter(metrics.requestCounter(route: ObjectURLController.signedRoute, status: 200))
        publicRequests = metrics.loopCounter(metrics.requestCounter(route: ObjectURLController.publicRoute, status: 200))
        renderRequests = metrics.loopCounter(metrics.requestCounter(route: ObjectURLPath.renderSigned + "**", status: 200))
    }

    func answer(_ request: HTTPRequestHead) -> Answer? {
        let isGet = request.method == .GET
        guard isGet || request.method == .HEAD, request.version == .http1_1, request.isKeepAlive else { return nil }
        let fields = request.headers
        // Plain requests, one Range on a GET, one Origin: everything conditional takes the full path.
        guard !fields.contains(name: "if-none-match"), !fields.contains(name: "if-range"),
            !fields.contains(name: "if-modified-since"), !fields.contains(name: "expect")
        else { return nil }
        let origins = fields["origin"]
        guard origins.count <= 1 else { return nil }
        let allowOrigin = origins.first.flatMap(cors.allowOrigin(for:))
        let accepts = fields["accept"]
        guard accepts.count <= 1 else { return nil }
        let accept: String?? = .some(accepts.first)
        let ranges = fields["range"]
        if !ranges.isEmpty {
            guard isGet, ranges.count == 1 else { return nil }
            return build(request.uri, isGet: true, range: ranges[0], allowOrigin: allowOrigin, accept: accept)
        }
        guard isGet else { return build(request.uri, isGet: false, allowOrigin: allowOrigin, accept: accept) }
        let recent = allowOrigin == nil ? recentAnswers : allowOrigin == "*" ? recentCrossOriginAnswers : nil
        guard let recent else { return build(request.uri, isGet: true, allowOrigin: allowOrigin, accept: accept) }
        // Read before anything the answer is built from (see `RecentAnswers`).
        let epoch = service.cacheEpoch
        let second = service.unixNow()
        if let answer = recent.answer(to: request.uri, second: second, epoch: epoch) { return answer }
        guard let answer = build(request.uri, isGet: true, allowOrigin: allowOrigin, accept: accept) else { return nil }
        // Not an answer whose bytes are still to be read (the next one finds them in memory), nor
        // one that another `Accept` would change.
        if case .smallFile = answer.body {
        } else if !answer.variesByAccept {
            recent.keep(answer, for: request.uri, second: second, epoch: epoch)
        }
        return answer
    }

    /// The core's decision from memory (``StorageService/decideDownloadFromMemory``) about a
    /// request target, before any HTTP head is written.
    struct Plan {
        let decision: DownloadDecision
        let found: CachedDownload.Body
        /// The route's `depot_http_requests_total` counter for a 200.
        let requests: LoopCounter
        /// A transformed image whose format depends on `Accept`.
        let variesByAccept: Bool
    }

    /// The answer to the core's decision from memory (``plan(_:range:accept:)``), written as NIO's
    /// response head and the bytes or file — or `nil` whenever the decision is not one this path
    /// writes (not in memory, an attachment, a 416): the router then answers. With `allowOrigin`,
    /// the CORS headers the router's middleware adds.
    private func build(_ target: String, isGet: Bool, range: String? = nil, allowOrigin: String?, accept: String?? = .none) -> Answer? {
        plan(target, range: range, accept: accept).flatMap { build($0, isGet: isGet, allowOrigin: allowOrigin) }
    }

    /// The decision from memory about `target` — or `nil` whenever it is not one this path
    /// writes (not in memory, an attachment). `accept`: the request's `Accept` (`.some(nil)`:
    /// none), or `.none` when it is not known (``frontAnswer(to:)``) — then a transformed image
    /// whose format depends on it is left to the router.
    func plan(_ target: String, range: String? = nil, accept: String?? = .none) -> Plan? {
        guard let (route, rest, query) = Self.route(of: target) else { return nil }
        if route == .render {
            guard let query, let token = Self.token(in: query), !token.isEmpty,
                let (bucket, objectPath) = try? Request.bucketAndPath(rest),
                let (decision, found, varies) = service.decideRenderFromMemory(
                    bucket: bucket, path: objectPath, token: token, accept: accept ?? nil, conditions: DownloadConditions(range: range)),
                !varies || accept != nil, decision.disposition == nil
            else { return nil }
            return Plan(decision: decision, found: found, requests: renderRequests, variesByAccept: varies)
        }
        let access: DownloadAccess
        let requests: LoopCounter
        if route == .signed {
            guard let query, let token = Self.token(in: query), !token.isEmpty else { return nil }
            (access, requests) = (.signed(token: token), signedRequests)
        } else {
            guard query.map({ Self.token(in: $0) == "" }) ?? true else { return nil }
            (access, requests) = (.public, publicRequests)
        }
        guard let (bucket, objectPath) = try? Request.bucketAndPath(rest),
            let (decision, found) = service.decideDownloadFromMemory(
                bucket: bucket, path: objectPath, access: access, conditions: DownloadConditions(range: range)),
            // Attachments carry a disposition the cached headers do not: the router writes them.
            decision.disposition == nil
        else { return nil }
        return Plan(decision: decision, found: found, requests: requests, variesByAccept: false)
    }

    /// The routes this path answers.
    enum Route: CaseIterable {
        case render, signed, `public`
        var prefix: String {
            switch self {
            case .render: ObjectURLPath.renderSigned
            case .signed: ObjectURLPath.signed
            case .public: ObjectURLPath.public
            }
        }
    }

    private static let prefixes = Route.allCases.map { (route: $0, bytes: Array($0.prefix.utf8)) }

    /// The route of `target`, what follows its prefix up to the query (`{bucket}/{path}`), and the
    /// query — located as bytes (a prefix is compared byte for byte, and dropped by its length in
    /// bytes, not in characters).
    static func route(of target: String) -> (Route, Substring, Substring?)? {
        var bytes = target
        guard
            let (route, queryAt) = bytes.withUTF8({ t -> (Route, Int?)? in
                let queryAt = t.firstIndex(of: UInt8(ascii: "?"))
                let path = UnsafeBufferPointer(rebasing: t[..<(queryAt ?? t.count)])
                guard let (route, _) = Self.prefixes.first(where: { path.starts(with: $0.bytes) }) else { return nil }
                return (route, queryAt)
            })
        else { return nil }
        let utf8 = target.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: route.prefix.utf8.count)
        guard let queryAt else { return (route, Substring(utf8[start...]), nil) }
        let mark = utf8.index(utf8.startIndex, offsetBy: queryAt)
        return (route, Substring(utf8[start..<mark]), Substring(utf8[utf8.index(after: mark)...]))
    }

    /// The answer to a plan, with its bytes or file.
    func build(_ plan: Plan, isGet: Bool, allowOrigin: String?) -> Answer? {
        var answer = build(plan.decision, plan.found, isGet: isGet, allowOrigin: allowOrigin, requests: plan.requests)
        if plan.variesByAccept {
            answer?.head.headers.add(name: "Vary", value: "Accept")
            answer?.variesByAccept = true
        }
        return answer
    }

    /// The answer to a decision made from memory, with its bytes or file.
    private func build(
        _ decision: DownloadDecision, _ found: CachedDownload.Body, isGet: Bool, allowOrigin: String?, requests: LoopCounter
    ) -> Answer? {
        guard decision.disposition == nil else { return nil }
        let object = decision.object
        var body: Answer.Body
        let size: Int
        switch found {
        case .bytes(let bytes):
            size = bytes.readableBytes
            body = isGet ? .bytes(bytes) : .none
        case .file(let path):
            size = Int(object.size)
            body = isGet ? .file(path: path, size: object.size, range: 0..<object.size) : .none
        case .smallFile(let path, let epoch):
            size = Int(object.size)
            body = isGet ? .smallFile(path: path, object: object, epoch: epoch, range: 0..<object.size) : .none
        }
        guard size == object.size else { return nil }
        let fields = objectHeaders.headers(for: object, size: size)
        var headers = fields.headers
        var versionFields: (wire: ByteBuffer, count: Int)? = nil
        var status = HTTPResponseStatus.ok
        switch decision.outcome {
        case .whole: versionFields = (fields.wire, headers.count)
        case .partial(let part):
            status = .partialContent
            headers.replaceOrAdd(name: "Content-Length", value: String(part.count))
            headers.add(name: "Content-Range", value: decision.contentRange!)
            body = Self.slice(body, part)
        case .notModified, .unsatisfiable:
            return nil
        }
        if let allowOrigin {
            for (name, value) in CORSOrigins.answerHeaders(allowOrigin) { headers.add(name: name.rawName, value: value) }
        }
        headers.add(name: "Cache-Control", value: decision.cacheControl)
        headers.add(name: "Date", value: dates.current())
        if let serverName { headers.add(name: "Server", value: serverName) }
        return Answer(
            head: HTTPResponseHead(version: .http1_1, status: status, headers: headers), body: body, requests: requests,
            versionFields: versionFields)
    }

    private static func slice(_ body: Answer.Body, _ part: Range<Int64>) -> Answer.Body {
        switch body {
        case .none: return .none
        case .bytes(let bytes):
            return .bytes(bytes.getSlice(at: bytes.readerIndex + Int(part.lowerBound), length: part.count)!)
        case .file(let path, let size, _): return .file(path: path, size: size, range: part)
        case .smallFile(let path, let object, let epoch, _): return .smallFile(path: path, object: object, epoch: epoch, range: part)
        }
    }

    /// Counts an answer as it is sent.
    func record(_ answer: Answer) {
        answer.requests.increment()
        switch answer.body {
        case .none: metrics.recordMemoryDownload()
        case .bytes(let bytes):
            metrics.recordMemoryDownload()
            metrics.recordBytesOut(bytes.readableBytes)
        case .file(_, _, let range):
            metrics.recordFileDownload()
            metrics.recordBytesOut(range.count)
        case .smallFile(_, _, _, let range):
            metrics.recordSmallFileDownload()
            metrics.recordBytesOut(range.count)
        }
    }

    /// The `token` of a query holding nothing the full path would act on (no `download`), written
    /// without escapes. `""` when there is no token; `nil` when the query is not that simple.
    static func token(in query: Substring) -> String? {
        var query = query
        return query.withUTF8 { bytes -> String? in
            var token: Slice<UnsafeBufferPointer<UInt8>>? = nil
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
                let item = bytes[start..<end]
                start = end + 1
                if item.starts(with: "token=".utf8) {
                    let value = item.dropFirst(6)
                    guard token == nil, !value.isEmpty,
                        !value.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") })
                    else { return nil }
                    token = value
                } else if item.starts(with: "download".utf8) {
                    return nil
                }
            }
            return token.map { String(decoding: UnsafeBufferPointer(rebasing: $0), as: UTF8.self) } ?? ""
        }
    }
}
