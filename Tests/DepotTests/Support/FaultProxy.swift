import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A loopback HTTP proxy in front of the real S3 test server that answers chosen requests with a
/// failure of its own instead of forwarding them: to prove retries, backoff and error translation
/// against real S3 traffic. The Host header is forwarded as sent, so signatures still verify.
final class FaultProxy: Sendable {
    struct Fault: Sendable {
        var status: HTTPResponse.Status
        var code: String
        /// How many requests get the fault (then requests pass again); nil = all of them.
        var count: Int?
        /// Only requests with this method, or any.
        var method: HTTPRequest.Method?
    }

    private let state = Mutex<(fault: Fault?, seen: Int, failed: Int)>((nil, 0, 0))
    let target: String

    init(target: String) { self.target = target }

    func inject(_ fault: Fault?) { state.withLock { $0 = (fault, 0, 0) } }
    /// Requests seen and requests failed since the last `inject`.
    var counts: (seen: Int, failed: Int) { state.withLock { ($0.seen, $0.failed) } }

    private func shouldFail(_ method: HTTPRequest.Method) -> Fault? {
        state.withLock { s in
            s.seen += 1
            guard let f = s.fault, f.method == nil || f.method == method, f.count.map({ s.failed < $0 }) ?? true else { return nil }
            s.failed += 1
            return f
        }
    }

    /// Runs `body` with the proxy listening; it gets the proxy's endpoint (`http://127.0.0.1:port`).
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.addMiddleware { Forward(proxy: self) }
        let logger = TestLogging.logger("fault-proxy", level: .error)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port!)")
        }
    }

    struct Forward: RouterMiddleware {
        typealias Context = BasicRequestContext
        let proxy: FaultProxy

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            if let fault = proxy.shouldFail(request.method) {
                let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(fault.code)</Code><Message>injected</Message></Error>"
                return Response(
                    status: fault.status, headers: [.contentType: "application/xml"],
                    body: .init(byteBuffer: ByteBuffer(string: request.method == .head ? "" : xml)))
            }
            var out = HTTPClientRequest(url: proxy.target + (request.head.path ?? "/"))
            out.method = HTTPMethod(rawValue: request.method.rawValue)
            // HTTP/1 Host arrives as the authority; it is signed, so it goes on unchanged.
            if let authority = request.head.authority { out.headers.add(name: "host", value: authority) }
            for field in request.headers where !["connection", "transfer-encoding"].contains(field.name.canonicalName) {
                out.headers.add(name: field.name.rawName, value: field.value)
            }
            let body = try await request.body.collect(upTo: 64 * 1024 * 1024)
            out.body = .bytes(body)
            let answer = try await FaultProxy.client.execute(out, timeout: .seconds(60))
            var headers = HTTPFields()
            for (name, value) in answer.headers where !["connection", "transfer-encoding"].contains(name.lowercased()) {
                if let n = HTTPField.Name(name) { headers.append(HTTPField(name: n, value: value)) }
            }
            let bytes = try await answer.body.collect(upTo: 64 * 1024 * 1024)
            return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: bytes))
        }
    }

    static let client = HTTPClient(eventLoopGroupProvider: .singleton)
}
