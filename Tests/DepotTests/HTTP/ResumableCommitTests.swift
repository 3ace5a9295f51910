import AsyncHTTPClient
import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// The commit of a complete resumable upload happens once, whole: racing the last PATCH (a HEAD,
/// which commits an upload whose bytes are all there; a second PATCH; a DELETE), or cut off by a
/// crash after the object row was written.
@Suite("Resumable uploads: the commit")
struct ResumableCommitTests {
    typealias T = ResumableUploadTests

    static func create(_ client: LiveClient, _ auth: HTTPFields, _ bytes: [UInt8]) async throws -> String {
        let created = try await client.request(
            .post, "/v1/uploads",
            headers: SignedResumableUploadTests.assetCreation(auth, length: bytes.count, [("jobId", "race"), ("contentType", "image/png")]))
        #expect(created.status == .created, "\(created.text)")
        return T.location(created)
    }

    /// One request on a connection of its own (async-http-client's pool): the requests of a
    /// race arrive at once, not one after the other.
    static func send(_ method: HTTPMethod, _ port: Int, _ url: String, _ headers: HTTPFields, body: [UInt8]? = nil) async throws -> (
        UInt16, HTTPHeaders
    ) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(url)")
        request.method = method
        for field in headers { request.headers.add(name: field.name.rawName, value: field.value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        _ = try await response.body.collect(upTo: 1 << 20)
        return (UInt16(response.status.code), response.headers)
    }

    @Test func aCommitRacingTheLastPatchHappensOnceAndWhole() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            for round in 0..<12 {
                // A user per round: the rate limit counts per caller.
                let alice = try await env.auth("user\(round)")
                let bytes = Fixture.png(2_000_000)
                let url = try await Self.create(client, alice, bytes)
                let answers = try await withThrowingTaskGroup(of: (String, UInt16, String?).self) { group in
                    let patches = round % 2 == 0 ? 1 : 2
                    for i in 0..<patches {
                        group.addTask {
                            let (status, headers) = try await Self.send(.PATCH, client.port, url, T.patch(alice, offset: 0), body: bytes)
                            return ("patch \(i)", status, headers.first(name: "Tus-Complete"))
                        }
                    }
                    for _ in 0..<4 {
                        group.addTask {
                            var last: UInt16 = 0
                            var early: String? = nil
                            for _ in 0..<30 {
                                let (status, headers) = try await Self.send(.HEAD, client.port, url, T.tus(alice))
                                last = status
                                // The length only once complete: a client takes it for done.
                                if headers.first(name: "Upload-Offset") == String(bytes.count), headers.first(name: "Tus-Complete") != "1" {
                                    early = "the length before the commit"
                                }
                            }
                            return ("head", last, early)
                        }
                    }
                    return try await group.reduce(into: [(String, UInt16, String?)]()) { $0.append($1) }
                }
                let asset = try await client.request(.get, url, headers: alice)
                #expect(asset.status == .ok, "round \(round): \(answers) \(asset.text)")
                let link = try #require(asset.json["url"] as? String)
                let read = try await client.request(.get, TestEnvironment.local(link))
                #expect(read.status == .ok && read.bytes == bytes, "round \(round): \(read.status) \(read.bytes.count) bytes, \(answers)")
                for (what, status, complete) in answers where what != "head" {
                    #expect((status == 204 && complete == "1") || status == 409, "round \(round): \(answers)")
                }
                #expect(answers.contains { $0.0.hasPrefix("patch") && $0.1 == 204 }, "round \(round): \(answers)")
                #expect(answers.contains { $0.0 == "head" && $0.1 == 200 }, "round \(round): \(answers)")
                #expect(!answers.contains { $0.0 == "head" && $0.2 != nil }, "round \(round): \(answers)")
                let listed = try await client.request(.get, "/v1/assets?prefix=race/", headers: alice).json["items"] as? [[String: Any]]
                #expect(listed?.count == 1, "one object")
            }
        }
    }

    /// A DELETE racing the last PATCH: either the upload ends before the commit (no object) or the
    /// DELETE finds it complete (400) — never 204 with the object made anyway.
    @Test func aDeleteRacingTheLastPatchIsOneOrTheOther() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            for round in 0..<10 {
                let bytes = Fixture.png(1_000_000)
                let url = try await Self.create(client, alice, bytes)
                async let patch = Self.send(.PATCH, client.port, url, T.patch(alice, offset: 0), body: bytes)
                try await Task.sleep(for: .milliseconds(round))
                let delete = try await Self.send(.DELETE, client.port, url, T.tus(alice)).0
                let patched = try await patch.0
                let made = try await client.request(.get, url, headers: alice)
                if delete == 204 {
                    #expect(made.status == .notFound, "round \(round): deleted, yet \(made.status) \(made.text); PATCH \(patched)")
                } else {
                    #expect(delete == 400 && made.status == .ok, "round \(round): DELETE \(delete), \(made.status)")
                }
            }
        }
    }

    /// A crash after the commit wrote the object's row but before the upload was marked finished
    /// (simulated: the record and staged bytes put back as they were): the next HEAD finds the
    /// object the upload made and answers it complete; no second commit.
    @Test func aCommitCutOffByACrashIsTakenForDone() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(200_000)
            let url = try await Self.create(client, alice, bytes)
            let id = String(url.split(separator: "/").last!)
            let record = env.dir + "/resumable/\(id).json"
            #expect(try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: Array(bytes[..<1000])).status == .noContent)
            let unfinished = try Data(contentsOf: URL(fileURLWithPath: record))
            let done = try await client.request(.patch, url, headers: T.patch(alice, offset: 1000), body: Array(bytes[1000...]))
            #expect(done.status == .noContent && done.headers[HTTPField.Name("Tus-Complete")!] == "1")
            let first = try await client.request(.get, url, headers: alice)
            try unfinished.write(to: URL(fileURLWithPath: record))
            try Data(bytes).write(to: URL(fileURLWithPath: env.dir + "/resumable/\(id).bin"))

            let head = try await client.request(.head, url, headers: T.tus(alice))
            #expect(head.status == .ok, "\(head.status)")
            #expect(head.headers[HTTPField.Name("Upload-Offset")!] == String(bytes.count) && head.headers[HTTPField.Name("Tus-Complete")!] == "1")
            let again = try await client.request(.get, url, headers: alice)
            #expect(again.status == .ok && again.json["checksum"] as? String == first.json["checksum"] as? String, "\(again.text)")
            #expect(again.json["createdAt"] as? String == first.json["createdAt"] as? String, "the same object, not a second commit")
            #expect(!FileManager.default.fileExists(atPath: env.dir + "/resumable/\(id).bin"), "the staged bytes are dropped")
        }
    }
}

