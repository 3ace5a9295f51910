@testable import DepotHTTP
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Request heads framed from raw bytes (`RequestHeadScanner`), checked against NIO's own decoder:
/// every head the scanner frames must be read by `HTTPRequestDecoder` as exactly one request of
/// the same length, with no body, and a hot target must be that request's URI of a plain
/// HTTP/1.1 keep-alive GET. The bytes are also fed in two pieces (cut where the input's hash
/// says), which must frame the same.
/// Input: the raw bytes of one or more requests.
enum RequestHeadTarget {
    static func run(_ input: FuzzInput) {
        let bytes = input.bytes
        var searched = 0
        let whole = bytes.withUnsafeBytes { RequestHeadScanner.scan($0, searched: &searched) }
        check(searched <= bytes.count, "searched \(searched) of \(bytes.count)")

        // In two pieces: the first alone (incomplete, or the same outcome), then all of it.
        let cut = bytes.isEmpty ? 0 : Int(input.hash % UInt64(bytes.count))
        var pieceSearched = 0
        let first = bytes[..<cut].withUnsafeBytes { RequestHeadScanner.scan($0, searched: &pieceSearched) }
        if first == .incomplete {
            let again = bytes.withUnsafeBytes { RequestHeadScanner.scan($0, searched: &pieceSearched) }
            check(again == whole, "in two pieces: \(again), whole: \(whole)")
        }

        guard case .request(let length, let hot) = whole else { return }
        check(length >= 4 && length <= bytes.count && length <= RequestHeadScanner.maxHead, "length \(length)")
        check(Array(bytes[(length - 4)..<length]) == Array("\r\n\r\n".utf8), "no blank line at the end")

        // NIO's decoder on the head alone: one head and its end.
        let parts = decode(bytes[..<length], then: nil)
        guard parts.count == 2, case .head(let head) = parts[0], case .end = parts[1] else {
            check(false, "NIO read \(parts) from a head the scanner framed")
            return
        }
        // With one more request behind it (on a connection that stays open): the second starts
        // where the scanner said the first ended.
        if head.isKeepAlive {
            let both = decode(bytes[..<length], then: "GET /next HTTP/1.1\r\n\r\n")
            check(both.count == 4, "NIO read \(both.count) parts, not two heads and two ends")
            if both.count == 4, case .head(let next) = both[2] {
                check(next.uri == "/next", "the second request was read as \(next.uri)")
            } else {
                check(false, "no second head: \(both)")
            }
        }
        check(head.method == .GET || head.method == .HEAD, "method \(head.method)")
        if let hot {
            let target = String(decoding: bytes[hot], as: UTF8.self)
            check(head.uri == target, "hot target \(target) but NIO read \(head.uri)")
            check(head.method == .GET && head.version == .http1_1 && head.isKeepAlive, "hot but not a plain keep-alive GET")
            for name in ["range", "origin", "expect", "if-none-match", "if-range", "if-modified-since", "content-length", "transfer-encoding"] {
                check(!head.headers.contains(name: name), "hot with \(name)")
            }
        }
    }

    /// What NIO's decoder reads from `head` and then `next`; a refusal is a failed check.
    static func decode(_ head: ArraySlice<UInt8>, then next: String?) -> [HTTPServerRequestPart] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        var buffer = channel.allocator.buffer(capacity: head.count + 32)
        buffer.writeBytes(head)
        if let next { buffer.writeString(next) }
        do {
            try channel.writeInbound(buffer)
        } catch {
            check(false, "NIO's decoder refused a head the scanner framed: \(error)")
        }
        var parts: [HTTPServerRequestPart] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return parts
    }
}
