import DepotCore
import DepotHTTP
import NIOCore
import Testing

/// The streaming multipart reader, fed from memory: the same body cut into any chunks gives the
/// same parts, every bound of the format is enforced, and the work is linear in the bytes.
@Suite("Multipart reader")
struct MultipartReaderTests {
    typealias Reader = MultipartReader<Feed>
    static let boundary = "b0undary"

    // MARK: Same parts whatever the chunking

    @Test func anyChunkingGivesTheSameParts() async throws {
        for (name, body) in Self.goodBodies() {
            let whole = await Self.read(body, .whole)
            guard case .parts(let parts) = whole else {
                Issue.record("\(name): \(whole)")
                continue
            }
            #expect(!parts.isEmpty, "\(name)")
            for split in [Split.every(1), .every(2), .every(3), .every(64), .random(seed: 1), .random(seed: 2), .random(seed: 3)] {
                #expect(await Self.read(body, split) == whole, "\(name) \(split)")
            }
        }
    }

    @Test func aDelimiterSplitAtEveryOffset() async throws {
        // Every cut point, and every pair of nearby cut points, lands inside some delimiter or CRLF.
        let body = Self.form([("a", [], Array("x\r\n--b0undar\r\ny".utf8)), ("file", ["Content-Type: image/png"], Self.bytes(150, seed: 9))])
        let whole = await Self.read(body, .whole)
        guard case .parts(let parts) = whole else { Issue.record("\(whole)"); return }
        #expect(parts.count == 2 && parts[0].body == Array("x\r\n--b0undar\r\ny".utf8))
        for cut in 0...body.count {
            #expect(await Self.read(body, .at([cut])) == whole, "cut at \(cut)")
            for width in 1...3 where cut + width <= body.count {
                #expect(await Self.read(body, .at([cut, cut + width])) == whole, "cuts at \(cut), \(cut + width)")
            }
        }
    }