extension ResumableCommitTests {
    /// TUS core: a client that can only POST names the method in `X-HTTP-Method-Override`.
    @Test func aMethodOverrideIsTheMethod() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(5000)
            let override = HTTPField.Name("X-HTTP-Method-Override")!
            let url = try await Self.create(client, alice, bytes)
            var patch = T.patch(alice, offset: 0)
            patch[override] = "PATCH"
            let first = try await client.request(.post, url, headers: patch, body: Array(bytes[..<100]))
            #expect(first.status == .noContent && first.headers[HTTPField.Name("Upload-Offset")!] == "100", "\(first.text)")
            var head = T.tus(alice)
            head[override] = "HEAD"
            #expect(try await client.request(.post, url, headers: head).headers[HTTPField.Name("Upload-Offset")!] == "100")
            var delete = T.tus(alice)
            delete[override] = "DELETE"
            #expect(try await client.request(.post, url, headers: delete).status == .noContent)
            #expect(try await client.request(.head, url, headers: T.tus(alice)).status == .notFound)
            #expect(try await client.request(.post, url, headers: T.tus(alice)).status == .notFound, "no override: nothing")
        }
    }
}

extension ResumableCommitTests {
    /// A caller's upload exists only at the entry that made it (its rules and errors are that
    /// entry's): an Assets-API upload is not found on the Storage API's path, nor the reverse.
    @Test func anUploadIsOnlyAtItsOwnEntry() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let assets = try await Self.create(client, alice, Fixture.png(1000))
            let assetsID = String(assets.split(separator: "/").last!)
            let storage = T.location(
                try await client.request(
                    .post, "/storage/v1/upload/resumable", headers: T.creation(alice, bucket: "assets", name: "alice/e.png", length: 1000)))
            let storageID = String(storage.split(separator: "/").last!)
            for url in ["/storage/v1/upload/resumable/\(assetsID)", "/v1/uploads/\(storageID)"] {
                #expect(try await client.request(.head, url, headers: T.tus(alice)).status == .notFound, "\(url)")
                #expect(try await client.request(.patch, url, headers: T.patch(alice, offset: 0), body: Fixture.png(10)).status == .notFound)
                #expect(try await client.request(.delete, url, headers: T.tus(alice)).status == .notFound)
            }
            #expect(try await client.request(.head, assets, headers: T.tus(alice)).headers[HTTPField.Name("Upload-Offset")!] == "0")
            #expect(try await client.request(.head, storage, headers: T.tus(alice)).headers[HTTPField.Name("Upload-Offset")!] == "0")
        }
    }
}
