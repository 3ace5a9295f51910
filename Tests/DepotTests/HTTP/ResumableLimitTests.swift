import Crypto
import Depot
import DepotCore
import DepotTesting
import Foundation
import HTTPTypes
import Testing

/// What the attack review of the resumable entries found: creations at the same moment, held
/// bytes against other uploads, expired holds, a URL used by its PUT meanwhile.
@Suite("Resumable uploads: limits under concurrency")
struct ResumableLimitTests {
    typealias T = ResumableUploadTests

    @Test func creationsAtOnceAreCountedOneAfterTheOther() async throws {
        let env = try await TestEnvironment.make {
            $0.quota.pendingUploads = 3; $0.quota.bytes = 100_000
        }
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let statuses = try await withThrowingTaskGroup(of: UInt16.self) { group in
                for i in 0..<12 {
                    group.addTask {
                        let headers = SignedResumableUploadTests.assetCreation(
                            alice, length: 30_000, [("jobId", "j\(i)"), ("contentType", "image/png")])
                        return UInt16(try await client.request(.post, "/v1/uploads", headers: headers).status.code)
                    }
                }
                return try await group.reduce(into: [UInt16]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 3, "\(statuses.sorted())")
            #expect(statuses.allSatisfy { [201, 413, 429].contains($0) }, "\(statuses.sorted())")
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").count == 6, "3 records and their bytes")

            // The same URL's token twice at once: one upload, the other told so (never a 500).
            let made = try await client.request(.post, "/storage/v1/object/upload/sign/assets/bob/x.png", headers: try await env.auth("bob"))
            let token = try #require(made.json["token"] as? String)
            let codes = try await withThrowingTaskGroup(of: UInt16.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let headers = SignedResumableUploadTests.signed(token, T.creation([:], bucket: "assets", name: "bob/x.png", length: 100))
                        return UInt16(try await client.request(.post, "/storage/v1/upload/resumable/sign", headers: headers).status.code)
                    }
                }
                return try await group.reduce(into: [UInt16]()) { $0.append($1) }
            }
            #expect(codes.filter { $0 == 201 }.count == 1 && codes.filter { $0 == 409 }.count == 5, "\(codes)")
        }
    }

    /// An unfinished upload's declared bytes count as stored for other uploads' checks, until it
    /// finishes, is terminated or expires (without waiting for garbage collection).
    @Test func heldBytesCountUntilTheUploadEnds() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make(
            {
                $0.quota.bytes = 1_000_000; $0.resumableTTL = 3600
            }, clock: clock.now)
        defer { env.cleanup() }
        try await env.live { client in
            let carol = try await env.auth("carol")
            let held = try await client.request(
                .post, "/v1/uploads",
                headers: SignedResumableUploadTests.assetCreation(carol, length: 700_000, [("jobId", "j"), ("contentType", "image/png")]))
            #expect(held.status == .created)
            // GET /v1/usage shows it: the caller's own, or (service role) any user's.
            let usage = try await client.request(.get, "/v1/usage", headers: carol)
            #expect(usage.json["resumableUploads"] as? Int == 1 && usage.json["resumableBytes"] as? Int == 700_000, "\(usage.text)")
            #expect((usage.json["limits"] as? [String: Any])?["bytes"] as? Int == 1_000_000 && usage.json["user"] as? String == "carol")
            #expect(try await client.request(.get, "/v1/usage?user=carol", headers: try await env.auth("dave")).status == .forbidden)
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.request(.get, "/v1/usage?user=carol", headers: service).json["resumableBytes"] as? Int == 700_000)
            let before = try await env.snapshot()
            let big = Fixture.png(400_000)
            let refused = try await client.upload(big, headers: carol)
            #expect(refused.status == .contentTooLarge && refused.errorCode == "quota_exceeded", "\(refused.text)")
            #expect(try await env.snapshot() == before)
            clock.advance(3601)
            let accepted = try await client.upload(big, headers: carol)
            #expect(accepted.status == .created, "an expired upload holds nothing: \(accepted.text)")
        }
    }

    /// A signed upload whose URL its PUT used meanwhile can never finish: it ends at once.
    @Test func aURLUsedByItsPUTEndsItsResumableUpload() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let made = try await client.request(.post, "/storage/v1/object/upload/sign/assets/alice/p.png", headers: alice)
            let token = try #require(made.json["token"] as? String)
            let created = try await client.request(
                .post, "/storage/v1/upload/resumable/sign",
                headers: SignedResumableUploadTests.signed(token, T.creation([:], bucket: "assets", name: "alice/p.png", length: 5000)))
            let url = T.location(created)
            let put = try await client.request(
                .put, "/storage/v1/object/upload/sign/assets/alice/p.png?token=\(token)", headers: [.contentType: "image/png"], body: Fixture.png(300)
            )
            #expect(put.status == .ok)
            #expect(try await client.request(.head, url, headers: SignedResumableUploadTests.signed(token)).status == .notFound)
            #expect(
                try await client.request(
                    .patch, url, headers: SignedResumableUploadTests.signed(token, T.patch([:], offset: 0)), body: Fixture.png(100)
                ).status
                    == .notFound)
            #expect(try FileManager.default.contentsOfDirectory(atPath: env.dir + "/resumable").isEmpty)
            #expect(await env.service.resumable?.openUploads(owner: "alice", now: Date()).count == 0)
        }
    }
}
