import DepotCore
import DepotHTTP
import DepotLocal
import Foundation
import Glibc
import HTTPTypes
import NIOCore
import Synchronization
import Testing

/// The limits on slow clients (`ConnectionLimits`), over real TCP on loopback with short limits:
/// a head not finished in time, idle connections, trickling uploads, and the connection cap —
/// while normal clients, slow readers of downloads and uploads held back by a slow store go on.
@Suite("Slow clients")
struct SlowClientTests {
    static func env(
        _ configure: (inout StorageSettings) -> Void = { _ in }, blobs: (any BlobStore)? = nil,
        limits: (inout ConnectionLimits) -> Void
    ) async throws -> TestEnvironment {
        var env = try await TestEnvironment.make(configure, blobs: blobs, cacheBlobs: blobs == nil)
        limits(&env.http.connections)
        return env
    }

    static let health = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

    /// Uploads an 8 MiB PNG as alice over a raw socket: its bytes and its signed URL (path+query).
    static func uploadBig(_ env: TestEnvironment, _ port: Int) async throws -> (bytes: [UInt8], url: String) {
        let big = Fixture.png(8 * 1024 * 1024)
        let token = try await env.token("alice")
        let up = try await RawSocket.blocking { try SlowWire.exchange(port, SlowWire.uploadHead(token: token, length: big.count), body: big) }
        #expect(up?.status == 201)
        return (big, TestEnvironment.local(try #require(up?.json["url"] as? String)))
    }

    /// GET `url` reading 64 KiB every 30 ms (about 2 MiB/s) through a 64 KiB receive buffer.
    static func slowRead(_ port: Int, _ url: String) async throws -> SlowWire.Reply? {
        try await RawSocket.blocking { () throws -> SlowWire.Reply? in
            let fd = try SlowWire.connect(port, receiveBuffer: 64 * 1024)
            defer { close(fd) }
            guard SlowWire.send(fd, "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n") else { return nil }
            return SlowWire.response(fd, within: .seconds(30), chunk: 64 * 1024, pace: .milliseconds(30))
        }
    }

    @Test func aHalfSentHeadIsClosedAfterTheHeaderTimeout() async throws {
        let env = try await Self.env {
            $0.headerTimeout = .seconds(1); $0.idleTimeout = .seconds(5)
        }
        try await env.live { client in
            let port = client.port
            async let half = RawSocket.blocking { () throws -> Duration? in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                let start = ContinuousClock.now
                SlowWire.send(fd, "GET /health HTTP/1.1\r\nHost: x\r\n")
                return SlowWire.closedAfter(fd, since: start, within: .seconds(4))
            }
            // A byte every 200 ms: sending slowly does not extend the timeout.
            async let trickled = RawSocket.blocking { () throws -> Duration? in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                let start = ContinuousClock.now
                for byte in Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: \(String(repeating: "a", count: 40))\r\n\r\n".utf8) {
                    guard SlowWire.send(fd, [byte]) else { break }
                    if SlowWire.waitForClose(fd, within: .milliseconds(200)) { return .now - start }
                }
                return nil
            }
            // Meanwhile another connection's requests are answered.
            let answered = try await RawSocket.blocking { () throws -> [Int] in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                var statuses: [Int] = []
                for _ in 0..<6 {
                    guard SlowWire.send(fd, Self.health), let reply = SlowWire.response(fd) else { break }
                    statuses.append(reply.status)
                    usleep(400_000)
                }
                return statuses
            }
            #expect(answered == Array(repeating: 200, count: 6))
            let halfClosed = try #require(try await half, "a half-sent head stays open")
            #expect(
                halfClosed >= .milliseconds(900) && halfClosed < .seconds(3), "closed after \(halfClosed): the header timeout, not the idle timeout")
            let trickleClosed = try #require(try await trickled, "a trickled head stays open")
            #expect(trickleClosed >= .milliseconds(900) && trickleClosed < .seconds(3), "closed after \(trickleClosed)")
        }
    }

