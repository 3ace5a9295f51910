import DepotCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test func hundredConcurrentUploadsAllReadBack() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let results = try await withThrowingTaskGroup(of: (String, String, String).self) { group in
                for i in 0..<100 {
                    group.addTask {
                        let bytes = Fixture.png(1000 + i * 37)
                        let r = try await Streaming.send(
                            .POST, port: client.port, "/v1/assets?jobId=c\(i % 7)",
                            headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "image/png")], chunks: [bytes], knownLength: true)
                        #expect(r.status == 201)
                        return (r.json["path"] as! String, r.json["url"] as! String, bytes.sha256Hex)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 100)
            #expect(Set(results.map(\.0)).count == 100)
            for (_, url, sha) in results {
                let got = try await client.request(.get, TestEnvironment.local(url))
                #expect(got.bytes.sha256Hex == sha)
                #expect(got.status == .ok)
            }
            let snap = try await env.snapshot()
            #expect(snap.blobFiles == 100)
            #expect(snap.tempFiles == 0)
        }
    }

    @Test func hundredConcurrentPresignedPutsEachURLConsumedOnce() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            var uploads: [(url: String, bytes: [UInt8])] = []
            for i in 0..<45 {
                let bytes = Fixture.png(2000 + i)
                let r = try await client.json(
                    .post, "/v1/presigned-uploads", headers: alice, ["jobId": "p", "contentType": "image/png", "size": bytes.count])
                uploads.append((TestEnvironment.local(r.json["uploadUrl"] as! String), bytes))
            }
            // 100 PUTs at once: every URL twice, and URL 0 ten more times.
            let each: [(Int, (url: String, bytes: [UInt8]))] = uploads.indices.map { ($0, uploads[$0]) }
            let attempts = each + each + Array(repeating: (0, uploads[0]), count: 10)
            let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for (index, u) in attempts {
                    group.addTask {
                        let r = try await Streaming.send(
                            .PUT, port: client.port, u.url, headers: [("Content-Type", "image/png")], chunks: [u.bytes], knownLength: true)
                        return (index, r.status)
                    }
                }
                return try await group.reduce(into: [Int: [Int]]()) { $0[$1.0, default: []].append($1.1) }
            }
            #expect(attempts.count == 100)
            #expect(statuses[0]?.sorted() == [201] + Array(repeating: 409, count: 11))
            for i in 1..<45 {
                #expect(statuses[i]?.sorted() == [201, 409], "URL \(i): \(statuses[i] ?? [])")
            }
            let snap = try await env.snapshot()
            #expect(snap.objects.count == 45)
            #expect(snap.blobFiles == 45)
            #expect(snap.intents == ["consumed:45"])
            let listed = try await client.request(.get, "/v1/assets?limit=1000", headers: alice)
            let items = try #require(listed.json["items"] as? [[String: Any]])
            #expect(items.count == 45)
            let expected = Set(uploads.map(\.bytes.sha256Hex))
            #expect(Set(items.map { $0["checksum"] as! String }) == expected)
            for item in items {
                let got = try await client.request(.get, TestEnvironment.local(item["url"] as! String))
                #expect(got.bytes.sha256Hex == item["checksum"] as! String)
            }
        }
    }
}