    @Test func whatPartsHold() async throws {
        let file = Self.bytes(5000, seed: 4)
        let body =
            Array("\r\n".utf8)
            + Self.form([
                ("jobId", [], Array("job-1".utf8)),
                ("empty", [], []),
                ("file\"; filename=\"a b.png", ["Content-Type: image/png"], file),
            ]) + Array("epilogue, ignored".utf8)
        let parts = try #require(await Self.read(body, .every(7)).parts)
        #expect(
            parts == [
                Parsed(name: "jobId", filename: nil, contentType: nil, body: Array("job-1".utf8)),
                Parsed(name: "empty", filename: nil, contentType: nil, body: []),
                Parsed(name: "file", filename: "a b.png", contentType: "image/png", body: file),
            ])
        // A part without headers at all, and bodies that end in CR or in a delimiter's start.
        let odd = Array("--b0undary\r\n\r\nno headers\r\r\n--b0undary\r\nX-Other: 1\r\n\r\n\r\n--b0undar\r\n--b0undary--".utf8)
        #expect(
            await Self.read(odd, .every(1)).parts == [
                Parsed(name: nil, filename: nil, contentType: nil, body: Array("no headers\r".utf8)),
                Parsed(name: nil, filename: nil, contentType: nil, body: Array("\r\n--b0undar".utf8)),
            ])
        // Transport padding after a boundary is allowed (RFC 2046).
        let padded = Array("--b0undary \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b0undary--  \r\n".utf8)
        #expect(await Self.read(padded, .every(1)).parts?.map(\.body) == [[118]])
    }

    @Test func boundaryParameter() {
        #expect(Reader.boundary(from: "multipart/form-data; boundary=abc") == "abc")
        #expect(Reader.boundary(from: "Multipart/Form-Data;charset=utf-8; BOUNDARY=abc") == "abc")
        #expect(Reader.boundary(from: "multipart/form-data; boundary=\"a:b c=?\"") == "a:b c=?")
        #expect(Reader.boundary(from: "multipart/form-data; boundary=\"\"") == nil)
        #expect(Reader.boundary(from: "multipart/form-data; boundary=" + String(repeating: "x", count: 71)) == nil)
        #expect(Reader.boundary(from: "multipart/form-data; boundary=" + String(repeating: "x", count: 70)) != nil)
        #expect(Reader.boundary(from: "multipart/form-data; boundary=a\u{7F}b") == nil)  // not a boundary character
        #expect(Reader.boundary(from: "multipart/form-data; boundary=\"ends in space \"") == nil)
        #expect(Reader.boundary(from: "multipart/mixed; boundary=abc") == nil)
        #expect(Reader.boundary(from: "multipart/form-data") == nil)
    }

    @Test func aQuotedBoundaryWithSpacesAndColons() async throws {
        let boundary = try #require(Reader.boundary(from: "multipart/form-data; boundary=\"a:b c\""))
        let body = Array("--a:b c\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n--a:b x\r\n--a:b c--\r\n".utf8)
        #expect(await Self.read(body, .every(1), boundary: boundary).parts?.map(\.body) == [Array("--a:b x".utf8)])
    }

    // MARK: Malformed bodies

    @Test func malformedBodiesAreRefusedWhateverTheChunking() async throws {
        let good = Self.form([("a", [], Array("value".utf8))])
        let cases: [(String, [UInt8], String)] = [
            ("no final boundary", Array(good.dropLast(14)), "ends inside a part"),
            ("ends after a delimiter", Array("--b0undary".utf8), "ends after a boundary"),
            ("ends in headers", Array("--b0undary\r\nContent-Disposition: form-data".utf8), "ends inside part headers"),
            ("no boundary at all", Array("just text".utf8), "ends inside the preamble"),
            ("empty", [], "ends inside the preamble"),
            ("LF-only lines", Array("--b0undary\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b0undary--\n".utf8), "must end in CRLF"),
            ("LF-only headers", Array("--b0undary\r\nContent-Disposition: form-data\n\r\nv\r\n--b0undary--".utf8), "must end in CRLF"),
            ("garbage after a boundary", Array("--b0undaryX\r\n\r\nv\r\n--b0undary--".utf8), "boundary line"),
            ("header without colon", Array("--b0undary\r\nno colon\r\n\r\nv\r\n--b0undary--".utf8), "header line without a colon"),
            ("folded header", Array("--b0undary\r\nA: 1\r\n  2\r\n\r\nv\r\n--b0undary--".utf8), "folded"),
            ("control byte in a header", Array("--b0undary\r\nA: 1\u{0}\r\n\r\nv\r\n--b0undary--".utf8), "control"),
        ]
        for (name, body, message) in cases {
            for split in [Split.whole, .every(1), .random(seed: 5)] {
                let outcome = await Self.read(body, split)
                #expect(outcome.failure?.code == .invalidRequest, "\(name) \(split): \(outcome)")
                #expect(outcome.failure?.message.hasPrefix("malformed multipart body: ") == true, "\(name): \(outcome)")
                #expect(outcome.failure?.message.contains(message) == true, "\(name) \(split): \(outcome)")
            }
        }
    }

    // MARK: Bounds

    @Test func sixteenPartsAndNoMore() async throws {
        let sixteen = Self.form((0..<16).map { ("f\($0)", [], Array("v".utf8)) })
        #expect(await Self.read(sixteen, .every(5)).parts?.count == 16)
        let seventeen = Self.form((0..<17).map { ("f\($0)", [], Array("v".utf8)) })
        let refused = await Self.read(seventeen, .every(5))
        #expect(refused.failure?.message == "malformed multipart body: more than 16 parts")
    }

    @Test func headerBlockOf8KiBAndNoMore() async throws {
        // The block counts every header line with its CRLF and the empty line ending it.
        func part(headerBlock size: Int) -> [UInt8] {
            let fixed = "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: \r\n\r\n".utf8.count
            let pad = String(repeating: "p", count: size - fixed)
            return Array("--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: \(pad)\r\n\r\nv\r\n--b0undary--".utf8)
        }
        for split in [Split.whole, .every(1), .every(64)] {
            #expect(await Self.read(part(headerBlock: 8192), split).parts?.count == 1, "\(split)")
            let refused = await Self.read(part(headerBlock: 8193), split)
            #expect(refused.failure?.message == "malformed multipart body: part headers longer than 8192 bytes", "\(split)")
        }
        // An endless header line is refused after 8 KiB, without waiting for its end.
        let feed = Feed.endless(prefix: Array("--b0undary\r\nX: ".utf8), filler: Array(repeating: 120, count: 100))
        let outcome = await Self.read(feed)
        #expect(outcome.failure?.message == "malformed multipart body: part headers longer than 8192 bytes")
        #expect(feed.counter.bytes <= 8192 + 200)
    }

    @Test func thirtyTwoHeaderLinesAndNoMore() async throws {
        func part(lines: Int) -> [UInt8] {
            let extra = (1..<lines).map { "X-\($0): y\r\n" }.joined()
            return Array("--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\(extra)\r\nv\r\n--b0undary--".utf8)
        }
        #expect(await Self.read(part(lines: 32), .every(3)).parts?.count == 1)
        #expect(await Self.read(part(lines: 33), .every(3)).failure?.message == "malformed multipart body: more than 32 header lines in a part")
    }

    @Test func preambleOf1KiBAndNoMore() async throws {
        let form = Self.form([("a", [], Array("v".utf8))])
        for split in [Split.whole, .every(1), .every(64)] {
            for preamble in [0, 1, 2, 1023, 1024] {
                let body = Array(repeating: UInt8(ascii: "p"), count: preamble) + Array("\r\n".utf8) + form
                #expect(await Self.read(body, split).parts?.count == 1, "\(preamble) \(split)")
            }
            let body = Array(repeating: UInt8(ascii: "p"), count: 1025) + Array("\r\n".utf8) + form
            #expect(await Self.read(body, split).failure?.message == "malformed multipart body: more than 1024 bytes before the first boundary")
        }
        // 2 MiB of preamble: refused after reading little more than the bound.
        let feed = Feed.endless(prefix: [], filler: Array(repeating: 112, count: 64), limit: 2 * 1024 * 1024)
        let outcome = await Self.read(feed)
        #expect(outcome.failure?.message == "malformed multipart body: more than 1024 bytes before the first boundary")
        #expect(feed.counter.bytes <= 1024 + 128)
    }

    @Test func theEpilogueIsNeverRead() async throws {
        // After the closing delimiter the reader stops: an endless epilogue is not pulled.
        let form = Self.form([("a", [], Array("v".utf8))])
        let feed = Feed.endless(prefix: form, filler: Array(repeating: 101, count: 64), chunk: 16)
        let outcome = await Self.read(feed)
        #expect(outcome.parts?.count == 1)
        #expect(feed.counter.bytes <= form.count + 16)
    }

    @Test func unreadPartsAreSkippedUpTo64KiB() async throws {
        // A part the caller does not read is discarded while looking for the next one, up to 64 KiB in all.
        func skipAll(_ body: [UInt8]) async -> StorageError? {
            let reader = Reader(boundary: Self.boundary, body: Feed(chunks: Split.every(1000).cut(body)))
            do {
                while try await reader.nextPart() != nil {}
                return nil
            } catch { return error as? StorageError }
        }
        let half = Self.bytes(32 * 1024, seed: 6)
        #expect(await skipAll(Self.form([("a", [], half), ("b", [], half)])) == nil)
        let refused = await skipAll(Self.form([("a", [], half), ("b", [], half + [1])]))
        #expect(refused?.message == "malformed multipart body: more than 65536 bytes of parts were skipped unread")
    }

    // MARK: Streaming and linear work

    @Test func partsStreamInBoundedChunks() async throws {
        // 1 MiB of file in 4 KiB chunks: handed out long before the body is all read, and the
        // reader never holds much more than one hand-out.
        let file = Self.bytes(1024 * 1024, seed: 7)
        let body = Self.form([("file", [], file)])
        let feed = Feed(chunks: Split.every(4096).cut(body))
        let reader = Reader(boundary: Self.boundary, body: feed)
        _ = try await reader.nextPart()
        var received: [UInt8] = []
        var largestHeld = 0
        var pulledAtFirstChunk: Int?
        while let chunk = try await reader.nextBodyChunk() {
            if pulledAtFirstChunk == nil { pulledAtFirstChunk = feed.counter.bytes }
            largestHeld = max(largestHeld, reader.heldBytes)
            received += chunk.readableBytesView
        }
        #expect(received == file)
        #expect(try #require(pulledAtFirstChunk) <= 80 * 1024)
        #expect(largestHeld <= 64 * 1024 + 4096 + 100, "held \(largestHeld)")
        #expect(try await reader.nextPart() == nil)
    }

    @Test func workIsLinearInTheBytesReceived() async throws {
        // Bytes examined for 96 KiB of file in 64-byte chunks vs in one chunk.
        let file = Self.bytes(96 * 1024, seed: 8)
        let body = Self.form([("file", ["Content-Type: image/png"], file)])
        let whole = try await Self.scanned(body, .whole)
        let small = try await Self.scanned(body, .every(64))
        let single = try await Self.scanned(body, .every(1))
        #expect(whole >= body.count - 100 && whole <= 2 * body.count, "\(whole) for \(body.count) bytes")
        #expect(Double(small) / Double(whole) <= 2, "64-byte chunks: \(small) vs \(whole)")
        #expect(Double(single) / Double(whole) <= 2, "1-byte chunks: \(single) vs \(whole)")
        // Near-delimiters everywhere: still a small constant per byte.
        let nasty = Array(String(repeating: "\r\n--b0undar\r\n-\r\r\n--b0undarx", count: 3000).utf8)
        let tricky = Self.form([("file", [], nasty)])
        let trickyScanned = try await Self.scanned(tricky, .every(64))
        #expect(trickyScanned <= 3 * tricky.count, "\(trickyScanned) for \(tricky.count) bytes")
    }
}