    @Test func idleConnectionsAreClosedAndBusyOnesAreNot() async throws {
        let env = try await Self.env({ $0.maxFileSize = 16 * 1024 * 1024 }) {
            $0.idleTimeout = .seconds(2)
            $0.headerTimeout = .seconds(10)
        }
        try await env.live { client in
            let port = client.port
            // A large object whose row is cached: sent from its file by the fast path.
            let (big, url) = try await Self.uploadBig(env, port)
            let routed = try await RawSocket.blocking { try SlowWire.exchange(port, "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n") }
            #expect(routed?.body == big)

            // New and silent: idle from the start (closed by the idle timeout, before the header timeout).
            async let silent = RawSocket.blocking { () throws -> Duration? in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                return SlowWire.closedAfter(fd, since: .now, within: .seconds(12))
            }
            // Kept alive after a request: closed about two seconds after its response.
            async let keptAlive = RawSocket.blocking { () throws -> Duration? in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                guard SlowWire.send(fd, Self.health), SlowWire.response(fd)?.status == 200 else { return nil }
                return SlowWire.closedAfter(fd, since: .now, within: .seconds(12))
            }
            // Busy: a request every 200 ms for more than three idle timeouts (a gap far below the
            // timeout: the whole suite at once on two cores can hold a client back for a second).
            async let busy = RawSocket.blocking { () throws -> [Int] in
                let fd = try SlowWire.connect(port)
                defer { close(fd) }
                var statuses: [Int] = []
                for _ in 0..<36 {
                    guard SlowWire.send(fd, Self.health), let reply = SlowWire.response(fd) else { break }
                    statuses.append(reply.status)
                    usleep(200_000)
                }
                return statuses
            }
            // A slow reader: 8 MiB at about 2 MiB/s through a small receive buffer, for several
            // idle timeouts while the server still has most of the file to send.
            let slow = try await Self.slowRead(port, url)
            #expect(slow?.status == 200)
            #expect(slow?.body.count == big.count && slow?.body.sha256Hex == big.sha256Hex, "a slow reader gets the whole file")
            #expect(try await busy == Array(repeating: 200, count: 36))
            let silentClosed = try #require(try await silent, "a silent connection stays open")
            // Not before the timeout; soon after it (a loaded machine runs the timer late).
            #expect(silentClosed >= .milliseconds(1900) && silentClosed < .seconds(9), "closed after \(silentClosed)")
            let keptAliveClosed = try #require(try await keptAlive, "an idle kept-alive connection stays open")
            #expect(keptAliveClosed >= .milliseconds(1900) && keptAliveClosed < .seconds(9), "closed after \(keptAliveClosed)")
        }
    }

