import Crypto
import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// JWTs as an attacker writes them (issue 14, items 8 and 9): tenant ids that are one path
/// segment in NFC and compared as bytes; `nbf`, `iat`, a missing `role` and the header's `alg`.
@Suite("Security: tokens and tenant ids")
struct TokenTests {
    /// A compact JWT with exactly this header and payload, HMAC-SHA256 with `secret`.
    static func jwt(header: String = #"{"alg":"HS256","typ":"JWT"}"#, _ payload: [String: Any], secret: String) throws -> String {
        func part(_ data: Data) -> String { Base64URL.encode(Array(data)) }
        let input = part(Data(header.utf8)) + "." + part(try JSONSerialization.data(withJSONObject: payload))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + Base64URL.encode(Array(mac))
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    @Test func tenantIDsAreOneSegmentInNFCComparedAsBytes() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            // Kate stores a file.
            let kate = try await client.upload(Fixture.png(), headers: try await env.auth("Kate"))
            #expect(kate.status == .created)
            // The Kelvin sign is canonically K: as a sub it would have shared Kate's folder.
            for sub in ["\u{212A}ate", "alice/job1", "Jose\u{0301}", "..", "a\u{0}b", "gnp\u{202E}"] {
                let token = try Self.jwt(["sub": sub, "role": "authenticated", "exp": Self.now + 600], secret: env.secret)
                let auth: HTTPFields = [.authorization: "Bearer \(token)"]
                let list = try await client.request(.get, "/v1/assets", headers: auth)
                #expect(list.status == .unauthorized && !list.text.contains("Kate"), "\(sub.unicodeScalars.map { $0.value }): \(list.text)")
                let up = try await client.upload(Fixture.png(), headers: auth)
                #expect(up.status == .unauthorized)
            }
            // A precomposed (NFC) name is a fine tenant.
            let jose = try Self.jwt(["sub": "Jos\u{00E9}", "role": "authenticated", "exp": Self.now + 600], secret: env.secret)
            let up = try await client.upload(Fixture.png(), headers: [.authorization: "Bearer \(jose)"])
            #expect(up.status == .created && (up.json["path"] as? String)?.hasPrefix("Jos\u{00E9}/") == true)
            #expect(try await env.snapshot().objects.count == 2)
        }
    }

    @Test func claimsAndHeaderAreChecked() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let secret = env.secret
            let valid: [String: Any] = ["sub": "alice", "role": "authenticated", "exp": Self.now + 600]
            func status(_ token: String) async throws -> (HTTPResponse.Status, String?) {
                let r = try await client.request(.get, "/v1/assets", headers: [.authorization: "Bearer \(token)"])
                return (r.status, r.errorCode)
            }
            #expect(try await status(try Self.jwt(valid, secret: secret)).0 == .ok)
            // nbf and iat in the future (past the leeway) are refused; within it, accepted.
            var later = valid
            later["nbf"] = Self.now + 3600
            #expect(try await status(try Self.jwt(later, secret: secret)) == (.unauthorized, "unauthenticated"))
            later["nbf"] = Self.now + 10
            #expect(try await status(try Self.jwt(later, secret: secret)).0 == .ok)
            var issued = valid
            issued["iat"] = Self.now + 3600
            #expect(try await status(try Self.jwt(issued, secret: secret)) == (.unauthorized, "unauthenticated"))
            // The header's alg must be HS256: `none`, another HMAC, a key confusion.
            for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS384","typ":"JWT"}"#, #"{"alg":"RS256","typ":"JWT"}"#, #"{"typ":"JWT"}"#] {
                #expect(try await status(try Self.jwt(header: header, valid, secret: secret)).0 == .unauthorized, "\(header)")
            }
            let unsigned =
                try Self.jwt(header: #"{"alg":"none"}"#, valid, secret: secret).split(separator: ".").prefix(2).joined(separator: ".") + "."
            #expect(try await status(unsigned).0 == .unauthorized)
            // No role is anon: public reads, no writes, no listing.
            var noRole = valid
            noRole["role"] = nil
            let anonLike = [HTTPField.Name.authorization: "Bearer \(try Self.jwt(noRole, secret: secret))"]
            let upload = try await client.upload(Fixture.png(), headers: HTTPFields(anonLike.map { HTTPField(name: $0.key, value: $0.value) }))
            #expect(upload.status == .forbidden, "\(upload.text)")
            #expect(try await env.snapshot().objects.isEmpty)
        }
    }

    /// Verified tokens are kept (``ProjectJWT``'s cache): a hit still checks the times, and only
    /// the exact bytes of a verified token hit.
    @Test func aKeptTokenIsStillCheckedAndMatchedAsBytes() async throws {
        let secret = "kept-token-secret-0123456789abcdef0123456789"
        let jwt = await ProjectJWT(secret: secret)
        let now = Date(timeIntervalSince1970: TimeInterval(Self.now))
        // A token whose text holds a "K" (the Kelvin sign U+212A equals it as a Swift String).
        var token = ""
        for i in 0..<1000 where !token.contains("K") {
            token = try Self.jwt(["sub": "alice\(i)", "role": "authenticated", "exp": Self.now + 600, "nbf": Self.now + 120], secret: secret)
        }
        #expect(token.contains("K"))
        // Not valid yet, then valid (kept), then expired: the kept token's times are checked.
        await #expect(throws: StorageError.self) { try await jwt.verify(token, now: now) }
        let who = try await jwt.verify(token, now: now.addingTimeInterval(120))
        #expect(who.role == .authenticated && who.subject?.hasPrefix("alice") == true)
        #expect(try await jwt.verify(token, now: now.addingTimeInterval(300)).subject == who.subject)
        do {
            _ = try await jwt.verify(token, now: now.addingTimeInterval(601))
            Issue.record("an expired kept token was accepted")
        } catch let e as StorageError {
            #expect(e.code == .tokenExpired)
        }
        // The same token spelled with U+212A for a K is another token: refused.
        let kelvin = token.replacingOccurrences(of: "K", with: "\u{212A}")
        #expect(kelvin == token)  // equal as Strings…
        #expect(!kelvin.utf8.elementsEqual(token.utf8))  // …but not as bytes
        await #expect(throws: StorageError.self) { try await jwt.verify(kelvin, now: now.addingTimeInterval(300)) }
        // A token with one changed signature bit is refused after the real one was kept.
        var bytes = Array(token.utf8)
        bytes[bytes.count - 2] = bytes[bytes.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        await #expect(throws: StorageError.self) { try await jwt.verify(String(decoding: bytes, as: UTF8.self), now: now.addingTimeInterval(300)) }
    }
}
