import DepotCore
import DepotHTTP
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// `depot serve --jwks URL` as an operator runs it against Supabase Auth's JWKS: keys read at
/// start, a JWKS host that fails is a log line (old keys kept, HS256 unaffected), a rotated-in
/// key is fetched on its first token, a removed one stops working; `--jwks FILE` that cannot be
/// read does not stop the server.
@Suite("JWKS in the real server")
struct JWKSProcessTests {
    /// A JWKS host: serves what `document` holds (nil: 503).
    final class JWKSHost: Sendable {
        let document = Mutex<[UInt8]?>(nil)
        /// Answers only after this long (a slow or hanging host).
        let delay = Mutex<Duration>(.zero)
        let fetches = Atomic<Int>(0)
        let port = Mutex(0)
        private let task = Mutex<Task<Void, any Error>?>(nil)

        func start() async throws {
            let router = Router()
            router.get("/.well-known/jwks.json") { [self] _, _ -> Response in
                fetches.add(1, ordering: .relaxed)
                try await Task.sleep(for: delay.withLock { $0 })
                guard let bytes = document.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
            let (stream, continuation) = AsyncStream<Int>.makeStream()
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
            task.withLock { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
            for await p in stream {
                port.withLock { $0 = p }
                break
            }
        }

        var url: String { "http://127.0.0.1:\(port.withLock { $0 })/.well-known/jwks.json" }
        func stop() { task.withLock { $0?.cancel() } }
    }

    static func upload(_ server: DepotProcess, _ token: String, _ job: String) async throws -> Int {
        try await server.request(
            .POST, "/v1/assets?jobId=\(job)", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "image/png")],
            body: Fixture.png(200)
        ).status
    }

    @Test func keysAreFetchedKeptThroughFailuresRotatedAndRemoved() async throws {
        let host = JWKSHost()
        try await host.start()
        defer { host.stop() }
        let a = TestSigningKeys()
        let b = TestSigningKeys()
        host.document.withLock { $0 = TestSigningKeys.jwks([a.esJWK]) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-jwks-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--jwks", host.url])
        defer { server.stop() }
        let hs = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "carol", role: .authenticated, ttl: 600)
        #expect(try await Self.upload(server, try await a.es256Token("alice"), "a") == 201)
        #expect(try await Self.upload(server, hs, "hs") == 201)

        // The host fails: a token with an unknown kid makes Depot try again (once the 10 s gap
        // since the last read has passed), the failure is logged, and the loaded keys stay.
        host.document.withLock { $0 = nil }
        try await Task.sleep(for: .milliseconds(10_500))
        let readsBefore = host.fetches.load(ordering: .relaxed)
        #expect(try await Self.upload(server, try await b.es256Token("alice"), "b") == 401)
        #expect(host.fetches.load(ordering: .relaxed) == readsBefore + 1)
        #expect(try await Self.upload(server, try await b.es256Token("alice"), "b") == 401)
        #expect(host.fetches.load(ordering: .relaxed) == readsBefore + 1, "at most one read per 10 s, whatever the tokens")
        #expect(try await Self.upload(server, try await a.es256Token("alice"), "a") == 201)
        #expect(try await Self.upload(server, hs, "hs") == 201)
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        #expect(log.contains("cannot load the signing keys (JWKS) from \(host.url)"), "\(log)")

        // Rotated: the host now has b only. b's first token brings it in; a's stop.
        host.document.withLock { $0 = TestSigningKeys.jwks([b.esJWK]) }
        try await Task.sleep(for: .milliseconds(10_500))
        #expect(try await Self.upload(server, try await b.es256Token("alice"), "b") == 201)
        #expect(try await Self.upload(server, try await a.es256Token("alice"), "a") == 401)
    }

    @Test func aHangingJWKSHostDelaysNeitherTheStartNorRequests() async throws {
        let host = JWKSHost()
        try await host.start()
        defer { host.stop() }
        host.delay.withLock { $0 = .seconds(60) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-jwks-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        let start = ContinuousClock.now
        try await server.start(extra: ["--jwks", host.url])
        defer { server.stop() }
        // The first read waits 3 s at most before the server listens (it hangs for a minute).
        #expect(ContinuousClock.now - start < .seconds(15), "started after \(ContinuousClock.now - start)")
        let hs = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "carol", role: .authenticated, ttl: 600)
        #expect(try await Self.upload(server, hs, "hs") == 201)
        // A token with an unknown kid waits for the (hanging) read 2 s at most, then is refused.
        try await Task.sleep(for: .milliseconds(10_500))
        let asked = ContinuousClock.now
        #expect(try await Self.upload(server, try await TestSigningKeys().es256Token("alice"), "es") == 401)
        #expect(ContinuousClock.now - asked < .seconds(8), "answered after \(ContinuousClock.now - asked)")
    }

    @Test func aJWKSThatCannotBeReadAtStartDoesNotStopTheServer() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-jwks-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--jwks", dir + "-missing.json"])
        defer { server.stop() }
        let hs = try await ProjectJWT(secret: DepotProcess.secret).mint(subject: "carol", role: .authenticated, ttl: 600)
        #expect(try await Self.upload(server, hs, "hs") == 201)
        #expect(try await Self.upload(server, try await TestSigningKeys().es256Token("alice"), "es") == 401)
        let log = try String(contentsOfFile: server.logPath, encoding: .utf8)
        #expect(log.contains("cannot load the signing keys (JWKS) from \(dir)-missing.json"), "\(log)")
        // A refresh period out of range is refused before anything starts.
        let bad = try await DepotProcess.run(["serve", "--data-dir", dir, "--jwks", "x.json", "--jwks-refresh", "5"])
        #expect(bad.status != 0 && bad.output.contains("--jwks-refresh must be 60 … 86400 seconds"), "\(bad.output)")
        let ftp = try await DepotProcess.run(["serve", "--data-dir", dir, "--jwks", "ftp://host/jwks.json"])
        #expect(ftp.status != 0 && ftp.output.contains("neither a file nor an http(s):// URL"), "\(ftp.output)")
    }
}
