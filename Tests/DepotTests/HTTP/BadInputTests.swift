import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// Every bad input: the status and error code, and that nothing was stored, changed or lost.
@Suite("Bad input: a clear error and nothing stored")
struct BadInputTests {
    /// Runs `body`, then checks that the stores look exactly as before.
    func unchanged(_ env: TestEnvironment, _ body: () async throws -> Void) async throws {
        let before = try await env.snapshot()
        try await body()
        let after = try await env.snapshot()
        #expect(after == before, "stored state changed: \(before) → \(after)")
    }

    @Test func badJWTs() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let png = Fixture.png()
            let wrongSecret = try await ProjectJWTFactory.mint(secret: "another-secret-0123456789-0123456789", sub: "alice")
            let expired = try await env.token("alice", ttl: -10)
            let noSub = try await env.token(nil, role: .authenticated)
            let cases: [(HTTPFields, String)] = [
                ([:], "unauthenticated"),
                ([.authorization: "Bearer"], "unauthenticated"),
                ([.authorization: "Basic YWxpY2U6cHc="], "unauthenticated"),
                ([.authorization: "Bearer garbage"], "unauthenticated"),
                ([.authorization: "Bearer a.b.c"], "unauthenticated"),
                ([.authorization: "Bearer \(wrongSecret)"], "unauthenticated"),
                ([.authorization: "Bearer \(expired)"], "token_expired"),
                ([.authorization: "Bearer \(noSub)"], "unauthenticated"),
                ([HTTPField.Name("apikey")!: "garbage"], "unauthenticated"),
            ]
            try await unchanged(env) {
                for (headers, code) in cases {
                    let r = try await client.upload(png, headers: headers)
                    #expect(r.status == .unauthorized, "\(headers)")
                    #expect(r.errorCode == code, "\(headers)")
                    let list = try await client.request(.get, "/v1/assets", headers: headers)
                    #expect(list.status == .unauthorized)
                }
            }
            // The apikey header works where no Authorization is sent.
            let ok = try await client.upload(png, headers: [HTTPField.Name("apikey")!: try await env.token("alice")])
            #expect(ok.status == .created)
        }
    }

    @Test func pathTricks() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let victim = try await client.upload(Fixture.png(), headers: try await env.auth("bob"))
            let victimPath = try #require(victim.json["path"] as? String)
            let tricks: [(String, HTTPResponse.Status, String)] = [
                ("alice/../\(victimPath)", .badRequest, "invalid_path"),
                ("alice/./x.png", .badRequest, "invalid_path"),
                ("alice//x.png", .badRequest, "invalid_path"),
                ("alice/x.png/", .badRequest, "invalid_path"),
                ("alice/%2e%2e/\(victimPath)", .badRequest, "invalid_path"),
                ("alice/%2E%2E/%2E%2E/etc/passwd", .badRequest, "invalid_path"),
                ("alice%2f..%2f\(victimPath.replacingOccurrences(of: "/", with: "%2f"))", .badRequest, "invalid_path"),
                ("alice/a%2Fb.png", .badRequest, "invalid_path"),
                ("alice/..%5c..%5cbob", .badRequest, "invalid_path"),
                ("alice/a%5Cb.png", .badRequest, "invalid_path"),
                ("alice/a%00b.png", .badRequest, "invalid_path"),
                ("alice/a%0Ab.png", .badRequest, "invalid_path"),
                ("alice/a%1Fb.png", .badRequest, "invalid_path"),
                ("alice/a%7Fb.png", .badRequest, "invalid_path"),
                ("alice/%zz.png", .badRequest, "invalid_path"),
                ("alice/" + String(repeating: "x", count: 256), .badRequest, "invalid_path"),
                (String(repeating: "alice/", count: 200) + "x.png", .badRequest, "invalid_path"),
                (victimPath, .forbidden, "forbidden"),
                ("bob/x.png", .forbidden, "forbidden"),
                ("alice2/x.png", .forbidden, "forbidden"),
                ("alic/x.png", .forbidden, "forbidden"),
            ]
            try await unchanged(env) {
                for (path, status, code) in tricks {
                    let uri = "/v1/assets/\(path)"
                    let put = try await client.request(.put, uri, headers: alice + [.contentType: "image/png"], body: Fixture.png())
                    #expect(put.status == status, "PUT \(path)")
                    #expect(put.errorCode == code, "PUT \(path)")
                    let get = try await client.request(.get, uri, headers: alice)
                    #expect(get.status == status, "GET \(path)")
                    let del = try await client.request(.delete, uri, headers: alice)
                    #expect(del.status == status, "DELETE \(path)")
                    let flip = try await client.json(.patch, uri, headers: alice, ["visibility": "public"])
                    #expect(flip.status == status, "PATCH \(path)")
                }
                // Forbidden answers never reveal existence: a missing foreign path looks the same.
                let missing = try await client.request(.get, "/v1/assets/bob/nothing-here.png", headers: alice)
                let existing = try await client.request(.get, "/v1/assets/\(victimPath)", headers: alice)
                #expect(missing.status == existing.status)
                #expect(missing.text == existing.text)
                // Signed download routes refuse the same tricks.
                for (path, _, _) in tricks.prefix(17) {
                    let r = try await client.request(.get, "/storage/v1/object/sign/assets/\(path)?token=x")
                    #expect(r.status == .badRequest || r.status == .forbidden, "sign \(path)")
                }
                // jobId and suffix cannot smuggle a path.
                for q in [
                    "jobId=..", "jobId=a/b", "jobId=a%2Fb", "jobId=", "jobId=\(String(repeating: "j", count: 129))",
                    "jobId=ok&suffix=/x", "jobId=ok&suffix=..", "jobId=ok&suffix=\(String(repeating: "s", count: 65))",
                ] {
                    let r = try await client.request(.post, "/v1/assets?\(q)", headers: alice + [.contentType: "image/png"], body: Fixture.png())
                    #expect(r.status == .badRequest, "\(q)")
                    #expect(r.errorCode == "invalid_request", "\(q)")
                }
            }
            // A sub that cannot be a path segment is refused with the token itself.
            let weird = try await env.auth("../bob")
            let r = try await client.upload(Fixture.png(), headers: weird)
            #expect(r.status == .unauthorized)
            #expect(r.errorCode == "unauthenticated")
        }
    }

    @Test func typeSpoofing() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let cases: [([UInt8], String?, String)] = [
                (Fixture.textFile, "image/png", "unsupported_media_type"),
                (Fixture.textFile, nil, "unsupported_media_type"),
                (Fixture.jpeg(), "image/png", "media_type_mismatch"),
                (Fixture.png(), "image/gif", "media_type_mismatch"),
                (Fixture.svg, "image/svg+xml", "unsupported_media_type"),
                (Fixture.html, "text/html", "unsupported_media_type"),
                (Fixture.png(), "text/html", "unsupported_media_type"),
                (Fixture.svg, "image/png", "unsupported_media_type"),
                ([], "image/png", "unsupported_media_type"),
                (Array(Fixture.pngMagic.prefix(5)), "image/png", "unsupported_media_type"),
            ]
            try await unchanged(env) {
                for (bytes, type, code) in cases {
                    let r = try await client.upload(bytes, type: type, headers: alice)
                    #expect(r.status == .unsupportedMediaType, "\(type ?? "-") \(code)")
                    #expect(r.errorCode == code, "\(type ?? "-")")
                    let put = try await client.request(
                        .put, "/v1/assets/alice/spoof", headers: alice + (type.map { [.contentType: $0] } ?? [:]), body: bytes)
                    #expect(put.status == .unsupportedMediaType)
                    let mp = try await client.request(
                        .post, "/v1/assets", headers: alice + [.contentType: "multipart/form-data; boundary=depot-boundary-1234"],
                        body: Fixture.multipart(fields: [("jobId", "j")], contentType: type, file: bytes))
                    #expect(mp.status == .unsupportedMediaType)
                }
            }
        }
    }

    @Test func oversizeWithAndWithoutContentLength() async throws {
        let env = try await TestEnvironment.make { $0.maxFileSize = 64 * 1024 }
        try await env.live { client in
            let token = try await env.token("alice")
            let big = Fixture.png(64 * 1024 + 1)
            try await unchanged(env) {
                let r = try await client.upload(big, headers: [.authorization: "Bearer \(token)"])
                #expect(r.status == .contentTooLarge)
                #expect(r.errorCode == "payload_too_large")
                let put = try await client.request(
                    .put, "/v1/assets/alice/big", headers: [.authorization: "Bearer \(token)", .contentType: "image/png"], body: big)
                #expect(put.status == .contentTooLarge)
                // Chunked: no Content-Length, the limit is enforced while streaming.
                let chunks = stride(from: 0, to: big.count, by: 8192).map { Array(big[$0..<min($0 + 8192, big.count)]) }
                let chunked = try await Streaming.send(
                    .POST, port: client.port, "/v1/assets?jobId=j", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "image/png")],
                    chunks: chunks)
                #expect(chunked.status == 413)
                #expect(chunked.errorCode == "payload_too_large")
                let mp = Fixture.multipart(fields: [("jobId", "j")], file: big)
                let mpChunks = stride(from: 0, to: mp.count, by: 8192).map { Array(mp[$0..<min($0 + 8192, mp.count)]) }
                let chunkedMP = try await Streaming.send(
                    .POST, port: client.port, "/v1/assets",
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "multipart/form-data; boundary=depot-boundary-1234")],
                    chunks: mpChunks)
                #expect(chunkedMP.status == 413)
            }
            // Exactly at the limit is fine.
            let atLimit = try await client.upload(Fixture.png(64 * 1024), headers: [.authorization: "Bearer \(token)"])
            #expect(atLimit.status == .created)
        }
    }

    @Test func checksumMismatch() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png(3000)
            let wrong = String(repeating: "0", count: 64)
            try await unchanged(env) {
                let a = try await client.upload(png, headers: alice + [HTTPField.Name("x-checksum-sha256")!: wrong])
                #expect(a.status == .badRequest)
                #expect(a.errorCode == "checksum_mismatch")
                let digest = "sha-256=:\(Data(repeating: 7, count: 32).base64EncodedString()):"
                let b = try await client.upload(png, headers: alice + [HTTPField.Name("Content-Digest")!: digest])
                #expect(b.errorCode == "checksum_mismatch")
                let c = try await client.upload(png, headers: alice + [HTTPField.Name("x-checksum-sha256")!: "not-hex"])
                #expect(c.status == .badRequest)
                #expect(c.errorCode == "invalid_request")
            }
            let right = try await client.upload(png, headers: alice + [HTTPField.Name("x-checksum-sha256")!: png.sha256Hex.uppercased()])
            #expect(right.status == .created)
            let b64 = Data(SHA256Hex.of(png).chunked()).base64EncodedString()
            let viaDigest = try await client.upload(png, headers: alice + [HTTPField.Name("Content-Digest")!: "sha-256=:\(b64):"])
            #expect(viaDigest.status == .created)
        }
    }

    @Test func batchesOverTheLimitAndMalformedBodies() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let alice = try await env.auth("alice")
            _ = try await client.upload(Fixture.png(), headers: alice)
            let many = (0...1000).map { "alice/\($0).png" }
            try await unchanged(env) {
                for uri in ["/v1/signed-urls", "/v1/assets/delete", "/v1/assets/revoke"] {
                    let r = try await client.json(.post, uri, headers: alice, ["paths": many])
                    #expect(r.status == .badRequest, "\(uri)")
                    #expect(r.errorCode == "invalid_request")
                    let empty = try await client.json(.post, uri, headers: alice, ["paths": [String]()])
                    #expect(empty.status == .badRequest)
                    for body in ["{", "[]", "{\"paths\": \"x\"}", "", "null", "{\"paths\":[1,2]}"] {
                        let m = try await client.request(.post, uri, headers: alice + [.contentType: "application/json"], body: Array(body.utf8))
                        #expect(m.status == .badRequest, "\(uri) \(body)")
                        #expect(m.errorCode == "invalid_request")
                    }
                }
                let ttl = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": ["alice/1.png"], "expiresIn": 8 * 24 * 3600])
                #expect(ttl.status == .badRequest)
                let zero = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": ["alice/1.png"], "expiresIn": 0])
                #expect(zero.status == .badRequest)
                let patch = try await client.json(.patch, "/v1/assets/alice/x.png", headers: alice, ["visibility": "secret"])
                #expect(patch.status == .badRequest || patch.status == .notFound)
                let presign = try await client.request(.post, "/v1/presigned-uploads", headers: alice, body: Array("{\"jobId\":1}".utf8))
                #expect(presign.status == .badRequest)

                // Malformed multipart: no boundary, no closing delimiter, no file part, garbage.
                let png = Fixture.png(5000)
                let good = Fixture.multipart(fields: [("jobId", "j")], file: png)
                let bodies: [(String, [UInt8])] = [
                    ("multipart/form-data", good),
                    ("multipart/form-data; boundary=depot-boundary-1234", Array(good.prefix(good.count - 30))),
                    ("multipart/form-data; boundary=depot-boundary-1234", Fixture.multipart(fields: [("jobId", "j")], file: nil)),
                    ("multipart/form-data; boundary=depot-boundary-1234", Array("complete garbage".utf8)),
                    (
                        "multipart/form-data; boundary=depot-boundary-1234",
                        Array("--depot-boundary-1234\r\nno-colon-header\r\n\r\nx\r\n--depot-boundary-1234--\r\n".utf8)
                    ),
                    ("multipart/form-data; boundary=other", good),
                ]
                for (type, body) in bodies {
                    let r = try await client.request(.post, "/v1/assets", headers: alice + [.contentType: type], body: body)
                    #expect(r.status == .badRequest, "\(type) \(body.count)")
                    #expect(r.errorCode == "invalid_request")
                }
                let noJob = try await client.request(
                    .post, "/v1/assets", headers: alice + [.contentType: "multipart/form-data; boundary=depot-boundary-1234"],
                    body: Fixture.multipart(file: png))
                #expect(noJob.status == .badRequest)
                let noJobRaw = try await client.request(.post, "/v1/assets", headers: alice + [.contentType: "image/png"], body: png)
                #expect(noJobRaw.status == .badRequest)
            }
        }
    }

    @Test func unknownErrorsRevealNothing() async throws {
        let env = try await TestEnvironment.make()
        try await env.live { client in
            let up = try await client.upload(Fixture.png(), headers: try await env.auth("alice"))
            // Break the blob store underneath a committed object: the client sees a generic error.
            try FileManager.default.removeItem(atPath: env.dir + "/blobs")
            let r = try await client.request(
                .put, "/v1/assets/alice/new.png", headers: (try await env.auth("alice")) + [.contentType: "image/png"], body: Fixture.png())
            #expect(r.status == .internalServerError)
            #expect(r.errorCode == "internal_error")
            let message = try #require((r.json["error"] as? [String: Any])?["message"] as? String)
            #expect(message.hasPrefix("internal error (request id "))
            #expect(!r.text.contains(env.dir))
            #expect(!r.text.contains("blobs"))
            _ = up
        }
    }
}

enum ProjectJWTFactory {
    static func mint(secret: String, sub: String) async throws -> String {
        try await DepotHTTPJWT(secret: secret).mint(subject: sub, role: .authenticated, ttl: 600)
    }
}

import DepotHTTP
typealias DepotHTTPJWT = ProjectJWT

extension String {
    /// Hex → bytes.
    func chunked() -> [UInt8] {
        var out: [UInt8] = []
        var it = makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }
}
