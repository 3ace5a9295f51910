import DepotCore
import DepotHTTP
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite("Crash safety of the real server process", .serialized)
struct CrashTests {
    func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    @Test func sigkillDuringLargeUploadsLeavesNoPartialObject() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-crash-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir + ".log")
        }
        let server = DepotProcess(dataDir: dir)
        try await server.start(extra: ["--max-file-size", "\(64 * 1024 * 1024)"])
        defer { server.stop() }
        let jwt = await ProjectJWT(secret: DepotProcess.secret)
        let token = try await jwt.mint(subject: "alice", role: .authenticated, ttl: 3600)
        let auth = [("Authorization", "Bearer \(token)")]

        // Committed before the crash.
        var committed: [(url: String, path: String, sha: String)] = []
        for i in 0..<5 {
            let bytes = Fixture.png(50_000 + i)
            let r = try await server.request(.POST, "/v1/assets?jobId=before", headers: auth + [("Content-Type", "image/png")], body: bytes)
            #expect(r.status == 201)
            let j = json(r.body)
            committed.append((j["url"] as! String, j["path"] as! String, bytes.sha256Hex))
        }
        // A presigned upload that will be cut off too.
        let big = Fixture.png(24 * 1024 * 1024)
        let pre = try await server.request(
            .POST, "/v1/presigned-uploads", headers: auth + [("Content-Type", "application/json")],
            body: Array("{\"jobId\":\"direct\",\"contentType\":\"image/png\",\"size\":\(big.count)}".utf8))
        #expect(pre.status == 201)
        let uploadURL = String((json(pre.body)["uploadUrl"] as! String).dropFirst("http://depot.test".count))
        let directPath = json(pre.body)["path"] as! String

        // Large uploads, streamed slowly, then SIGKILL in the middle.
        let chunks = stride(from: 0, to: big.count, by: 256 * 1024).map { Array(big[$0..<min($0 + 256 * 1024, big.count)]) }
        let port = server.port
        let uploads = Task {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<3 {
                    group.addTask {
                        _ = try? await Streaming.send(
                            .POST, port: port, "/v1/assets?jobId=during\(i)", headers: auth + [("Content-Type", "image/png")], chunks: chunks,
                            pause: .milliseconds(15))
                    }
                }
                group.addTask {
                    _ = try? await Streaming.send(
                        .PUT, port: port, uploadURL, headers: [("Content-Type", "image/png")], chunks: chunks, pause: .milliseconds(15),
                        knownLength: true)
                }
            }
        }
        // Wait until partial data is on disk, then kill.
        let deadline = ContinuousClock.now + .seconds(20)
        var partial = 0
        var partialBytes: Int64 = 0
        while ContinuousClock.now < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/tmp")) ?? []
            partial = names.count
            partialBytes = names.reduce(0) { sum, name in
                sum + ((try? FileManager.default.attributesOfItem(atPath: dir + "/tmp/" + name)[.size] as? Int64) ?? 0)
            }
            if partial >= 4 && partialBytes >= 8 * 1024 * 1024 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(partial >= 4, "the uploads should be in flight when the server dies")
        #expect(partialBytes >= 8 * 1024 * 1024, "several MiB should be on disk, uncommitted")
        server.kill9()
        await uploads.value

        // An orphan blob as a crash between fsync and commit would leave it (old enough for gc).
        let orphan = "0123456789abcdef0123456789abcdef"
        try FileManager.default.createDirectory(atPath: "\(dir)/blobs/01", withIntermediateDirectories: true)
        #expect(
            FileManager.default.createFile(
                atPath: "\(dir)/blobs/01/\(orphan)", contents: Data(Fixture.png(1000)),
                attributes: [.modificationDate: Date().addingTimeInterval(-7200)]))

        try await server.start()
        // Temp files from the crash were swept at start-up.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp").isEmpty)
        // Every committed object reads back intact.
        for c in committed {
            let r = try await server.request(.GET, c.url)
            #expect(r.status == 200)
            #expect(r.body.sha256Hex == c.sha)
        }
        // No partial object is visible: only the five committed ones are listed.
        let service = try await jwt.mint(subject: nil, role: .serviceRole, ttl: 600)
        let list = try await server.request(.GET, "/v1/assets?limit=1000", headers: [("Authorization", "Bearer \(service)")])
        let items = json(list.body)["items"] as? [[String: Any]] ?? []
        #expect(Set(items.map { $0["path"] as! String }) == Set(committed.map(\.path)))
        #expect(items.count == 5)
        #expect(try await server.request(.GET, "/v1/assets/\(directPath)", headers: auth).status == 404)
        // The upload URL cut off by the crash can be used again (and then only once).
        let retry = try await server.request(.PUT, uploadURL, headers: [("Content-Type", "image/png")], body: big)
        #expect(retry.status == 201)
        #expect(json(retry.body)["checksum"] as? String == big.sha256Hex)
        #expect(try await server.request(.PUT, uploadURL, headers: [("Content-Type", "image/png")], body: big).status == 409)
        #expect(try await server.request(.GET, "/v1/assets/\(directPath)", headers: auth).status == 200)

        // `depot gc` removes the orphan and nothing else.
        let gc = try await DepotProcess.run(["gc", "--data-dir", dir, "--grace", "3600"])
        #expect(gc.status == 0)
        #expect(gc.output.contains("removed 1 orphan blob"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/blobs/01/\(orphan)"))
        for c in committed {
            #expect(try await server.request(.GET, c.url).body.sha256Hex == c.sha)
        }
    }
}
