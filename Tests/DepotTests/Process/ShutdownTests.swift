import DepotCore
import DepotHTTP
import Dispatch
import Foundation
import Glibc
import NIOHTTP1
import Testing

@Suite("Graceful shutdown of the real server process")
struct ShutdownTests {
    /// SIGTERM while a large object is being sent from its file (`sendfile` in the channel
    /// pipeline) to a slow client: the server waits for the download to finish, then exits 0.
    @Test func aShutdownLetsALargeDownloadFinish() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-shutdown-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--max-file-size", "\(64 * 1024 * 1024)", "--gc-interval", "0"])
        defer { server.stop() }
        let jwt = await ProjectJWT(secret: DepotProcess.secret)
        let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))")]
        let big = Fixture.png(40 * 1024 * 1024)
        let up = try await server.request(.POST, "/v1/assets?jobId=shutdown", headers: auth + [("Content-Type", "image/png")], body: big)
        #expect(up.status == 201)
        let json = (try? JSONSerialization.jsonObject(with: Data(up.body))) as? [String: Any] ?? [:]
        let url = String(try #require(json["url"] as? String).dropFirst("http://depot.test".count))
        #expect(try await server.request(.GET, url).body.sha256Hex == big.sha256Hex)  // through the router: the row is cached now

        // A slow reader: 1 MiB, then a pause while the server is asked to stop, then the rest.
        let port = server.port
        let resume = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let download = Task {
            try await RawSocket.blocking { () throws -> [UInt8] in
                let fd = try RawSocket.connect(port: port, timeout: 20, receiveBuffer: 64 * 1024)
                defer { close(fd) }
                RawSocket.send(fd, Array("GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                var received: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                var signalled = false
                while true {
                    if !signalled && received.count >= 1024 * 1024 {
                        signalled = true
                        started.signal()
                        resume.wait()
                    }
                    let n = recv(fd, &buf, buf.count, 0)
                    if n <= 0 { break }
                    received += buf[0..<n]
                }
                if !signalled { started.signal() }
                return received
            }
        }
        try await RawSocket.blocking { started.wait() }
        let service = [("Authorization", "Bearer \(try await jwt.mint(subject: nil, role: .serviceRole, ttl: 3600))")]
        let metrics = String(decoding: try await server.request(.GET, "/metrics", headers: service).body, as: UTF8.self)
        #expect(metrics.contains("depot_downloads_sendfile_total 1"))

        server.terminate()
        // Still running: it waits for the download in flight.
        #expect(try await server.exitStatus(within: .milliseconds(700)) == nil)
        resume.signal()
        let received = try await download.value
        let replies = try SendfileDownloadTests.parse(received)
        #expect(replies.map(\.status) == [200])
        #expect(replies.first?.body.count == big.count)
        #expect(replies.first?.body.sha256Hex == big.sha256Hex)
        #expect(try await server.exitStatus(within: .seconds(15)) == 0)
    }

    /// A client that asks for a large object and never reads holds its request in flight: a
    /// graceful stop waits `--shutdown-timeout`, then closes it and exits 0 (with the send timeout
    /// off, so that only the shutdown bound can end it).
    @Test func aShutdownWaitsNoLongerThanItsTimeout() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-shutdown-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: [
            "--max-file-size", "\(16 * 1024 * 1024)", "--gc-interval", "0", "--send-timeout", "0", "--shutdown-timeout", "2",
        ])
        defer { server.stop() }
        let jwt = await ProjectJWT(secret: DepotProcess.secret)
        let auth = [("Authorization", "Bearer \(try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600))")]
        let big = Fixture.png(8 * 1024 * 1024)
        let up = try await server.request(.POST, "/v1/assets?jobId=stuck", headers: auth + [("Content-Type", "image/png")], body: big)
        #expect(up.status == 201)
        let json = (try? JSONSerialization.jsonObject(with: Data(up.body))) as? [String: Any] ?? [:]
        let url = String(try #require(json["url"] as? String).dropFirst("http://depot.test".count))

        let port = server.port
        let fd = try RawSocket.connect(port: port, timeout: 20, receiveBuffer: 4096)
        defer { close(fd) }
        RawSocket.send(fd, Array("GET \(url) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // The answer has begun (its head is here), then nothing more is read.
        let head = try await RawSocket.blocking { () -> [UInt8] in
            var received: [UInt8] = []
            var byte: UInt8 = 0
            while !(received.count >= 4 && received.suffix(4).elementsEqual("\r\n\r\n".utf8)), recv(fd, &byte, 1, 0) == 1 { received.append(byte) }
            return received
        }
        #expect(String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200"))

        let stopped = ContinuousClock.now
        server.terminate()
        // (That a stop waits for a download in flight is `aShutdownLetsALargeDownloadFinish`'s.)
        let status = try await server.exitStatus(within: .seconds(15))
        #expect(status == 0)
        let took = ContinuousClock.now - stopped
        #expect(took < .seconds(8), "a graceful stop took \(took) with --shutdown-timeout 2")
    }
}
