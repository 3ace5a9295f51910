import Depot
import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import Testing

/// The Storage API under a rules file (`--policies`): each refusal is the clear error with
/// nothing stored, changed or lost; each allowance works end to end.
@Suite("Access rules over HTTP")
struct AccessRulesHTTPTests {
    static func environment(_ yaml: String) async throws -> TestEnvironment {
        let policy = try AccessRulesFile.parse(yaml, source: "test")
        return try await TestEnvironment.make { $0.accessPolicy = policy }
    }

    static func array(_ r: LiveClient.Reply) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(r.bytes))) as? [[String: Any]] ?? []
    }

    /// Supabase's own client tests run against policies that let the anon role do everything:
    /// here in one bucket, with the anon key alone, from making the bucket to deleting it.
    @Test func anonMayDoEverythingInOneBucketAndNothingElsewhere() async throws {
        let env = try await Self.environment(
            """
            rules:
              - name: anything in open
                buckets: open
                roles: [anon]
                allow: all
                paths: "**"
              - name: and the bucket itself
                buckets: open
                roles: [anon]
                allow: bucket_admin
            """)
        try await env.live { client in
            let anon: HTTPFields = [.authorization: "Bearer \(try await env.token(nil, role: .anon))"]
            let service = try await env.auth("svc", role: .serviceRole)
            let png = Fixture.png(900)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: anon, ["name": "open"]).status == .ok)
            let other = try await client.json(.post, "/storage/v1/bucket", headers: anon, ["name": "other"])
            #expect(other.status == .badRequest && other.json["statusCode"] as? String == "403", "\(other.text)")
            #expect(try await env.service.metadata.bucket(named: "other") == nil)
            let buckets = Self.array(try await client.request(.get, "/storage/v1/bucket", headers: anon)).compactMap { $0["name"] as? String }
            #expect(buckets == ["open"], "only the buckets a rule lets it manage")

            let up = try await client.request(.post, "/storage/v1/object/open/folder/a.png", headers: anon + [.contentType: "image/png"], body: png)
            #expect(up.status == .ok, "\(up.text)")
            let read = try await client.request(.get, "/storage/v1/object/authenticated/open/folder/a.png", headers: anon)
            #expect(read.bytes == png)
            let list = try await client.json(.post, "/storage/v1/object/list/open", headers: anon, ["prefix": "folder"])
            #expect(Self.array(list).compactMap { $0["name"] as? String } == ["a.png"])
            let signed = try await client.json(.post, "/storage/v1/object/sign/open/folder/a.png", headers: anon, ["expiresIn": 60])
            let url = "/storage/v1" + (signed.json["signedURL"] as? String ?? "")
            #expect(try await client.request(.get, url).bytes == png)
            let move = try await client.json(
                .post, "/storage/v1/object/move", headers: anon, ["bucketId": "open", "sourceKey": "folder/a.png", "destinationKey": "b.png"])
            #expect(move.status == .ok, "\(move.text)")
            let copy = try await client.json(
                .post, "/storage/v1/object/copy", headers: anon, ["bucketId": "open", "sourceKey": "b.png", "destinationKey": "c.png"])
            #expect(copy.status == .ok, "\(copy.text)")

            // Elsewhere: the assets bucket (service-made objects) is out of reach, nothing changes.
            let theirs = try await client.request(
                .post, "/storage/v1/object/assets/alice/x.png", headers: service + [.contentType: "image/png"], body: png)
            #expect(theirs.status == .ok)
            let before = try await env.snapshot()
            let write = try await client.request(
                .post, "/storage/v1/object/assets/alice/y.png", headers: anon + [.contentType: "image/png"], body: png)
            #expect(write.status == .forbidden || write.json["statusCode"] as? String == "403", "\(write.text)")
            let steal = try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/x.png", headers: anon)
            #expect(steal.status != .ok)
            let remove = try await client.json(.delete, "/storage/v1/object/assets", headers: anon, ["prefixes": ["alice/x.png"]])
            #expect(Self.array(remove).isEmpty)
            #expect(try await env.snapshot() == before)

            let removed = try await client.json(.delete, "/storage/v1/object/open", headers: anon, ["prefixes": ["b.png", "c.png"]])
            #expect(Self.array(removed).count == 2)
            #expect(try await client.request(.post, "/storage/v1/bucket/open/empty", headers: anon).status == .ok)
            #expect(try await client.request(.delete, "/storage/v1/bucket/open", headers: anon).status == .ok)
            #expect(try await env.service.metadata.bucket(named: "open") == nil)
        }
    }

    /// A `bucket_admin` rule on every bucket (Supabase's test set-up) manages the project's
    /// buckets, never the Assets API's two: those stay the service role's (else anyone could make
    /// every tenant's private assets public).
    @Test func bucketAdminOnEveryBucketSparesTheAssetsBuckets() async throws {
        let env = try await Self.environment(
            """
            rules:
              - name: anon manages buckets
                buckets: "*"
                roles: anon
                allow: bucket_admin
            """)
        try await env.live { client in
            let anon: HTTPFields = [.authorization: "Bearer \(try await env.token(nil, role: .anon))"]
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: anon, ["name": "mine"]).status == .ok)
            let before = try await env.snapshot()
            for name in ["assets", "public-assets"] {
                let flip = try await client.json(.put, "/storage/v1/bucket/\(name)", headers: anon, ["public": name == "assets"])
                #expect(flip.json["statusCode"] as? String == "403" || flip.json["statusCode"] as? String == "404", "\(name): \(flip.text)")
                #expect(try await client.request(.delete, "/storage/v1/bucket/\(name)", headers: anon).status != .ok)
                #expect(try await client.request(.post, "/storage/v1/bucket/\(name)/empty", headers: anon).status != .ok)
            }
            #expect(try await env.snapshot() == before, "the Assets buckets are unchanged")
            #expect(try await env.service.metadata.bucket(named: "assets")?.isPublic == false)
            let names = Self.array(try await client.request(.get, "/storage/v1/bucket", headers: anon)).compactMap { $0["name"] as? String }
            #expect(names == ["mine"], "\(names)")
        }
    }

    /// What anon writes is charged to one tenant (`Identity.anonymousOwner`): a drop box open to
    /// anon cannot fill the disk past the per-tenant quota, the refusal stores nothing, a delete
    /// gives the room back, and users keep their own quota.
    @Test func anonWritesShareOneQuota() async throws {
        let policy = try AccessRulesFile.parse(
            """
            rules:
              - name: anon drop box
                buckets: drop
                roles: anon
                allow: [insert, read, delete]
                paths: "**"
              - name: users in their folder
                buckets: drop
                roles: authenticated
                allow: all
                paths: "{sub}/**"
            """, source: "test")
        let env = try await TestEnvironment.make { s in
            s.accessPolicy = policy
            s.quota.bytes = 5000
            s.quota.objects = 2
            s.quota.pendingUploads = 1
        }
        #expect(!ProjectJWT.isTenantID(Identity.anonymousOwner), "no token's sub can be the anonymous owner")
        try await env.live { client in
            let anon: HTTPFields = [.authorization: "Bearer \(try await env.token(nil, role: .anon))", .contentType: "image/png"]
            let alice = try await env.auth("alice") + [.contentType: "image/png"]
            let service = try await env.auth("svc", role: .serviceRole)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "drop"]).status == .ok)
            #expect(try await client.request(.post, "/storage/v1/object/drop/a.png", headers: anon, body: Fixture.png(2000)).status == .ok)
            let before = try await env.snapshot()
            let big = try await client.request(.post, "/storage/v1/object/drop/b.png", headers: anon, body: Fixture.png(3500))
            #expect(big.json["statusCode"] as? String == "413" && big.json["error"] as? String == "Payload too large", "\(big.text)")
            #expect(big.text.contains("5000"), "\(big.text)")
            #expect(try await env.snapshot() == before, "a refused write stores nothing")
            // A user's quota is its own.
            #expect(try await client.request(.post, "/storage/v1/object/drop/alice/a.png", headers: alice, body: Fixture.png(4000)).status == .ok)
            // Objects: the second fits, the third does not.
            #expect(try await client.request(.post, "/storage/v1/object/drop/c.png", headers: anon, body: Fixture.png(100)).status == .ok)
            let third = try await client.request(.post, "/storage/v1/object/drop/d.png", headers: anon, body: Fixture.png(100))
            #expect(third.json["statusCode"] as? String == "413", "\(third.text)")
            #expect(try await env.service.metadata.usage(of: Identity.anonymousOwner, now: Date()).objects == 2)
            // An anon token with a sub is anon all the same: no quota of its own.
            let anonWithSub: HTTPFields = [.authorization: "Bearer \(try await env.token("zed", role: .anon))", .contentType: "image/png"]
            let zed = try await client.request(.post, "/storage/v1/object/drop/z.png", headers: anonWithSub, body: Fixture.png(100))
            #expect(zed.json["statusCode"] as? String == "413", "\(zed.text)")
            // A delete gives the room back; the removed row shows no owner, as upstream.
            let removed = try await client.json(.delete, "/storage/v1/object/drop", headers: anon, ["prefixes": ["c.png"]])
            #expect(Self.array(removed).map { $0["owner"] as? String } == [""], "\(removed.text)")
            #expect(try await client.request(.post, "/storage/v1/object/drop/d.png", headers: anon, body: Fixture.png(100)).status == .ok)
            // Open signed upload URLs: one at most for all of anon.
            #expect(try await client.request(.delete, "/storage/v1/object/drop/d.png", headers: anon).status == .ok)
            let first = try await client.json(.post, "/storage/v1/object/upload/sign/drop/e.png", headers: anon, [:])
            #expect(first.status == .ok, "\(first.text)")
            let second = try await client.json(.post, "/storage/v1/object/upload/sign/drop/f.png", headers: anon, [:])
            #expect(second.json["statusCode"] as? String == "429", "\(second.text)")
        }
    }

    /// Shared team folders from custom claims (nested, as Supabase Auth puts them in
    /// `app_metadata`): members read, list and sign their team's folder; only editors write.
    @Test func teamFoldersFromClaims() async throws {
        let env = try await Self.environment(
            """
            rules:
              - name: members read their team's folder
                buckets: teams
                roles: authenticated
                allow: [read, list, sign]
                paths: "{claims.app_metadata.team}/**"
              - name: editors write there
                buckets: teams
                roles: authenticated
                when: claims.app_metadata.role == "editor"
                allow: [insert, update, delete]
                paths: "{claims.app_metadata.team}/**"
            """)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let editor = try env.auth("ed", claims: ["app_metadata": ["team": "t1", "role": "editor"]])
            let viewer = try env.auth("vi", claims: ["app_metadata": ["team": "t1", "role": "viewer"]])
            let outsider = try env.auth("ou", claims: ["app_metadata": ["team": "t2", "role": "editor"]])
            let noClaims = try await env.auth("nc")
            let png = Fixture.png(700)
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "teams"]).status == .ok)
            #expect(
                try await client.request(.post, "/storage/v1/object/teams/t2/secret.png", headers: service + [.contentType: "image/png"], body: png)
                    .status == .ok)

            let up = try await client.request(.post, "/storage/v1/object/teams/t1/plan.png", headers: editor + [.contentType: "image/png"], body: png)
            #expect(up.status == .ok, "\(up.text)")
            let before = try await env.snapshot()
            for (who, name) in [(viewer, "t1/v.png"), (outsider, "t1/o.png"), (noClaims, "t1/n.png"), (editor, "t2/e.png")] {
                let r = try await client.request(.post, "/storage/v1/object/teams/\(name)", headers: who + [.contentType: "image/png"], body: png)
                #expect(r.json["statusCode"] as? String == "403", "\(name): \(r.text)")
            }
            let viewerDelete = try await client.json(.delete, "/storage/v1/object/teams", headers: viewer, ["prefixes": ["t1/plan.png"]])
            #expect(Self.array(viewerDelete).isEmpty)
            #expect(try await env.snapshot() == before, "refused writes and deletes change nothing")

            #expect(try await client.request(.get, "/storage/v1/object/authenticated/teams/t1/plan.png", headers: viewer).bytes == png)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/teams/t1/plan.png", headers: outsider).status != .ok)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/teams/t2/secret.png", headers: viewer).status != .ok)
            let root = try await client.json(.post, "/storage/v1/object/list/teams", headers: viewer, ["prefix": ""])
            #expect(Self.array(root).compactMap { $0["name"] as? String } == ["t1"], "\(root.text)")
            let v2 = try await client.json(.post, "/storage/v1/object/list-v2/teams", headers: outsider, ["prefix": ""])
            let names = (v2.json["objects"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names == ["t2/secret.png"], "\(v2.text)")
            let batch = try await client.json(
                .post, "/storage/v1/object/sign/teams", headers: viewer, ["expiresIn": 60, "paths": ["t1/plan.png", "t2/secret.png"]])
            let urls = Self.array(batch).map { $0["signedURL"] as? String }
            #expect(urls.count == 2 && urls[0] != nil && urls[1] == nil, "\(batch.text)")
        }
    }

    /// A rule granting `insert` but not `update`: a new object may be written, an upsert over it
    /// may not (upstream asks an upsert for both), and the stored bytes stay.
    @Test func anUpsertNeedsUpdateToo() async throws {
        let env = try await Self.environment(
            """
            rules:
              - {buckets: "*", roles: authenticated, allow: [insert, read], paths: "{sub}/**"}
            """)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "inbox"]).status == .ok)
            let first = Fixture.png(600)
            let up = try await client.request(
                .post, "/storage/v1/object/inbox/alice/a.png", headers: alice + [.contentType: "image/png"], body: first)
            #expect(up.status == .ok)
            var upsert = alice + [.contentType: "image/png"]
            upsert[HTTPField.Name("x-upsert")!] = "true"
            let again = try await client.request(.post, "/storage/v1/object/inbox/alice/a.png", headers: upsert, body: Fixture.png(650))
            #expect(again.json["statusCode"] as? String == "403", "\(again.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/inbox/alice/a.png", headers: alice).bytes == first)
            let delete = try await client.request(.delete, "/storage/v1/object/inbox/alice/a.png", headers: alice)
            #expect(delete.json["statusCode"] as? String == "403", "no delete rule")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/inbox/alice/a.png", headers: alice).bytes == first)
        }
    }

    /// A bucket's own rules, set by the service role, apply to its objects besides the server's
    /// rules (here the built-in one); a bad rule is refused with its reason and changes nothing.
    @Test func aBucketsOwnRulesApplyBesideTheServers() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            let anon: HTTPFields = [.authorization: "Bearer \(try await env.token(nil, role: .anon))"]
            let rules: [[String: Any]] = [
                ["roles": ["anon"], "allow": ["read", "list"], "paths": ["public/**"]],
                ["roles": "authenticated", "allow": "insert", "paths": ["inbox/**"]],
            ]
            let made = try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "gallery", "rules": rules])
            #expect(made.status == .ok, "\(made.text)")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "docs"]).status == .ok)
            let shown = try await client.request(.get, "/storage/v1/bucket/gallery", headers: service)
            #expect((shown.json["rules"] as? [[String: Any]])?.count == 2, "\(shown.text)")
            let png = Fixture.png(500)
            for bucket in ["gallery", "docs"] {
                for name in ["public/a.png", "private/b.png"] {
                    let r = try await client.request(
                        .post, "/storage/v1/object/\(bucket)/\(name)", headers: service + [.contentType: "image/png"], body: png)
                    #expect(r.status == .ok)
                }
            }
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/gallery/public/a.png", headers: anon).bytes == png)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/gallery/private/b.png", headers: anon).status != .ok)
            #expect(
                try await client.request(.get, "/storage/v1/object/authenticated/docs/public/a.png", headers: anon).status != .ok,
                "other buckets: not")
            let list = try await client.json(.post, "/storage/v1/object/list/gallery", headers: anon, ["prefix": "public"])
            #expect(Self.array(list).compactMap { $0["name"] as? String } == ["a.png"])
            let drop = try await client.request(
                .post, "/storage/v1/object/gallery/inbox/x.png", headers: alice + [.contentType: "image/png"], body: png)
            #expect(drop.status == .ok, "\(drop.text)")
            let own = try await client.request(
                .post, "/storage/v1/object/gallery/alice/y.png", headers: alice + [.contentType: "image/png"], body: png)
            #expect(own.status == .ok, "the server's rule still holds")

            // Bad rules, or rules from anyone but the service role: refused, nothing changed.
            for (auth, body, status, reason) in [
                (service, ["rules": [["buckets": "docs", "roles": "anon", "allow": "read", "paths": "**"]]], "400", "leave out 'buckets'"),
                (service, ["rules": [["roles": "anon", "allow": "bucket_admin"]]], "400", "bucket_admin"),
                (service, ["rules": [["roles": "anon", "allow": "fly", "paths": "**"]]], "400", "rule 1: unknown operation 'fly'"),
                (service, ["rules": [["roles": "anon", "allow": "read", "paths": 7]]], "400", "strings"),
                (service, ["rules": "anything"], "400", "array"),
                (alice, ["rules": [] as [Any]], "403", "service_role"),
            ] as [(HTTPFields, [String: Any], String, String)] {
                let r = try await client.json(.put, "/storage/v1/bucket/gallery", headers: auth, body)
                #expect(r.json["statusCode"] as? String == status && (r.json["message"] as? String ?? "").contains(reason), "\(body): \(r.text)")
            }
            let after = try await client.request(.get, "/storage/v1/bucket/gallery", headers: service)
            #expect((after.json["rules"] as? [[String: Any]])?.count == 2)

            // Cleared: anon reads nothing there any more.
            #expect(try await client.json(.put, "/storage/v1/bucket/gallery", headers: service, ["rules": NSNull()]).status == .ok)
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/gallery/public/a.png", headers: anon).status != .ok)
            #expect(try await client.request(.get, "/storage/v1/bucket/gallery", headers: service).json["rules"] == nil)
        }
    }

    /// `bucket_admin` reaches the bucket, not past the object rules: emptying it deletes only
    /// what the caller may delete.
    @Test func emptyingABucketDeletesOnlyWhatTheCallerMayDelete() async throws {
        let env = try await Self.environment(
            """
            rules:
              - {buckets: shared, roles: authenticated, allow: bucket_admin}
              - {buckets: shared, roles: authenticated, allow: [insert, delete], paths: "{sub}/**"}
            """)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: alice, ["name": "shared"]).status == .ok)
            let other = try await client.json(.post, "/storage/v1/bucket", headers: alice, ["name": "elsewhere"])
            #expect(other.json["statusCode"] as? String == "403")
            for name in ["alice/1.png", "alice/2.png", "bob/1.png"] {
                let r = try await client.request(
                    .post, "/storage/v1/object/shared/\(name)", headers: service + [.contentType: "image/png"], body: Fixture.png(300))
                #expect(r.status == .ok)
            }
            #expect(try await client.request(.post, "/storage/v1/bucket/shared/empty", headers: alice).status == .ok)
            let left = try await env.service.metadata.listObjects(in: "shared", prefix: "", after: nil, limit: 10).map(\.path.string)
            #expect(left == ["bob/1.png"])
            let delete = try await client.request(.delete, "/storage/v1/bucket/shared", headers: alice)
            #expect(delete.json["statusCode"] as? String == "409", "not empty: \(delete.text)")
        }
    }

    /// The other way round: `update` without `insert` may not upsert either, onto an existing
    /// object or a new name (POST with x-upsert, and PUT).
    @Test func anUpsertNeedsInsertToo() async throws {
        let env = try await Self.environment(
            """
            rules:
              - {buckets: "*", roles: authenticated, allow: [read, update, delete], paths: "{sub}/**"}
            """)
        try await env.live { client in
            let service = try await env.auth("svc", role: .serviceRole)
            let alice = try await env.auth("alice")
            #expect(try await client.json(.post, "/storage/v1/bucket", headers: service, ["name": "mv1"]).status == .ok)
            let first = Fixture.png(600)
            #expect(
                try await client.request(.post, "/storage/v1/object/mv1/alice/m.png", headers: service + [.contentType: "image/png"], body: first)
                    .status == .ok)
            var upsert = alice + [.contentType: "image/png"]
            upsert[HTTPField.Name("x-upsert")!] = "true"
            for (method, name) in [(HTTPRequest.Method.post, "m.png"), (.put, "m.png"), (.post, "new.png"), (.put, "new.png")] {
                let r = try await client.request(method, "/storage/v1/object/mv1/alice/\(name)", headers: upsert, body: Fixture.png(650))
                #expect(r.json["statusCode"] as? String == "403", "\(method) \(name): \(r.text)")
            }
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/mv1/alice/m.png", headers: alice).bytes == first)
            #expect(try await env.service.metadata.object(at: ObjectKey(bucket: "mv1", path: try ObjectPath("alice/new.png"))) == nil)
        }
    }
}
