import DepotCore
import Foundation
import Glibc
import HTTPTypes
import NIOCore
import Testing

/// Behaviour that only shows on the wire, checked with a raw TCP socket.
@Suite("Wire details")
struct WireTests {
    /// Connects to 127.0.0.1:port, sends `head`, and returns what the server says within a moment.
    func exchange(port: Int, head: String, then body: [UInt8]? = nil) async throws -> (first: String, final: String) {
        try await RawSocket.blocking { try exchangeBlocking(port: port, head: head, then: body) }
    }

    func exchangeBlocking(port: Int, head: String, then body: [UInt8]?) throws -> (first: String, final: String) {
        let fd = try RawSocket.connect(port: port)
        defer { close(fd) }
        RawSocket.send(fd, Array(head.utf8))
        func receive() -> String {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buf, buf.count, 0)
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
        }
        let first = receive()
        if let body { RawSocket.send(fd, body) }
        var final = ""
        for _ in 0..<20 where !final.contains("\r\n\r\n{") { final += receive() }
        return (first, final)
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let png = Fixture.png(2 * 1024 * 1024)
            let head =
                "POST /v1/assets?jobId=wire HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: image/png\r\nContent-Length: \(png.count)\r\nExpect: 100-continue\r\n\r\n"
            let (first, final) = try await exchange(port: client.port, head: head, then: png)
            #expect(first.hasPrefix("HTTP/1.1 100 Continue"))
            #expect(final.contains("HTTP/1.1 201"))
        }
    }

    @Test func tamperedAndForeignDownloadTokens() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let a = try await client.upload(Fixture.png(), headers: try await env.auth("alice"))
            let b = try await client.upload(Fixture.png(), headers: try await env.auth("alice"))
            let urlA = TestEnvironment.local(a.json["url"] as! String)
            let urlB = TestEnvironment.local(b.json["url"] as! String)
            let tokenB = String(urlB.split(separator: "token=")[1])
            let pathA = urlA.split(separator: "?")[0]
            let last = urlA.last!
            let tampered = String(urlA.dropLast()) + (last == "A" ? "B" : "A")
            for (url, code) in [
                (tampered, "signature_invalid"), ("\(pathA)?token=\(tokenB)", "signature_invalid"),
                (String(pathA), "signature_invalid"), ("\(pathA)?token=", "signature_invalid"),
            ] {
                let r = try await client.request(.get, url)
                #expect(r.status == .forbidden, "\(url)")
                #expect(r.errorCode == code)
                let h = try await client.request(.head, url)
                #expect(h.status == .forbidden)
            }
            #expect(try await client.request(.get, urlA).status == .ok)
        }
    }
}
