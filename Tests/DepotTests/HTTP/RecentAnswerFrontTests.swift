import DepotCore
import DepotHTTP
import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A hot URL's repeated plain GETs are answered from the raw request bytes, before NIO's decoder
/// (`RecentAnswerFront`): the same bytes as the pipeline's answer, in order with every other
/// answer on the connection, with heads that arrive in pieces, with backpressure, and every head
/// the scanner does not frame answered exactly as a server without it answers.
@Suite("Repeated GETs answered before decoding")
struct RecentAnswerFrontTests {
    static func counter(_ env: TestEnvironment, _ name: String) -> Int {
        let line = env.metrics.render().split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
    }
    static func repeated(_ env: TestEnvironment) -> Int { counter(env, "depot_downloads_repeated_total") }

    /// One event loop for every connection of these tests: each loop keeps its own current
    /// second's answers (`RecentAnswers`), and the counts below are those of one table — a URL
    /// made hot on the test client's connection is found by a raw socket's.
    static let oneLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// A server whose clock stands still, so that the current second's answers stay current.
    static func frozenEnv(_ limits: (inout ConnectionLimits) -> Void = { _ in }) async throws -> TestEnvironment {
        let now = Date()
        var env = try await TestEnvironment.make(clock: { now })
        limits(&env.http.connections)
        env.eventLoops = oneLoop
        return env
    }

    /// Uploads `png` as alice; its signed URL (path and query), asked twice so that its answer is
    /// one of the current second's.
    static func hotURL(_ env: TestEnvironment, _ client: LiveClient, _ png: [UInt8]) async throws -> String {
        let up = try await client.upload(png, headers: try await env.auth("alice"))
        let url = TestEnvironment.local(up.json["url"] as! String)
        #expect(try await client.request(.get, url).status == .ok)
        #expect(try await client.request(.get, url).status == .ok)
        return url
    }

    /// The responses in `bytes`, each cut at its Content-Length (no HEAD answers among them).
    static func responses(_ bytes: [UInt8]) -> [(status: Int, head: String, body: [UInt8])] {
        var out: [(Int, String, [UInt8])] = []
        var rest = bytes[...]
        let blank: [UInt8] = Array("\r\n\r\n".utf8)
        while !rest.isEmpty, let end = rest.firstRange(of: blank) {
            let head = String(decoding: rest[..<end.lowerBound], as: UTF8.self)
            let status = Int(head.dropFirst(9).prefix(3)) ?? -1
            let length =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyEnd = min(rest.endIndex, end.upperBound + length)
            out.append((status, head, Array(rest[end.upperBound..<bodyEnd])))
            rest = rest[bodyEnd...]
        }
        return out
    }

