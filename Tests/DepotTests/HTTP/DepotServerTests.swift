import AsyncHTTPClient
import Depot
import DepotHTTP
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// `DepotServer`, the composition root `depot serve` runs, driven from Swift as the README shows:
/// a typed configuration, a free port, real HTTP, and a stop by cancellation that closes the stores.
@Suite("DepotServer (the composition root)")
struct DepotServerTests {
    @Test func runsFromATypedConfigurationAndStopsWhenCancelled() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-server-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var configuration = DepotServer.Configuration(dataDirectory: dir)
        configuration.port = 0
        configuration.settings.publicBaseURL = "http://depot.test"
        configuration.settings.maxFileSize = 1000
        configuration.gcInterval = 0
        let secret = "depot-server-test-secret-0123456789abcdef"
        let server = try await DepotServer.open(configuration, secret: secret, logger: TestLogging.logger("depot-server", level: .warning))
        #expect(server.rowsSummary == "SQLite \(dir)/depot.sqlite")
        #expect(server.blobsSummary == "files under \(dir)/blobs")

        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let running = Task { try await server.run { port in portSink.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        #expect(port > 0)

        let token = try await ProjectJWT(secret: secret).mint(subject: "alice", role: .authenticated, ttl: 600)
        var upload = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/assets?jobId=job-1")
        upload.method = .POST
        upload.headers.add(name: "Authorization", value: "Bearer \(token)")
        upload.headers.add(name: "Content-Type", value: "image/png")
        upload.body = .bytes(ByteBuffer(bytes: Fixture.png(500)))
        let created = try await HTTPClient.shared.execute(upload, timeout: .seconds(30))
        #expect(created.status.code == 201)
        // The configuration's settings are the server's: 1,000 bytes at most.
        upload.body = .bytes(ByteBuffer(bytes: Fixture.png(2000)))
        let tooLarge = try await HTTPClient.shared.execute(upload, timeout: .seconds(30))
        #expect(tooLarge.status.code == 413)
        #expect(try await server.service.metadata.listObjects(in: "assets", prefix: "alice/", after: nil, limit: 10).count == 1)

        running.cancel()
        try await running.value
        // Stopped: the port no longer answers.
        let after = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
        await #expect(throws: (any Error).self) { _ = try await HTTPClient.shared.execute(after, timeout: .seconds(5)) }
    }

    @Test func redirectedDownloadsNeedABlobStoreWithURLs() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-server-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var configuration = DepotServer.Configuration(dataDirectory: dir)
        configuration.redirectDownloads = true
        await #expect(throws: DepotFailure.self) {
            _ = try await DepotServer.open(configuration, secret: "depot-server-test-secret-0123456789abcdef")
        }
    }
}
