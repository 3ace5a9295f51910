import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// The attacks of the security review (issue 14, items 1–4), over real HTTP: each once crashed the
/// server, leaked another tenant's names or kept a link alive that should have died.
@Suite("Security: crashes, cross-tenant listing, links that must die")
struct AttackTests {
    /// Range numbers up to and past Int64.max, on the pipeline's path, the router's and the
    /// Storage API's authenticated download: clipped or ignored, never a trap.
    @Test func hugeRangeNumbersNeverStopTheServer() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png(3000)
            let up = try await client.upload(png, headers: try await env.auth("alice"))
            let url = TestEnvironment.local(up.json["url"] as! String)
            let path = up.json["path"] as! String
            let ranges = [
                "bytes=0-9223372036854775807", "bytes=0-9223372036854775806", "bytes=9223372036854775807-",
                "bytes=-9223372036854775807", "bytes=-9223372036854775808", "bytes=0-99999999999999999999",
                "bytes=99999999999999999999-", "bytes=+1-2", "bytes=-+5", "bytes= 1 - 2", "bytes=1-0x10",
            ]
            for target in [url, url + "&download=a.png", "/storage/v1/object/authenticated/assets/\(path)"] {
                let auth = target.hasPrefix("/storage/v1/object/authenticated") ? try await env.auth("alice") : [:]
                for range in ranges {
                    var headers = auth
                    headers[.range] = range
                    let r = try await client.request(.get, target, headers: headers)
                    #expect([200, 206, 416].contains(r.status.code), "\(range) on \(target): \(r.status)")
                    if r.status == .partialContent {
                        #expect(r.headers[.contentRange]?.hasSuffix("/3000") == true)
                        #expect(r.bytes.count == Int(r.headers[.contentLength] ?? "") ?? -1)
                    }
                }
                // The largest end is clipped to the object: the whole of it, as a 206.
                var headers = auth
                headers[.range] = "bytes=0-9223372036854775807"
                let whole = try await client.request(.get, target, headers: headers)
                #expect(whole.status == .partialContent && whole.bytes == png && whole.headers[.contentRange] == "bytes 0-2999/3000")
            }
            #expect(try await client.request(.get, "/health").status == .ok)
        }
    }

    /// A `list-v2` cursor chosen so that Swift's canonical string order and the store's byte
    /// order disagree (`<` + U+0338 is canonically `≮`, which sorts after `a`; its bytes sort
    /// before) once returned the names of tenants sorting between `<` and the caller's prefix.
    @Test func aCraftedCursorListsNoOtherTenantsNames() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            for user in ["aaron", "Bob", "alice"] {
                let r = try await client.upload(Fixture.png(), jobId: "secret-\(user)", headers: try await env.auth(user))
                #expect(r.status == .created)
            }
            let alice = try await env.auth("alice")
            for raw in ["<\u{0338}", "\u{212A}", "A", "", "alice", "aaron/", "alicf"] {
                let cursor = Data(raw.utf8).base64EncodedString()
                let r = try await client.json(.post, "/storage/v1/object/list-v2/assets", headers: alice, ["prefix": "", "cursor": cursor])
                #expect(!r.text.contains("aaron") && !r.text.contains("Bob") && !r.text.contains("secret-aaron"), "cursor \(raw): \(r.text)")
                if !raw.isEmpty, !raw.hasBytePrefix("alice/") {
                    #expect(r.status == .badRequest, "a cursor outside the caller's names is refused: \(raw)")
                }
            }
            // The folder view and the Assets API listing keep to the caller's names too.
            let folder = try await client.json(.post, "/storage/v1/object/list/assets", headers: alice, ["prefix": ""])
            #expect(!folder.text.contains("aaron") && !folder.text.contains("Bob"))
            let assets = try await client.request(.get, "/v1/assets?cursor=%3C%CC%B8", headers: alice)
            #expect(assets.status == .badRequest && !assets.text.contains("aaron"))
        }
    }

    /// A URL signed for an object's old bytes stops working when the object is overwritten, by
    /// the Assets API's PUT and by a Supabase upsert; the new object's URL works.
    @Test func anOverwriteEndsTheOldBytesLinks() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            var put = alice
            put[.contentType] = "image/png"
            let first = try await client.request(.put, "/v1/assets/alice/job/pic.png", headers: put, body: Fixture.png(2000))
            #expect(first.status == .created, "\(first.text)")
            let oldURL = TestEnvironment.local(first.json["url"] as! String)
            #expect(try await client.request(.get, oldURL).status == .ok)
            let newBytes = Fixture.png(2500)
            let second = try await client.request(.put, "/v1/assets/alice/job/pic.png", headers: put, body: newBytes)
            #expect(second.status == .ok || second.status == .created, "\(second.text)")
            let stale = try await client.request(.get, oldURL)
            #expect(stale.status == .forbidden && stale.errorCode == "url_expired", "\(stale.status) \(stale.text)")
            let fresh = try await client.request(.get, TestEnvironment.local(second.json["url"] as! String))
            #expect(fresh.status == .ok && fresh.bytes == newBytes)

            // The Storage API: sign, upsert, and the old link is dead.
            let signed = try await client.json(.post, "/storage/v1/object/sign/assets/alice/job/pic.png", headers: alice, ["expiresIn": 600])
            let link = try #require(signed.json["signedURL"] as? String)
            #expect(try await client.request(.get, "/storage/v1" + link).status == .ok)
            var upsert = alice
            upsert[.contentType] = "image/png"
            upsert[HTTPField.Name("x-upsert")!] = "true"
            let replaced = try await client.request(.post, "/storage/v1/object/assets/alice/job/pic.png", headers: upsert, body: Fixture.png(100))
            #expect(replaced.status == .ok, "\(replaced.text)")
            let after = try await client.request(.get, "/storage/v1" + link)
            #expect(after.status == .forbidden && after.errorCode == "url_expired")
        }
    }

    /// Anyone may sign objects of a public bucket; when the bucket is made private, every link
    /// minted before ends — answered from the pipeline or by the router alike.
    @Test func makingABucketPrivateEndsItsLinks() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "pub", "public": true]).status == .ok)
            var up = try await env.auth("alice")
            up[.contentType] = "image/png"
            #expect(try await client.request(.post, "/storage/v1/object/pub/alice/x.png", headers: up, body: Fixture.png(500)).status == .ok)
            let anon: HTTPFields = [.authorization: "Bearer " + env.jwt.apiKey(role: .anon)]
            let signed = try await client.json(.post, "/storage/v1/object/sign/pub/alice/x.png", headers: anon, ["expiresIn": 3600])
            let link = "/storage/v1" + (try #require(signed.json["signedURL"] as? String))
            // Twice: the second answer may come from the pipeline's caches.
            #expect(try await client.request(.get, link).status == .ok)
            #expect(try await client.request(.get, link).status == .ok)
            let privateNow = try await client.json(.put, "/storage/v1/bucket/pub", headers: service, ["public": false])
            #expect(privateNow.status == .ok, "\(privateNow.text)")
            for target in [link, link + "&download=x.png"] {
                let r = try await client.request(.get, target)
                #expect(r.status == .forbidden && r.errorCode == "url_expired", "\(target): \(r.status) \(r.text)")
            }
            #expect(try await client.request(.get, "/storage/v1/object/public/pub/alice/x.png").status == .notFound)
            // A setting that leaves visibility alone keeps links.
            let fresh = try await client.json(
                .post, "/storage/v1/object/sign/pub/alice/x.png", headers: try await env.auth("alice"), ["expiresIn": 3600])
            let freshLink = "/storage/v1" + (try #require(fresh.json["signedURL"] as? String))
            #expect(
                try await client.json(.put, "/storage/v1/bucket/pub", headers: service, ["public": false, "file_size_limit": 100_000]).status == .ok)
            #expect(try await client.request(.get, freshLink).status == .ok)
        }
    }
}
