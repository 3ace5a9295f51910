import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// Multipart bodies past the reader's bounds, streamed without a Content-Length to both upload
/// APIs: a 400 that names the problem, and nothing stored (no blob, no temp file, no row), even
/// when the file part was already read.
@Suite("Multipart bounds over HTTP")
struct MultipartBoundsTests {
    static let type = ("Content-Type", "multipart/form-data; boundary=depot-boundary-1234")

    static func chunks(_ body: [UInt8], _ size: Int) -> [[UInt8]] {
        stride(from: 0, to: body.count, by: size).map { Array(body[$0..<min($0 + size, body.count)]) }
    }

    static func message(_ reply: Streaming.Reply) -> String? {
        (reply.json["error"] as? [String: Any])?["message"] as? String ?? reply.json["message"] as? String
    }

    @Test func aHugePreambleIsRefusedAndStoresNothing() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let service = try await env.token("svc", role: .serviceRole)
            let created = try await client.json(.post, "/storage/v1/bucket", headers: [.authorization: "Bearer \(service)"], ["name": "img"])
            #expect(created.status == .ok)
            let before = try await env.snapshot()
            let preamble = Array(repeating: UInt8(ascii: "p"), count: 2 * 1024 * 1024) + Array("\r\n".utf8)
            let png = Fixture.png(5000)

            let assets = Fixture.multipart(fields: [("jobId", "j")], file: png)
            let a = try await Streaming.send(
                .POST, port: client.port, "/v1/assets", headers: [("Authorization", "Bearer \(token)"), Self.type],
                chunks: Self.chunks(preamble + assets, 64 * 1024))
            #expect(a.status == 400)
            #expect(a.errorCode == "invalid_request")
            #expect(Self.message(a) == "malformed multipart body: more than 1024 bytes before the first boundary")

            let supabase = Fixture.multipart(fields: [("cacheControl", "60")], fileField: "", file: png)
            let s = try await Streaming.send(
                .POST, port: client.port, "/storage/v1/object/img/alice/a.png", headers: [("Authorization", "Bearer \(service)"), Self.type],
                chunks: Self.chunks(preamble + supabase, 64 * 1024))
            #expect(s.status == 400)
            #expect(s.json["statusCode"] as? String == "400")
            #expect(Self.message(s) == "malformed multipart body: more than 1024 bytes before the first boundary")

            let after = try await env.snapshot()
            #expect(after == before, "stored state changed: \(before) → \(after)")

            // The same forms with a CRLF preamble, in 64-byte segments, are stored.
            let ok = try await Streaming.send(
                .POST, port: client.port, "/v1/assets", headers: [("Authorization", "Bearer \(token)"), Self.type],
                chunks: Self.chunks(Array("\r\n".utf8) + assets, 64))
            #expect(ok.status == 201, "\(String(decoding: ok.body, as: UTF8.self))")
            let okS = try await Streaming.send(
                .POST, port: client.port, "/storage/v1/object/img/alice/a.png", headers: [("Authorization", "Bearer \(service)"), Self.type],
                chunks: Self.chunks(Array("\r\n".utf8) + supabase, 64))
            #expect(okS.status == 200, "\(String(decoding: okS.body, as: UTF8.self))")
        }
    }

    @Test func aBadFormAfterTheFilePartStoresNothing() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let token = try await env.token("alice")
            let before = try await env.snapshot()
            let png = Fixture.png(200 * 1024)
            let file = Array(Fixture.multipart(fields: [("jobId", "j")], file: png).dropLast("--depot-boundary-1234--\r\n".utf8.count))
            func part(_ headers: String, _ body: String) -> [UInt8] {
                Array("--depot-boundary-1234\r\n\(headers)\r\n\r\n\(body)\r\n".utf8)
            }
            let close = Array("--depot-boundary-1234--\r\n".utf8)
            let cases: [(String, [UInt8], String)] = [
                (
                    "17 parts", file + (0..<15).flatMap { part("Content-Disposition: form-data; name=\"f\($0)\"", "v") } + close,
                    "malformed multipart body: more than 16 parts"
                ),
                (
                    "long headers",
                    file + part("Content-Disposition: form-data; name=\"a\"\r\nX-Pad: " + String(repeating: "x", count: 9000), "v") + close,
                    "malformed multipart body: part headers longer than 8192 bytes"
                ),
                (
                    "no closing boundary", file + Array("--depot-boundary-1234".utf8),
                    "malformed multipart body: the body ends after a boundary"
                ),
                (
                    "truncated", file + Array("--depot-boundary-1234\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv".utf8),
                    "malformed multipart body: the body ends inside a part"
                ),
                (
                    "a large part nobody reads", file + part("X-Nothing: 1", String(repeating: "z", count: 100 * 1024)) + close,
                    "malformed multipart body: more than 65536 bytes of parts were skipped unread"
                ),
            ]
            for (name, body, message) in cases {
                let r = try await Streaming.send(
                    .POST, port: client.port, "/v1/assets", headers: [("Authorization", "Bearer \(token)"), Self.type],
                    chunks: Self.chunks(body, 8192))
                #expect(r.status == 400, "\(name)")
                #expect(Self.message(r) == message, "\(name)")
                let after = try await env.snapshot()
                #expect(after == before, "\(name): stored state changed: \(before) → \(after)")
            }
            // The file alone with its closing boundary is stored.
            let ok = try await Streaming.send(
                .POST, port: client.port, "/v1/assets", headers: [("Authorization", "Bearer \(token)"), Self.type],
                chunks: Self.chunks(file + close, 8192))
            #expect(ok.status == 201)
        }
    }

    @Test func aTruncatedSupabaseFormStoresNothing() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let service = try await env.token("svc", role: .serviceRole)
            _ = try await client.json(.post, "/storage/v1/bucket", headers: [.authorization: "Bearer \(service)"], ["name": "img"])
            let before = try await env.snapshot()
            let form = Fixture.multipart(fields: [("cacheControl", "60")], fileField: "", file: Fixture.png(100 * 1024))
            let fields = (0..<17).map { "--depot-boundary-1234\r\nContent-Disposition: form-data; name=\"f\($0)\"\r\n\r\nv\r\n" }.joined()
            let cases: [(String, [UInt8], String)] = [
                ("no boundary after the file", Array(form.dropLast(30)), "malformed multipart body: the body ends inside a part"),
                ("17 fields", Array(fields.utf8) + form, "malformed multipart body: more than 16 parts"),
            ]
            for (name, body, message) in cases {
                let r = try await Streaming.send(
                    .POST, port: client.port, "/storage/v1/object/img/alice/\(name.count).png",
                    headers: [("Authorization", "Bearer \(service)"), Self.type], chunks: Self.chunks(body, 4096))
                #expect(r.status == 400 && r.json["statusCode"] as? String == "400", "\(name)")
                #expect(Self.message(r) == message, "\(name)")
            }
            let after = try await env.snapshot()
            #expect(after == before, "stored state changed: \(before) → \(after)")
        }
    }
}
