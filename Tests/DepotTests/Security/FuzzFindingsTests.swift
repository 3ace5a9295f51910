import DepotCore
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

/// What the fuzzers (fuzz/, `scripts/fuzz`) found, kept as regression tests. The inputs that
/// found them are in fuzz/corpus/<target>/crash-*.
@Suite("Fuzzing findings")
struct FuzzFindingsTests {
    /// `path`: a segment that starts with a combining mark (`alice/%CC%81x.png`). `/` and the mark
    /// are one `Character`, so splitting on `"/"` as a character saw one segment `alice/◌́x.png`:
    /// a name accepted from a URL did not parse again from its own canonical string (JSON bodies
    /// refused it for its `/`), and `segments` and `lastSegment` were wrong.
    @Test func segmentStartingWithACombiningMark() throws {
        let path = try ObjectPath(percentEncoded: "alice/%CC%81x.png")
        #expect(path.string.utf8.elementsEqual("alice/\u{301}x.png".utf8))
        #expect(path.segments.count == 2)
        #expect(path.segments.last?.utf8.elementsEqual("\u{301}x.png".utf8) == true)
        #expect(path.owner == "alice" && path.isOwned(by: "alice"))
        #expect(path.lastSegment.utf8.elementsEqual("\u{301}x.png".utf8))
        #expect(try ObjectPath(path.string) == path)
        #expect(try ObjectPath(percentEncoded: path.percentEncoded[...]) == path)
        #expect(path.percentEncoded == "alice/%CC%81x.png")

        // A prepended character (U+0600) joins the `/` after it into one `Character` too.
        let prepended = try ObjectPath("alice\u{600}/x.png")
        #expect(prepended.segments.count == 2)
        #expect(prepended.owner.utf8.elementsEqual("alice\u{600}".utf8))
        #expect(!prepended.isOwned(by: "alice"))
        #expect(prepended.lastSegment == "x.png")

        // The fuzzer's input, reduced: the path it accepted is canonical.
        let found = try ObjectPath(percentEncoded: "a/xxuser/%E1%80%AEgnp.exe")
        #expect(try ObjectPath(found.string) == found)
        #expect(found.segments.count == 3)
    }

    /// Over HTTP: an object uploaded under such a name is signed by that name in a JSON body, and
    /// the Storage API's `{bucket}/{path}` routes cut at the first `/` byte.
    @Test func combiningMarkNamesOverHTTP() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let alice = try await env.auth("alice")
            let png = Fixture.png()
            var headers = alice
            headers[.contentType] = "image/png"
            let put = try await client.request(.put, "/v1/assets/alice/%CC%81x.png", headers: headers, body: png)
            #expect(put.status == .created, "\(put.text)")
            let signed = try await client.json(.post, "/v1/signed-urls", headers: alice, ["paths": ["alice/\u{301}x.png"]])
            #expect(signed.status == .ok)
            #expect((signed.json["urls"] as? [String: Any])?.count == 1, "\(signed.text)")
            let got = try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/%CC%81x.png", headers: alice)
            #expect(got.status == .ok && got.bytes == png)
        }
    }

    /// `multipart`: a part without headers (`--b CRLF CRLF body`) whose blank line arrives in
    /// pieces — one byte, then the rest — was read as a part with an unterminated header block
    /// ("unexpected end in headers"). Where the network splits a body must not matter.
    @Test func partWithoutHeadersSplitAcrossChunks() async throws {
        let env = try await TestEnvironment.make()
        defer { env.cleanup() }
        try await env.live { client in
            let token = try await env.token("alice")
            let png = Fixture.png(2000)
            let chunks: [[UInt8]] = [Array("--b\r\n".utf8), Array("\r".utf8), Array("\n".utf8) + png + Array("\r\n--b--\r\n".utf8)]
            let reply = try await Streaming.send(
                .POST, port: client.port, "/storage/v1/object/assets/alice/split.png",
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "multipart/form-data; boundary=b")],
                chunks: chunks, pause: .milliseconds(100))
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
            let got = try await client.request(.get, "/storage/v1/object/authenticated/assets/alice/split.png", headers: try await env.auth("alice"))
            #expect(got.status == .ok && got.bytes == png)
        }
    }
}
