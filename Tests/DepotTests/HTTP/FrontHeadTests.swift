import DepotCore
@_spi(Testing) import DepotHTTP
import DepotLocal
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The head ``RecentAnswerFront`` writes itself, for the first plain GET of a URL in a second
/// (nothing kept for it yet), is byte for byte NIO's encoding of the decoded path's answer to the
/// same request, but for the Date: from memory and read from its file, with and without a
/// `Server` header. (The live tests' clients say `Connection: keep-alive`, which the front hands
/// to the decoder; their raw requests find the answer kept by then.)
@Suite("The front's own heads")
struct FrontHeadTests {
    /// `head` as NIO's response encoder writes it.
    static func encoded(_ head: HTTPResponseHead) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        var out: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += Array(buffer.readableBytesView) }
        _ = try channel.finish()
        return out
    }

    /// A head's lines but its Date.
    static func undated(_ head: [UInt8]) -> [String] {
        String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date:") }
    }

    @Test(arguments: ["Depot", nil] as [String?])
    func firstPlainGETsHeadIsNIOsEncodingOfTheDecodedPathsAnswer(serverName: String?) async throws {
        let blobDir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-blobs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: blobDir) }
        // Room for two 3,000-byte objects in memory: the third one's bytes are read from its file.
        let blobs = CachedBlobStore(try FileSystemBlobStore(directory: blobDir), capacity: 8 * 1024)
        let env = try await TestEnvironment.make(blobs: blobs, cacheBlobs: false)
        // Its own answers of the second, apart from the live server's; the same caches of rows and bytes.
        let probe = FrontProbe(service: env.service, serverName: serverName)
        try await env.live { client in
            let alice = try await env.auth("alice")
            var objects: [(bytes: [UInt8], url: String)] = []
            for size in [3000, 3001, 3002] {
                let png = Fixture.png(size)
                let up = try await client.upload(png, headers: alice)
                objects.append((png, TestEnvironment.local(up.json["url"] as! String)))
            }
            // Through the live server: the rows in memory, and the first two objects' bytes (the
            // full cache refuses the third's on its first miss).
            for object in objects { #expect(try await client.request(.get, object.url).bytes == object.bytes) }

            // From memory: written by the front, then kept and written again as it is.
            let memory = probe.front(objects[0].url)
            guard case .written(let head, let body, repeated: false, fromFile: false) = memory else {
                Issue.record("not written from memory by the front: \(memory)")
                return
            }
            #expect(body == objects[0].bytes)
            let decoded = try Self.encoded(try #require(probe.decodedHead(objects[0].url)))
            #expect(Self.undated(head) == Self.undated(decoded))
            #expect(Self.undated(head).count > 8 && Self.undated(head).suffix(2) == ["", ""])
            #expect(Self.undated(head).count == Self.undated(decoded).count)
            #expect(Self.undated(head).contains("Server: Depot") == (serverName != nil))
            #expect(String(decoding: head, as: UTF8.self).contains("\r\nDate: "))
            let again = probe.front(objects[0].url)
            #expect(again == .written(head: head, body: body, repeated: true, fromFile: false), "not the kept answer")

            // Read from its file (asked for a second time, its bytes are taken into memory).
            let file = probe.front(objects[2].url)
            guard case .written(let fileHead, let fileBody, repeated: false, fromFile: true) = file else {
                Issue.record("not written from the file by the front: \(file)")
                return
            }
            #expect(fileBody == objects[2].bytes)
            let fileDecoded = try Self.encoded(try #require(probe.decodedHead(objects[2].url)))
            #expect(Self.undated(fileHead) == Self.undated(fileDecoded))
            #expect(Self.undated(fileHead).contains("Content-Length: 3002"))
        }
    }
}
