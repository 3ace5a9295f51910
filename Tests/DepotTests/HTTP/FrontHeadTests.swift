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

    /// A head with its Date's value masked (the rest, the Date line's place included, as it is),
    /// and that value.
    static func masked(_ head: [UInt8]) -> (head: String, date: String?) {
        var date: String? = nil
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n").map { line in
            guard line.hasPrefix("Date: ") else { return line }
            date = String(line.dropFirst(6))
            return "Date: *"
        }
        return (lines.joined(separator: "\r\n"), date)
    }

    /// An HTTP date as NIO and Hummingbird write it: `Fri, 04 Dec 2026 14:29:38 GMT`.
    static func isHTTPDate(_ value: String?) -> Bool {
        guard let value, value.utf8.count == 29 else { return false }
        return value.wholeMatch(of: /[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT/) != nil
    }

    @Test(arguments: ["Depot", nil] as [String?])
    func firstPlainGETsHeadIsNIOsEncodingOfTheDecodedPathsAnswer(serverName: String?) async throws {
        let blobDir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-blobs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: blobDir) }
        // Room for two 3,000-byte objects in memory: the third one's bytes are read from its file.
        let blobs = CachedBlobStore(try FileSystemBlobStore(directory: blobDir), capacity: 8 * 1024)
        // A clock that stands still: the answers kept stay the current second's.
        let now = Date()
        let env = try await TestEnvironment.make(clock: { now }, blobs: blobs, cacheBlobs: false)
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

            // From memory: written by the front; asked for again in the second, written again
            // and kept (an answer is kept on its second ask), then sent again as it was kept.
            let first = probe.front(objects[0].url)
            guard case .written(let firstHead, let firstBody, repeated: false, fromFile: false) = first else {
                Issue.record("not written from memory by the front: \(first)")
                return
            }
            let memory = probe.front(objects[0].url)
            guard case .written(let head, let body, repeated: false, fromFile: false) = memory else {
                Issue.record("not written from memory by the front on the second ask: \(memory)")
                return
            }
            #expect(body == objects[0].bytes && firstBody == body)
            #expect(Self.masked(firstHead).head == Self.masked(head).head)
            #expect(probe.front(objects[0].url) == .written(head: head, body: body, repeated: true, fromFile: false), "not the front's kept answer")
            // NIO's encoding of the decoded path's answer: the same bytes, the Date in the same
            // place (its value may be the next second's).
            let decoded = try Self.encoded(try #require(probe.decodedHead(objects[0].url)))
            let (front, date) = Self.masked(head)
            #expect(front == Self.masked(decoded).head)
            #expect(Self.isHTTPDate(date) && Self.isHTTPDate(Self.masked(decoded).date))
            #expect(front.hasPrefix("HTTP/1.1 200 OK\r\n") && front.hasSuffix("\r\n\r\n"))
            #expect(front.contains("\r\nServer: Depot\r\n") == (serverName != nil))
            #expect(front.contains("\r\nContent-Length: 3000\r\n"))
            // The decoded path's answer, kept over the front's: the same head again.
            guard case .written(let reused, _, repeated: true, fromFile: false) = probe.front(objects[0].url) else {
                Issue.record("the decoded path's answer was not kept")
                return
            }
            #expect(Self.masked(reused).head == front)

            // Read from its file (asked for a second time, its bytes are taken into memory).
            let file = probe.front(objects[2].url)
            guard case .written(let fileHead, let fileBody, repeated: false, fromFile: true) = file else {
                // The page cache's bytes are read with `RWF_NOWAIT`; a kernel without it has the
                // file read on a thread, behind the decoder.
                withKnownIssue("this kernel cannot read a file from the page cache alone", isIntermittent: true) {
                    Issue.record("not written from the file by the front: \(file)")
                }
                return
            }
            #expect(fileBody == objects[2].bytes)
            let fileDecoded = try Self.encoded(try #require(probe.decodedHead(objects[2].url)))
            #expect(Self.masked(fileHead).head == Self.masked(fileDecoded).head)
            #expect(Self.masked(fileHead).head.contains("\r\nContent-Length: 3002\r\n"))
            #expect(Self.isHTTPDate(Self.masked(fileHead).date))
        }
    }
}