    /// A client that asks for a large object and does not read it: cut off after the send
    /// timeout, both when the file goes by `sendfile` in the pipeline and when the router streams
    /// it (`download=`); a slow reader that keeps taking pieces gets the whole object; nothing of
    /// the object changes.
    @Test func aClientThatDoesNotReadIsCutOffAfterTheSendTimeout() async throws {
        let env = try await Self.env({ $0.maxFileSize = 16 * 1024 * 1024 }) {
            $0.sendTimeout = .seconds(1)
            $0.idleTimeout = .seconds(30)
        }
        try await env.live { client in
            let port = client.port
            let (big, url) = try await Self.uploadBig(env, port)
            _ = try await RawSocket.blocking { try SlowWire.exchange(port, "GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n") }  // cache the row

            // By sendfile, streamed by the router, and with a pipelined upload behind it whose body
            // never comes (its reads wait for this answer; the send timeout must still run).
            let pipelined = "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nabc"
            for (target, behind) in [(url, ""), (url + "&download=big.png", ""), (url, pipelined), (url + "&download=b.png", pipelined)] {
                let received = try await RawSocket.blocking { () throws -> (bytes: Int, closed: Bool) in
                    let fd = try SlowWire.connect(port, receiveBuffer: 4096)
                    defer { close(fd) }
                    guard SlowWire.send(fd, "GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n" + behind) else { return (0, false) }
                    Thread.sleep(forTimeInterval: 5)  // reads nothing for five send timeouts (margin for a loaded machine)
                    var total = 0
                    var buf = [UInt8](repeating: 0, count: 1 << 16)
                    let deadline = ContinuousClock.now + .seconds(10)
                    while ContinuousClock.now < deadline {
                        let n = recv(fd, &buf, buf.count, 0)
                        if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return (total, true) }
                        if n > 0 { total += n }
                    }
                    return (total, false)
                }
                #expect(received.closed, "\(target) \(behind.isEmpty ? "" : "+ pipelined upload"): a client that did not read was not cut off")
                #expect(received.bytes < big.count, "\(target): \(received.bytes) bytes")
            }
            // A slow reader that keeps reading (2 MiB/s) gets it all, over several send timeouts.
            let slow = try await Self.slowRead(port, url)
            #expect(slow?.status == 200 && slow?.body.sha256Hex == big.sha256Hex)
            #expect(try await env.snapshot().objects.count == 1)
        }
    }

    /// Sends an upload's head, then 16 bytes of PNG every 250 ms (64 B/s) until the server closes
    /// the connection: the time that took, or nil when it was still open after 8 s.
    static func trickle(_ port: Int, token: String, chunked: Bool) throws -> Duration? {
        let fd = try SlowWire.connect(port)
        defer { close(fd) }
        let body = Fixture.png(100_000)
        let start = ContinuousClock.now
        guard SlowWire.send(fd, SlowWire.uploadHead(token: token, length: chunked ? nil : body.count, jobId: "trickle")) else { return nil }
        var at = 0
        while ContinuousClock.now - start < .seconds(8) {
            let piece = Array(body[at..<at + 16])
            at += 16
            let sent = chunked ? SlowWire.send(fd, Array("10\r\n".utf8) + piece + Array("\r\n".utf8)) : SlowWire.send(fd, piece)
            if !sent || SlowWire.waitForClose(fd, within: .milliseconds(250)) { return .now - start }
        }
        return nil
    }

    @Test func aTricklingUploadIsCutOffAndNothingIsStored() async throws {
        let env = try await Self.env {
            $0.minUploadRate = 1024; $0.uploadRateWindow = .seconds(1)
        }
        try await env.live { client in
            let port = client.port
            let token = try await env.token("alice")
            let png = Fixture.png(6 * 1024 * 1024)
            async let withLength = RawSocket.blocking { try Self.trickle(port, token: token, chunked: false) }
            async let chunked = RawSocket.blocking { try Self.trickle(port, token: token, chunked: true) }
            // At the same time, a normal upload of 6 MiB.
            let fast = try await RawSocket.blocking { try SlowWire.exchange(port, SlowWire.uploadHead(token: token, length: png.count), body: png) }
            #expect(fast?.status == 201)
            let path = try #require(fast?.json["path"] as? String)
            for (name, cut) in [("Content-Length", try await withLength), ("chunked", try await chunked)] {
                let after = try #require(cut, "a trickling upload (\(name)) stays open")
                #expect(after >= .milliseconds(900) && after < .seconds(5), "\(name): closed after \(after)")
            }
            // Nothing of the trickles is stored: no object, no blob, no temp file (removed when
            // their requests fail, which may take a moment).
            let expected = TestEnvironment.Snapshot(blobFiles: 1, tempFiles: 0, objects: ["assets/\(path)"])
            var snapshot = try await env.snapshot()
            for _ in 0..<50 where snapshot != expected {
                try await Task.sleep(for: .milliseconds(100))
                snapshot = try await env.snapshot()
            }
            #expect(snapshot == expected)
        }
    }

    /// An upload whose bytes the store takes slowly: the server stops reading while the store
    /// stalls (backpressure); that time is not the client's, so its connection is not cut off.
    @Test func anUploadHeldBackByASlowStoreIsNotCutOff() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-stall-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = StallingBlobStore(try FileSystemBlobStore(directory: dir), stall: .seconds(3))
        let env = try await Self.env({ $0.maxFileSize = 64 * 1024 * 1024 }, blobs: store) {
            $0.minUploadRate = 1024
            $0.uploadRateWindow = .seconds(1)
        }
        try await env.live { client in
            let port = client.port
            let token = try await env.token("alice")
            let png = Fixture.png(32 * 1024 * 1024)
            let reply = try await RawSocket.blocking { try SlowWire.exchange(port, SlowWire.uploadHead(token: token, length: png.count), body: png) }
            #expect(reply?.status == 201)
            #expect(store.stalls.load(ordering: .relaxed) == 1, "the store held the upload back")
        }
    }

    /// The cap is checked on the real `depot serve`: HummingbirdTesting's live server drops the
    /// application's `availableConnectionsDelegate` (`ApplicationConfiguration.with(address:)`
    /// does not carry it over), so `env.live` runs without a cap.
    @Test func aConnectionBeyondTheCapWaitsUntilOneCloses() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-cap-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--max-connections", "4", "--gc-interval", "0"])
        defer { server.stop() }
        let port = server.port
        let (served, early, others, late) = try await RawSocket.blocking { () throws -> (Int, Int?, [Int], Int?) in
            var open: [Int32] = []
            defer { open.forEach { close($0) } }
            for _ in 0..<4 {
                let fd = try SlowWire.connect(port)
                open.append(fd)
                guard SlowWire.send(fd, Self.health), SlowWire.response(fd)?.status == 200 else { break }
            }
            let served = open.count
            let fifth = try SlowWire.connect(port)  // the kernel completes the handshake; Depot does not accept it
            SlowWire.send(fifth, Self.health)
            let early = SlowWire.response(fifth, within: .milliseconds(1500))?.status
            // The four go on meanwhile.
            let others = open.compactMap { fd in SlowWire.send(fd, Self.health) ? SlowWire.response(fd)?.status : nil }
            close(open.removeFirst())
            open.append(fifth)
            let late = SlowWire.response(fifth, within: .seconds(10))?.status
            return (served, early, others, late)
        }
        #expect(served == 4)
        #expect(early == nil, "a fifth connection is not served while four are open")
        #expect(others == [200, 200, 200, 200])
        #expect(late == 200, "it is served once one closes")
    }
}

