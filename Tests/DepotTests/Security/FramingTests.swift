import DepotCore
import DepotHTTP
import Foundation
import Glibc
import HTTPTypes
import NIOCore
import Testing

/// The second attack review of issue 14, over raw sockets: request framing no route can take is
/// refused with a clear error (never a 500), and nothing is stored or used up; one address cannot
/// hold every connection.
@Suite("Security: framing and connections")
struct FramingTests {
    /// One request on a new connection: its status and body (nil when none came).
    static func send(_ port: Int, _ head: String, body: [UInt8] = []) async throws -> SlowWire.Reply? {
        try await RawSocket.blocking { try SlowWire.exchange(port, head, body: body) }
    }

    static func code(_ reply: SlowWire.Reply?) -> String? { (reply?.json["error"] as? [String: Any])?["code"] as? String }

    /// A chunked body whose framing is wrong once cost a 500 (and an error in the log) on every
    /// upload route, a signed upload URL's included: now a 400 `invalid_request`, nothing stored,
    /// and the upload URL still good for one upload.
    @Test func malformedChunkedBodiesAreA400AndNothingIsStored() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let service = try await env.auth("svc", role: .serviceRole)
            let signed = try await client.json(.post, "/storage/v1/object/upload/sign/assets/alice/signed.png", headers: service, [String: Any]())
            let uploadURL = try #require(signed.json["url"] as? String)
            let auth = "Authorization: Bearer \(token)\r\nContent-Type: image/png\r\n"
            let targets = [
                "POST /v1/assets?jobId=j HTTP/1.1\r\n\(auth)", "PUT /v1/assets/alice/j/x.png HTTP/1.1\r\n\(auth)",
                "POST /storage/v1/object/assets/alice/x.png HTTP/1.1\r\n\(auth)",
                "PUT /storage/v1/object/assets/alice/x.png HTTP/1.1\r\nx-upsert: true\r\n\(auth)",
                "PUT /storage/v1\(uploadURL) HTTP/1.1\r\nContent-Type: image/png\r\n",
            ]
            let png = Fixture.png()
            let bodies: [[UInt8]] = [
                Array("zz\r\nabc\r\n0\r\n\r\n".utf8), Array("-3\r\nabc\r\n0\r\n\r\n".utf8), Array("FFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n".utf8),
                // A whole PNG in one chunk, not followed by its CRLF.
                Array("\(String(png.count, radix: 16))\r\n".utf8) + png + Array("XY0\r\n\r\n".utf8),
            ]
            for target in targets {
                for (i, body) in bodies.enumerated() {
                    let head = target + "Host: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    let reply = try await Self.send(client.port, head, body: body)
                    let text = String(decoding: reply?.body ?? [], as: UTF8.self)
                    #expect(reply?.status == 400 && text.contains("framing"), "\(target.prefix(30)) body \(i): \(reply?.status ?? 0) \(text)")
                }
            }
            #expect(try await env.snapshot().objects.isEmpty)
            #expect(try await env.snapshot().blobFiles == 0)
            // The signed upload URL was not used up by the refusals.
            let good = try await client.request(.put, "/storage/v1" + uploadURL, headers: [.contentType: "image/png"], body: Fixture.png())
            #expect(good.status == .ok, "\(good.text)")
        }
    }

    /// A transfer coding other than `chunked` alone would store the body still encoded (or frame
    /// it differently from a proxy in front): 501. An expectation other than `100-continue`: 417.
    /// Both answered before the body is read, the connection closed, nothing stored.
    @Test func unknownCodingsAndExpectationsAreRefused() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let head = SlowWire.uploadHead(token: try await env.token("alice"), length: nil)
            let chunk = "8\r\n\u{89}PNG\r\n\u{1A}\n\r\n0\r\n\r\n"
            for (coding, status, code) in [
                ("gzip, chunked", 501, "not_implemented"), ("xchunked", 501, "not_implemented"), ("gzip", 501, "not_implemented"),
            ] {
                let request = head.replacingOccurrences(of: "Transfer-Encoding: chunked", with: "Transfer-Encoding: \(coding)") + chunk
                let reply = try await Self.send(client.port, request)
                #expect(reply?.status == status && Self.code(reply) == code, "\(coding): \(reply?.status ?? 0)")
            }
            for expect in ["200-ok", "100-continue, 200-ok"] {
                let request = head.replacingOccurrences(of: "\r\n\r\n", with: "\r\nExpect: \(expect)\r\n\r\n") + chunk
                let reply = try await Self.send(client.port, request)
                #expect(reply?.status == 417 && Self.code(reply) == "expectation_failed", "\(expect): \(reply?.status ?? 0)")
            }
            #expect(try await env.snapshot().objects.isEmpty)
            // What clients send is still taken, in any case and with spaces.
            let fine = head.replacingOccurrences(of: "Transfer-Encoding: chunked", with: "Transfer-Encoding:  Chunked ")
                .replacingOccurrences(of: "\r\n\r\n", with: "\r\nExpect: 100-Continue\r\n\r\n")
            let png = Fixture.png()
            let body = Array("\(String(png.count, radix: 16))\r\n".utf8) + png + Array("\r\n0\r\n\r\n".utf8)
            let stored = try await RawSocket.blocking { () throws -> SlowWire.Reply? in
                let fd = try SlowWire.connect(client.port)
                defer { close(fd) }
                guard SlowWire.send(fd, Array(fine.utf8) + body) else { return nil }
                let first = SlowWire.response(fd, within: .seconds(20))
                // The interim 100 Continue, then the upload's answer.
                return first?.status == 100 ? SlowWire.response(fd, within: .seconds(5)) ?? first : first
            }
            #expect(stored?.status == 100 || stored?.status == 201, "\(stored?.status ?? 0)")
            #expect(try await env.snapshot().objects.count == 1, "a chunked upload with 100-continue is stored")
        }
    }

    /// One address may hold `maxConnectionsPerAddress` connections; one more is closed unanswered
    /// as soon as it is accepted, and one is taken again once another closes.
    @Test func oneAddressCannotHoldEveryConnection() async throws {
        let env = try await SlowClientTests.env { $0.maxConnectionsPerAddress = 3 }
        try await env.live { client in
            let port = client.port
            let (served, beyond, after) = try await RawSocket.blocking { () throws -> (Int, Bool, Int?) in
                var open: [Int32] = []
                defer { open.forEach { close($0) } }
                // The test client's own connection may hold one of the three.
                for _ in 0..<3 {
                    let fd = try SlowWire.connect(port)
                    guard SlowWire.send(fd, SlowClientTests.health), SlowWire.response(fd)?.status == 200 else {
                        close(fd)
                        break
                    }
                    open.append(fd)
                }
                let extra = try SlowWire.connect(port)
                defer { close(extra) }
                SlowWire.send(extra, SlowClientTests.health)
                let beyond = SlowWire.response(extra, within: .seconds(2)) == nil && SlowWire.waitForClose(extra, within: .seconds(2))
                close(open.removeFirst())
                // The server counts the closed one out once it has seen the close: try for a while.
                var after: Int? = nil
                for _ in 0..<50 where after == nil {
                    usleep(100_000)
                    let again = try SlowWire.connect(port)
                    defer { close(again) }
                    after = SlowWire.send(again, SlowClientTests.health) ? SlowWire.response(again, within: .seconds(2))?.status : nil
                }
                return (open.count + 1, beyond, after)
            }
            #expect(served >= 2, "connections up to the cap are served")
            #expect(beyond, "a connection beyond the cap is closed unanswered")
            #expect(after == 200, "one is taken again once another closes")
        }
    }
}
