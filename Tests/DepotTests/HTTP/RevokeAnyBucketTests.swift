import DepotCore
import Foundation
import HTTPTypes
import Testing

/// `POST /v1/assets/revoke` with `bucket`: the signed URLs of objects in any bucket (the Storage
/// API's too) end, the object and its other links' successors stay; only its tenant (or the
/// service role) may do it.
@Suite("Revocation in any bucket")
struct RevokeAnyBucketTests {
    @Test func signedURLsOfAStorageBucketsObjectEnd() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            let created = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs", "public": false])
            #expect(created.status == .ok, "\(created.text)")
            let png = Fixture.png(1500)
            for name in ["alice/a.png", "bob/b.png"] {
                let up = try await client.request(.post, "/storage/v1/object/docs/\(name)", headers: service + [.contentType: "image/png"], body: png)
                #expect(up.status == .ok, "\(up.text)")
            }
            func sign(_ name: String) async throws -> String {
                let r = try await client.json(.post, "/storage/v1/object/sign/docs/\(name)", headers: service, ["expiresIn": 600])
                return "/storage/v1" + (try #require(r.json["signedURL"] as? String))
            }
            let aliceURL = try await sign("alice/a.png")
            let bobURL = try await sign("bob/b.png")
            #expect(try await client.request(.get, aliceURL).bytes == png)

            // Alice may end her object's links, not Bob's; unknown buckets and names are reported.
            let r = try await client.json(
                .post, "/v1/assets/revoke", headers: alice, ["bucket": "docs", "paths": ["alice/a.png", "bob/b.png", "alice/none.png"]])
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.json["revoked"] as? [String] == ["alice/a.png"])
            let errors = r.json["errors"] as? [String: Any] ?? [:]
            #expect(Set(errors.keys) == ["bob/b.png", "alice/none.png"], "\(r.text)")
            let other = try await client.json(.post, "/v1/assets/revoke", headers: alice, ["bucket": "nope", "paths": ["alice/a.png"]])
            #expect(other.status == .notFound && other.errorCode == "bucket_not_found", "\(other.text)")

            // Alice's old link is dead, Bob's lives; the object is untouched and signs anew.
            #expect(try await client.request(.get, aliceURL).status != .ok)
            #expect(try await client.request(.get, bobURL).bytes == png)
            #expect(try await client.request(.get, try await sign("alice/a.png")).bytes == png)
            let info = try await client.request(.get, "/storage/v1/object/info/docs/alice/a.png", headers: service)
            #expect(info.status == .ok && info.json["size"] as? Int == png.count)
        }
    }
}