/// A blob store whose writers stall for `stall` on their first chunk, as a slow disk or object
/// store would: the upload's task stops reading the body meanwhile.
final class StallingBlobStore: BlobStore {
    let base: any BlobStore
    let stall: Duration
    let stalls = Atomic<Int>(0)

    init(_ base: any BlobStore, stall: Duration) {
        self.base = base
        self.stall = stall
    }

    func makeWriter(for id: BlobID) async throws -> any BlobWriter {
        Writer(base: try await base.makeWriter(for: id), store: self)
    }

    func read(_ id: BlobID, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        try await base.read(id, range: range, into: consume)
    }

    func size(of id: BlobID) async throws -> Int64? { try await base.size(of: id) }
    func delete(_ id: BlobID) async throws { try await base.delete(id) }
    func blobs(writtenBefore date: Date) async throws -> [BlobID] { try await base.blobs(writtenBefore: date) }
    func ping() async throws { try await base.ping() }

    final class Writer: BlobWriter {
        let base: any BlobWriter
        let store: StallingBlobStore
        let first = Atomic<Bool>(true)

        init(base: any BlobWriter, store: StallingBlobStore) {
            self.base = base
            self.store = store
        }

        func write(_ chunk: ByteBuffer) async throws {
            if first.exchange(false, ordering: .relaxed) {
                store.stalls.add(1, ordering: .relaxed)
                try await Task.sleep(for: store.stall)
            }
            try await base.write(chunk)
        }

        func finish() async throws -> Int64 { try await base.finish() }
        func abort() async { await base.abort() }
    }
}