    @Test func repeatedGETsAreAnsweredWithThePipelinesBytes() async throws {
        let env = try await Self.frozenEnv()
        try await env.live { client in
            let png = Fixture.png(3000)
            let url = try await Self.hotURL(env, client, png)
            #expect(Self.repeated(env) == 0)
            let plain = "GET \(url) HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
            // Three plain GETs, then one that asks to close: the pipeline answers that one.
            let wire = try await RawSocket.exchange(
                port: client.port, plain + plain + plain + "GET \(url) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let replies = Self.responses(wire)
            #expect(replies.map(\.status) == [200, 200, 200, 200])
            #expect(replies.allSatisfy { $0.body == png })
            #expect(Self.repeated(env) == 3)
            // Byte for byte the same answer each time (the same second, the same Date).
            #expect(replies[0].head == replies[1].head && replies[1].head == replies[2].head)
            // And the router's answer (to the request that asked to close), but for the Date.
            #expect(
                Set(Self.lines(replies[0].head).filter { !$0.hasPrefix("date:") })
                    == Set(Self.lines(replies[3].head).filter { !$0.hasPrefix("date:") }))
            #expect(env.metrics.render().contains(#"depot_http_requests_total{route="/storage/v1/object/sign/**",status="200"} 6"#))
            // The front's head (the header cache's wire bytes) is NIO's encoding of the same
            // headers (a HEAD, answered behind the decoder), in the same order, but for the Date.
            let headOnly = try await RawSocket.exchange(
                port: client.port, "HEAD \(url) HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            let encoded = String(decoding: headOnly, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
            let undated = { (head: String) in head.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date:") } }
            #expect(undated(replies[0].head) == undated(encoded))
            #expect(undated(encoded).count > 8)
        }
    }

    /// A hot URL answered again on the same event loop skips the shared table (`HotAnswer`), by
    /// the same rule: another URL never gets its answer, a revoke ends it at
    /// once, and so does the next second.
    @Test func anEventLoopsHotAnswerEndsWithAWriteAndItsSecond() async throws {
        // A clock that stands still until moved.
        let start = Date()
        let offset = Mutex<TimeInterval>(0)
        var oneLoopEnv = try await TestEnvironment.make(clock: { start.addingTimeInterval(offset.withLock { $0 }) })
        oneLoopEnv.eventLoops = Self.oneLoop
        let env = oneLoopEnv
        try await env.live { client in
            let alice = try await env.auth("alice")
            let pngs = [Fixture.png(3000), Fixture.png(3000)]
            var urls: [String] = []
            var paths: [String] = []
            for png in pngs {
                let up = try await client.upload(png, headers: alice)
                urls.append(TestEnvironment.local(up.json["url"] as! String))
                paths.append(up.json["path"] as! String)
            }
            // Both kept in this second (after the last write: an upload changes the epoch).
            for url in urls { for _ in 0..<2 { #expect(try await client.request(.get, url).status == .ok) } }
            // Every step on one connection, so on one event loop: its hot answer is the one used.
            let port = client.port
            let fd = try SlowWire.connect(port)
            defer { close(fd) }
            let get = { @Sendable (url: String) async throws -> SlowWire.Reply? in
                try await RawSocket.blocking { () -> SlowWire.Reply? in
                    guard SlowWire.send(fd, "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n") else { return nil }
                    return SlowWire.response(fd, within: .seconds(5))
                }
            }
            // The table's answer, then the loop's own (url 0), then another URL's, then url 0's again.
            for n in [0, 0, 0, 1, 1, 0, 1] {
                let reply = try await get(urls[n])
                #expect(reply?.status == 200 && reply?.body == pngs[n])
            }
            #expect(Self.repeated(env) == 7)

            // Revoked: the loop's hot answer was this URL's; the next plain GET is refused.
            _ = try await client.json(.post, "/v1/assets/revoke", headers: alice, ["paths": [paths[1]]])
            let revoked = try await get(urls[1])
            #expect(revoked?.status == 403 || revoked?.status == 404, "\(String(describing: revoked?.status))")
            #expect(revoked?.body != pngs[1])

            // url 0 made the loop's again (asked twice from the table: the revoke changed the epoch).
            for _ in 0..<3 { #expect(try await get(urls[0])?.body == pngs[0]) }
            let before = Self.repeated(env)
            // The next second: worked out again, not repeated.
            offset.withLock { $0 += 1 }
            let next = try await get(urls[0])
            #expect(next?.status == 200 && next?.body == pngs[0])
            #expect(Self.repeated(env) == before)
        }
    }

    /// A head that arrives a few bytes at a time, or cut inside its blank line, is answered once.
    @Test func headsArrivingInPiecesAreAnsweredOnce() async throws {
        let env = try await Self.frozenEnv()
        try await env.live { client in
            let png = Fixture.png(1200)
            let url = try await Self.hotURL(env, client, png)
            let head = Array("GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let port = client.port
            let wire = try await RawSocket.blocking { () throws -> [UInt8] in
                let fd = try RawSocket.connect(port: port, timeout: 10)
                defer { close(fd) }
                for cut in [1, 7, head.count - 3, head.count - 1] {
                    _ = SlowWire.send(fd, Array(head[..<cut]))
                    usleep(20_000)
                    _ = SlowWire.send(fd, Array(head[cut...]))
                    usleep(20_000)
                }
                _ = SlowWire.send(fd, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
                return RawSocket.receiveAll(fd)
            }
            let replies = Self.responses(wire)
            #expect(replies.map(\.status) == [200, 200, 200, 200, 200])
            #expect(replies.prefix(4).allSatisfy { $0.body == png })
            #expect(Self.repeated(env) == 4)
        }
    }

    /// Requests the scanner does not frame, or frames but does not answer, alone and between two
    /// hot GETs on one connection: the same statuses as from a server without the pipeline's
    /// answers — and so without this handler — given the same requests after the first hot one.
    @Test func everyOtherHeadIsAnsweredAsWithoutTheFront() async throws {
        let env = try await Self.frozenEnv()
        try await env.live { client in
            let png = Fixture.png(1000)
            let url = try await Self.hotURL(env, client, png)
            let hot = "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n"
            let close = "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"
            let others = [
                "GET \(url) HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                "GET \(url) HTTP/1.1\nHost: x\n\n",
                "GET \(url) HTTP/1.1\r\nHost : x\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nX-A: a\u{1}b\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
                "GET \(url) HTTP/1.1\r\n: empty\r\n\r\n",
                "GET \(url) HTTP/2.0\r\nHost: x\r\n\r\n",
                "GET \(url) HTTP/1.1 \r\nHost: x\r\n\r\n",
                "get \(url) HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET  \(url) HTTP/1.1\r\nHost: x\r\n\r\n",
                "\r\nGET \(url) HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nIF-NONE-MATCH: *\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nOrigin: https://example.com\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
                "GET \(url)&download=a.png HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET \(url) HTTP/1.0\r\nHost: x\r\n\r\n",
                "HEAD \(url) HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                "DELETE \(url) HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n",
                "GET \(url) HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 1500) + "\r\n",
            ]
            var routerOnly = env
            routerOnly.http.pipelineDownloads = false
            try await routerOnly.application.test(.live) { test in
                let port = try #require(test.port)
                for other in others {
                    // Behind an answer from the front, the connection is as a new one.
                    let pairs = [(hot + other + hot + close, other + hot + close, [200]), (other + close, other + close, [])]
                    for (stream, routerStream, ahead) in pairs {
                        let front = try await RawSocket.exchange(port: client.port, stream, timeout: 5)
                        let router = try await RawSocket.exchange(port: port, routerStream, timeout: 5)
                        let statuses = Self.statuses(front)
                        #expect(statuses == ahead + Self.statuses(router), "\(other.debugDescription)")
                        #expect(!statuses.isEmpty, "\(other.debugDescription)")
                    }
                }
            }
            #expect(Self.repeated(env) > 0)
        }
    }

    /// A head's lines with their names in lowercase, without `Connection`.
    static func lines(_ head: String) -> [String] {
        head.split(separator: "\r\n").map { line in
            guard let colon = line.firstIndex(of: ":") else { return String(line) }
            return line[..<colon].lowercased() + line[colon...]
        }.filter { !$0.hasPrefix("connection:") }
    }

    /// The status of each response on the wire (status lines at the start of the bytes or
    /// right after a body; bodies here are PNGs and JSON without such lines).
    static func statuses(_ bytes: [UInt8]) -> [Int] {
        let text = String(decoding: bytes, as: UTF8.self)
        return text.components(separatedBy: "HTTP/1.").dropFirst().compactMap { part in
            let code = part.dropFirst(2).prefix(3)
            return code.count == 3 && code.allSatisfy(\.isNumber) ? Int(code) : nil
        }
    }

    /// A client that pipelines thousands of hot GETs without reading: the answers stop while the
    /// channel is not writable (and reads with them), then all arrive, in order, once it reads.
    @Test func aClientThatDoesNotReadStopsTheAnswersUntilItDoes() async throws {
        let env = try await Self.frozenEnv()
        try await env.live { client in
            let png = Fixture.png(4000)
            let url = try await Self.hotURL(env, client, png)
            let count = 5_000
            let port = client.port
            let one = Self.responses(
                try await RawSocket.exchange(port: port, "GET \(url) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            // The answer without `Connection: close`.
            let answerLength = Self.lines(try #require(one.first).head).joined(separator: "\r\n").utf8.count + 4 + png.count
            let fd = try SlowWire.connect(port, receiveBuffer: 4096)
            defer { close(fd) }
            let request = Array("GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let sender = Thread {
                var batch: [UInt8] = []
                for _ in 0..<count { batch += request }
                _ = SlowWire.send(fd, batch)
            }
            sender.start()
            try await Task.sleep(for: .seconds(2))
            let stalled = Self.repeated(env)
            try await Task.sleep(for: .milliseconds(500))
            #expect(Self.repeated(env) == stalled)
            #expect(stalled < count / 2)
            // Now read every answer.
            let received = try await RawSocket.blocking { () -> Int in
                var seen = 0
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                var total = 0
                let expected = count * answerLength
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, seen < expected {
                    let n = recv(fd, &buf, buf.count, 0)
                    if n == 0 { break }
                    if n > 0 { total += n; seen = total }
                }
                return total
            }
            #expect(Self.repeated(env) == count)
            #expect(received >= count * png.count)
        }
    }

    /// Behind hot answers held back while the client did not read, requests for the router (an
    /// unknown path, an upload, an API call) are answered once it reads: nothing waits for more
    /// bytes from the client (a review found the router never told of them).
    @Test func requestsBehindAStallReachTheRouter() async throws {
        let env = try await Self.frozenEnv()
        try await env.live { client in
            let png = Fixture.png(60_000)
            let url = try await Self.hotURL(env, client, png)
            let token = try await env.token("alice")
            let port = client.port
            let tails = [
                "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "GET /v1/assets?prefix=alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n",
                "POST /v1/assets?jobId=j HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: image/png\r\n"
                    + "Content-Length: \(png.count)\r\nConnection: close\r\n\r\n",
            ]
            for (n, tail) in tails.enumerated() {
                let body = n == 2 ? png : []
                let wire = try await RawSocket.blocking { () throws -> [UInt8] in
                    let fd = try RawSocket.connect(port: port, timeout: 10, receiveBuffer: 4096)
                    defer { close(fd) }
                    let hot = String(repeating: "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n", count: 60)
                    _ = SlowWire.send(fd, Array((hot + tail).utf8) + body)
                    usleep(300_000)
                    return RawSocket.receiveAll(fd)
                }
                let statuses = Self.responses(wire).map(\.status)
                #expect(statuses.count == 61, "\(tail.prefix(30))")
                #expect(statuses.prefix(60).allSatisfy { $0 == 200 })
                #expect(statuses.last == [404, 200, 201][n], "\(tail.prefix(30))")
            }
        }
    }

    /// Hot answers keep a connection in use: the header timeout does not close it between them,
    /// and a head left unfinished after them is still cut off.
    @Test func hotAnswersAreNotAnUnfinishedHead() async throws {
        // The idle timeout is long: the test client's own keep-alive connection must survive the
        // whole suite starving this process for seconds (it did, in CI).
        let env = try await Self.frozenEnv {
            $0.headerTimeout = .seconds(2); $0.idleTimeout = .seconds(60)
        }
        try await env.live { client in
            let png = Fixture.png(800)
            let url = try await Self.hotURL(env, client, png)
            let port = client.port
            let (statuses, closedAfter) = try await RawSocket.blocking { () throws -> ([Int], Duration?) in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                var statuses: [Int] = []
                for _ in 0..<5 {
                    guard SlowWire.send(fd, "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n"), let reply = SlowWire.response(fd, within: .seconds(3))
                    else { break }
                    statuses.append(reply.status)
                    usleep(800_000)
                }
                let start = ContinuousClock.now
                _ = SlowWire.send(fd, "GET \(url) HTTP/1.1\r\n")
                return (statuses, SlowWire.closedAfter(fd, since: start, within: .seconds(8)))
            }
            #expect(statuses == [200, 200, 200, 200, 200])
            #expect(Self.repeated(env) == 5)
            let closed = try #require(closedAfter)
            #expect(closed >= .milliseconds(1800) && closed < .seconds(7))
        }
    }
}
