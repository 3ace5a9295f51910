import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Synchronization

/// Requests whose body is streamed with chunked transfer encoding (no Content-Length), sent with
/// async-http-client to a live server.
enum Streaming {
    struct Reply {
        var status: Int
        var body: [UInt8]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    /// Sends `chunks` one by one (optionally pausing between them) without a Content-Length.
    static func send(
        _ method: HTTPMethod, port: Int, _ uri: String, headers: [(String, String)] = [], chunks: [[UInt8]],
        pause: Duration = .zero, knownLength: Bool = false
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(uri)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        let stream = AsyncStream<ByteBuffer> { continuation in
            Task {
                for c in chunks {
                    continuation.yield(ByteBuffer(bytes: c))
                    if pause > .zero { try? await Task.sleep(for: pause) }
                }
                continuation.finish()
            }
        }
        let total = chunks.reduce(0) { $0 + $1.count }
        request.body = .stream(stream, length: knownLength ? .known(Int64(total)) : .unknown)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return Reply(status: Int(response.status.code), body: Array(body.readableBytesView))
    }
}

/// A clock tests can move forward.
final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    func advance(_ seconds: TimeInterval) { offset.withLock { $0 += seconds } }
    var now: @Sendable () -> Date { { [self] in Date().addingTimeInterval(offset.withLock { $0 }) } }
}
