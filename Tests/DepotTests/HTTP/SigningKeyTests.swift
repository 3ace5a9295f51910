import Crypto
import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import Synchronization
import Testing

/// User tokens signed with asymmetric keys from a JWKS (Supabase Auth's newer tokens): ES256 and
/// EdDSA beside the project secret's HS256, each token checked against the key its `kid` names,
/// a rotated-in key fetched on its first token, and every wrong token a clear 401 that stores
/// nothing.
@Suite("Asymmetric user tokens (JWKS)")
struct SigningKeyTests {
    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func es256AndEdDSATokensWorkBesideTheProjectSecret() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        let keys = TestSigningKeys()
        env.jwt.useSigningKeys(try await keys.signingKeys())
        try await env.live { client in
            // An ES256 user: uploads under its own id, lists, downloads, on both APIs.
            let alice = Self.bearer(try await keys.es256Token("alice"))
            let up = try await client.upload(Fixture.png(), jobId: "jwks", headers: alice)
            #expect(up.status == .created, "\(up.text)")
            let path = try #require(up.json["path"] as? String)
            #expect(path.hasPrefix("alice/jwks/"))
            let mine = try await client.request(.get, "/v1/assets", headers: alice)
            #expect(mine.status == .ok && mine.text.contains(path))
            let png = Fixture.png(2000)
            let stored = try await client.request(
                .post, "/storage/v1/object/assets/alice/es.png", headers: alice + [.contentType: "image/png"], body: png)
            #expect(stored.status == .ok, "\(stored.text)")
            #expect(try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/es.png", headers: alice).bytes == png)
            // Tenant rules hold for these tokens too.
            let theft = try await client.request(.get, "/storage/v1/object/authenticated/assets/bob/x.png", headers: alice)
            #expect(theft.status != .ok)
            // An EdDSA user, and the project secret's HS256 tokens, side by side.
            let bob = Self.bearer(try await keys.edToken("bob"))
            #expect(try await client.upload(Fixture.png(), jobId: "jwks", headers: bob).status == .created)
            #expect(try await client.upload(Fixture.png(), jobId: "hs", headers: try await env.auth("carol")).status == .created)
            // The role claim counts: an ES256 service_role token lists everyone.
            let service = Self.bearer(try await keys.es256Token(nil, role: .serviceRole))
            let all = try await client.request(.get, "/v1/assets", headers: service)
            #expect(all.text.contains("alice/jwks") && all.text.contains("bob/jwks") && all.text.contains("carol/hs"))
        }
    }

    @Test func wrongTokensAreRefusedClearlyAndStoreNothing() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        let keys = TestSigningKeys()
        let before = try await env.snapshot()
        try await env.live { client in
            func refusal(_ token: String, _ message: String, _ what: String) async throws {
                let r = try await client.upload(Fixture.png(), jobId: "bad", headers: Self.bearer(token))
                #expect(r.status == .unauthorized, "\(what): \(r.status) \(r.text)")
                #expect(r.text.contains(message), "\(what): \(r.text)")
            }
            // No JWKS loaded yet: a clear word, not a crash.
            try await refusal(try await keys.es256Token("alice"), "no signing keys (--jwks) are loaded", "before the JWKS")
            env.jwt.useSigningKeys(try await keys.signingKeys())
            try await refusal(try await keys.es256Token("alice", kid: "who"), "is not in the JWKS", "unknown kid")
            // ES256 named with the Ed25519 key's kid: the key's type decides the algorithm.
            try await refusal(try await keys.es256Token("alice", kid: keys.edKid), "signs with EdDSA", "alg of another key type")
            // Signed by a P-256 key that is not the JWKS's, under its kid.
            let impostor = TestSigningKeys(esKid: keys.esKid)
            try await refusal(try await impostor.es256Token("alice"), "invalid bearer token", "another key, same kid")
            try await refusal(try await keys.es256Token("alice", ttl: -10), "expired", "expired")
            // An ES256 header without a kid; algorithms never accepted.
            let parts = try await keys.es256Token("alice").split(separator: ".").map(String.init)
            for header in [#"{"alg":"ES256","typ":"JWT"}"#, #"{"alg":"none","typ":"JWT"}"#, #"{"alg":"ES384","kid":"\#(keys.esKid)"}"#] {
                let forged = Base64URL.encode(Array(header.utf8)) + "." + parts[1] + "." + parts[2]
                let r = try await client.upload(Fixture.png(), jobId: "bad", headers: Self.bearer(forged))
                #expect(r.status == .unauthorized, "\(header): \(r.text)")
                if !header.contains("ES256") { #expect(r.text.contains("is not accepted: HS256"), "\(header): \(r.text)") }
            }
            // HS256 with the kid of a JWKS key is still the project secret's (and a wrong MAC fails).
            let hs = try await env.token("alice").split(separator: ".").map(String.init)
            let hsWithKid = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(keys.esKid)"}"#.utf8)) + "." + hs[1] + "." + hs[2]
            #expect(try await client.upload(Fixture.png(), jobId: "bad", headers: Self.bearer(hsWithKid)).status == .unauthorized)
        }
        #expect(try await env.snapshot() == before)
    }

    @Test func aRotatedInKeyIsFetchedOnItsFirstTokenAndARemovedOneStops() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        let old = TestSigningKeys()
        let new = TestSigningKeys()
        env.jwt.useSigningKeys(try await old.signingKeys())
        let fetches = Atomic<Int>(0)
        let jwt = env.jwt
        jwt.onUnknownKey {
            fetches.add(1, ordering: .relaxed)
            // What the JWKS URL serves now: the new key only.
            jwt.useSigningKeys(try! await SigningKeys.parse(TestSigningKeys.jwks([new.esJWK])))
        }
        try await env.live { client in
            #expect(try await client.upload(Fixture.png(), jobId: "old", headers: Self.bearer(try await old.es256Token("alice"))).status == .created)
            // The first token with the new kid makes the JWKS be read again, and works.
            let first = try await client.upload(Fixture.png(), jobId: "new", headers: Self.bearer(try await new.es256Token("alice")))
            #expect(first.status == .created, "\(first.text)")
            #expect(fetches.load(ordering: .relaxed) == 1)
            #expect(try await client.upload(Fixture.png(), jobId: "new", headers: Self.bearer(try await new.es256Token("alice"))).status == .created)
            #expect(fetches.load(ordering: .relaxed) == 1)
            // The old key left the JWKS: its tokens, even one verified before, stop at once.
            let stale = try await client.upload(Fixture.png(), jobId: "old", headers: Self.bearer(try await old.es256Token("alice")))
            #expect(stale.status == .unauthorized)
        }
    }

    @Test func aJWKSIsReadStrictly() async throws {
        let keys = TestSigningKeys()
        var p384 = keys.esJWK
        p384["crv"] = "P-384"
        p384["kid"] = "p384"
        var mislabelled = keys.edJWK
        mislabelled["alg"] = "ES256"
        mislabelled["kid"] = "mislabelled"
        var noKid = keys.esJWK
        noKid.removeValue(forKey: "kid")
        var twinA = keys.edJWK
        twinA["kid"] = "twin"
        let twinB = ["kty": "EC", "crv": "P-256", "kid": "twin", "x": keys.esJWK["x"]!, "y": keys.esJWK["y"]!]
        var privateKey = keys.esJWK
        privateKey["kid"] = "private"
        privateKey["d"] = Base64URL.encode(Array(keys.es256.rawRepresentation))
        var signOnly = keys.edJWK
        signOnly["kid"] = "sign-only"
        var encryption = keys.edJWK
        encryption["kid"] = "enc"
        encryption["use"] = "enc"
        var injected = keys.edJWK
        injected["kid"] = "ed\n2026-12-02T00:00:00+0000 critical depot: FAKE"
        let set = try await SigningKeys.parse(
            TestSigningKeys.jwks([keys.esJWK, p384, mislabelled, noKid, twinA, twinB, privateKey, encryption, injected, keys.edJWK])
        )
        var withOps = try JSONSerialization.jsonObject(with: Data(TestSigningKeys.jwks([signOnly]))) as! [String: Any]
        var op = (withOps["keys"] as! [[String: Any]])[0]
        op["key_ops"] = ["sign"]
        withOps["keys"] = [op]
        await #expect(throws: StorageError.self) { _ = try await SigningKeys.parse(Array(try JSONSerialization.data(withJSONObject: withOps))) }

        #expect(set.kids == [keys.edKid, keys.esKid].sorted())
        #expect(set.skipped.count == 8, "\(set.skipped)")
        for (kid, reason) in [
            ("p384", "P-384"), ("mislabelled", "does not fit"), ("twin", "share this kid"), ("private", "a private key"), ("enc", "use is not sig"),
        ] {
            #expect(set.skipped.contains { $0.contains(kid) && $0.contains(reason) }, "\(kid): \(set.skipped)")
        }
        #expect(set.skipped.contains { $0.contains("no kid") })
        // A kid with a line break is refused, and never written raw.
        #expect(set.skipped.contains { $0.contains("control characters") } && set.skipped.allSatisfy { !$0.contains("\n") })
        for bad in [
            Array("not json".utf8), Array(#"{"keys":[]}"#.utf8), TestSigningKeys.jwks([p384]),
            [UInt8](repeating: 0x20, count: SigningKeys.maxBytes + 1),
        ] {
            await #expect(throws: StorageError.self) { _ = try await SigningKeys.parse(bad) }
        }
    }
}
