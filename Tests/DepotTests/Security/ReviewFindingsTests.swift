import DepotCore
import DepotHTTP
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// What an attacker's review of the issue-14 fixes found, each over real HTTP: the clear error,
/// and nothing stored or changed. (Key material in logs: `LogSecrecyTests`; clients that do not
/// read: `SlowClientTests`, `ShutdownTests`; the CLI: `CLITests`.)
@Suite("Security: the attack review's findings")
struct ReviewFindingsTests {
    /// Names and user ids with C1 controls, line separators, zero-width spaces, byte order marks or
    /// noncharacters display as other names: refused, nothing stored.
    @Test func hiddenCharactersAreRefusedInNamesAndUserIDs() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            var alice = try await env.auth("alice")
            alice[.contentType] = "image/png"
            // C1 control, line separator, zero-width space, BOM, noncharacters (BMP, plane 1,
            // U+FDD0), word joiner, soft hyphen, a tag character.
            for hidden in [
                "%C2%85", "%E2%80%A8", "%E2%80%8B", "%EF%BB%BF", "%EF%BF%BE", "%F0%9F%BF%BE", "%EF%B7%90", "%E2%81%A0", "%C2%AD", "%F3%A0%80%81",
            ] {
                let r = try await client.request(.post, "/storage/v1/object/assets/alice/a\(hidden)b.png", headers: alice, body: Fixture.png())
                #expect(r.json["statusCode"] as? String == "400" && r.text.contains("invisible"), "\(hidden): \(r.text)")
                let v1 = try await client.request(.put, "/v1/assets/alice/job/a\(hidden)b.png", headers: alice, body: Fixture.png())
                #expect(v1.status == .badRequest, "\(hidden): \(v1.text)")
            }
            // A zero-width joiner is part of emoji sequences: allowed.
            let family = try await client.request(
                .post, "/storage/v1/object/assets/alice/%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7.png", headers: alice, body: Fixture.png())
            #expect(family.status == .ok, "\(family.text)")
            #expect(try await env.snapshot().objects == ["assets/alice/\u{1F469}\u{200D}\u{1F467}.png"])
            for sub in ["alice\u{200B}", "alice\u{85}", "\u{FEFF}alice", "alice\u{2060}", "ali\u{AD}ce", "alice" + String(Unicode.Scalar(0xFDD0)!)] {
                let token = try TokenTests.jwt(["sub": sub, "role": "authenticated", "exp": TokenTests.now + 600], secret: env.secret)
                let r = try await client.request(.get, "/v1/assets", headers: [.authorization: "Bearer \(token)"])
                #expect(r.status == .unauthorized, "\(sub.unicodeScalars.map(\.value))")
            }
        }
    }

    /// A JWT has one spelling: padding or stray bits in any part, or a `crit` header Depot does
    /// not understand, are refused.
    @Test func tokensHaveOneSpellingAndNoCriticalExtensions() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let claims: [String: Any] = ["sub": "alice", "role": "authenticated", "exp": TokenTests.now + 600]
            let good = try TokenTests.jwt(claims, secret: env.secret)
            func status(_ token: String) async throws -> HTTPResponse.Status {
                try await client.request(.get, "/v1/assets", headers: [.authorization: "Bearer \(token)"]).status
            }
            #expect(try await status(good) == .ok)
            #expect(try await status(good + "=") == .unauthorized)
            let parts = good.split(separator: ".").map(String.init)
            #expect(try await status(parts[0] + "." + parts[1] + "==." + parts[2]) == .unauthorized)
            let crit = try TokenTests.jwt(header: #"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#, claims, secret: env.secret)
            #expect(try await status(crit) == .unauthorized)
        }
    }

    /// Each JSON body is as large as its kind of request needs: signing one object takes 64 KiB,
    /// not the batch's 1 MiB; creating an upload URL reads no more than 64 KiB of any body; a body
    /// whose transfer coding cannot be read is a 400, not a 413.
    @Test func bodiesAreBoundedByTheirRequestsKind() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = try await client.upload(Fixture.png(), headers: alice)
            let path = try #require(png.json["path"] as? String)
            let pad = String(repeating: "p", count: 100_000)
            let one = try await client.json(.post, "/storage/v1/object/sign/assets/\(path)", headers: alice, ["expiresIn": 60, "pad": pad])
            #expect(one.json["statusCode"] as? String == "413", "\(one.text)")
            let batch = try await client.json(
                .post, "/storage/v1/object/sign/assets", headers: alice, ["expiresIn": 60, "paths": [path], "pad": pad])
            #expect(batch.status == .ok, "\(batch.text)")
            let upload = try await client.request(
                .post, "/storage/v1/object/upload/sign/assets/alice/new.png", headers: alice, body: Array(repeating: 32, count: 100_000))
            #expect(upload.json["statusCode"] as? String == "413", "\(upload.text)")
            let token = try await env.token("alice")
            let odd = try await RawSocket.blocking {
                try SlowWire.exchange(
                    client.port,
                    "POST /v1/signed-urls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nTransfer-Encoding: xchunked\r\n\r\n{}"
                )
            }
            #expect(odd.map { $0.status == 400 || $0.status == 501 } ?? true, "\(odd.map { String(decoding: $0.body, as: UTF8.self) } ?? "closed")")
            #expect(try await env.snapshot().intents.isEmpty)
        }
    }

    /// Range units in any case; `If-Range` with a date honoured once `Last-Modified` is a strong
    /// validator (60 s old); `download=` names longer than 1,024 bytes refused.
    @Test func rangeUnitsIfRangeDatesAndLongDownloadNames() async throws {
        let clock = TestClock()
        let env = try await TestEnvironment.make(clock: clock.now)
        try await env.live { client in
            let alice = try await env.auth("alice")
            let bytes = Fixture.png(5000)
            let url = TestEnvironment.local(try #require(try await client.upload(bytes, headers: alice).json["url"] as? String))
            let upper = try await client.request(.get, url, headers: [.range: "BYTES=0-9"])
            #expect(upper.status == .partialContent && upper.bytes == Array(bytes[0..<10]))

            let whole = try await client.request(.get, url)
            let modified = try #require(whole.headers[.lastModified])
            var ifRange: HTTPFields = [.range: "bytes=10-19"]
            ifRange[HTTPField.Name("If-Range")!] = modified
            // Just written: its date could be shared by a replacement in the same second.
            let fresh = try await client.request(.get, url, headers: ifRange)
            #expect(fresh.status == .ok && fresh.bytes == bytes)
            clock.advance(120)
            let old = try await client.request(.get, url, headers: ifRange)
            #expect(old.status == .partialContent && old.bytes == Array(bytes[10..<20]))
            ifRange[HTTPField.Name("If-Range")!] = "Sun, 06 Nov 1994 08:49:37 GMT"
            let other = try await client.request(.get, url, headers: ifRange)
            #expect(other.status == .ok)

            let long = try await client.request(.get, url + "&download=" + String(repeating: "n", count: 1025))
            #expect(long.status == .badRequest && long.errorCode == "invalid_request", "\(long.text)")
            let fine = try await client.request(.get, url + "&download=" + String(repeating: "n", count: 1024))
            #expect(fine.status == .ok)
        }
    }

    /// A GET or HEAD that announces a body: no route reads one, so the server would only wait for
    /// it (for as long as the client keeps trickling). Refused at once, the connection closed;
    /// `Content-Length: 0` is fine.
    @Test func getAndHeadWithABodyAreRefusedAtOnce() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let url = TestEnvironment.local(
                try #require(try await client.upload(Fixture.png(), headers: try await env.auth("alice")).json["url"] as? String))
            for head in [
                "GET \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\nab",
                "GET \(url) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
            ] {
                let started = ContinuousClock.now
                let reply = try await RawSocket.blocking { () throws -> (SlowWire.Reply?, closed: Bool) in
                    let fd = try SlowWire.connect(client.port)
                    defer { close(fd) }
                    guard SlowWire.send(fd, head) else { return (nil, false) }
                    let reply = SlowWire.response(fd, within: .seconds(5))
                    return (reply, SlowWire.waitForClose(fd, within: .seconds(5)))
                }
                #expect(reply.0?.status == 400 && reply.closed, "\(head.prefix(4))")
                let text = String(decoding: reply.0?.body ?? [], as: UTF8.self)
                #expect(text.contains("no body"), "\(text)")
                #expect(ContinuousClock.now - started < .seconds(3))
            }
            // HEAD: the same refusal, without a body.
            let head = try await RawSocket.blocking { () throws -> (String, closed: Bool) in
                let fd = try SlowWire.connect(client.port)
                defer { close(fd) }
                SlowWire.send(fd, "HEAD \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
                var buf = [UInt8](repeating: 0, count: 4096)
                var text = ""
                let deadline = ContinuousClock.now + .seconds(5)
                while ContinuousClock.now < deadline {
                    let n = recv(fd, &buf, buf.count, 0)
                    if n == 0 { return (text, true) }
                    if n > 0 { text += String(decoding: buf[0..<n], as: UTF8.self) }
                }
                return (text, false)
            }
            #expect(head.0.hasPrefix("HTTP/1.1 400") && head.closed, "\(head)")
            let empty = try await RawSocket.blocking {
                try SlowWire.exchange(client.port, "GET \(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            }
            #expect(empty?.status == 200)
        }
    }
}
