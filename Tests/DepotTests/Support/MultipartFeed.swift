import DepotCore
import DepotHTTP
import NIOCore
import Testing

/// Request body chunks from memory, for `MultipartReader`: a fixed list, or a prefix followed by
/// filler (endless, or up to a limit), counting what the reader pulled.
struct Feed: AsyncIteratorProtocol {
    final class Counter {
        var bytes = 0
    }
    private var chunks: [[UInt8]]
    private var index = 0
    private var filler: (bytes: [UInt8], left: Int)?
    let counter = Counter()

    init(chunks: [[UInt8]]) { self.chunks = chunks }

    /// `prefix` in chunks of `chunk` bytes, then `filler` again and again, `limit` bytes in all.
    static func endless(prefix: [UInt8], filler: [UInt8], chunk: Int = 64, limit: Int = .max) -> Feed {
        var feed = Feed(chunks: Split.every(chunk).cut(prefix))
        feed.filler = (filler, limit)
        return feed
    }

    mutating func next() async throws -> ByteBuffer? {
        var bytes: [UInt8]
        if index < chunks.count {
            bytes = chunks[index]
            index += 1
        } else if let f = filler, f.left > 0 {
            bytes = Array(f.bytes.prefix(f.left))
            filler?.left = f.left - bytes.count
        } else {
            return nil
        }
        counter.bytes += bytes.count
        return ByteBuffer(bytes: bytes)
    }
}

/// How a body is cut into chunks.
enum Split: CustomStringConvertible {
    case whole
    case every(Int)
    case random(seed: UInt64)  // 1…200 bytes each
    case at([Int])  // cut points

    var description: String {
        switch self {
        case .whole: "whole"
        case .every(let n): "every \(n)"
        case .random(let seed): "random(\(seed))"
        case .at(let cuts): "at \(cuts)"
        }
    }

    func cut(_ body: [UInt8]) -> [[UInt8]] {
        var cuts: [Int] = []
        switch self {
        case .whole: break
        case .every(let n): cuts = Array(stride(from: n, to: body.count, by: n))
        case .at(let points): cuts = points
        case .random(let seed):
            var rng = SplitMix64(seed: seed)
            var at = 0
            while true {
                at += Int.random(in: 1...200, using: &rng)
                guard at < body.count else { break }
                cuts.append(at)
            }
        }
        var out: [[UInt8]] = []
        var from = 0
        for c in cuts + [body.count] where c >= from {
            out.append(Array(body[from..<c]))
            from = c
        }
        return out
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A part as read: its headers and all its bytes.
struct Parsed: Equatable {
    var name: String?
    var filename: String?
    var contentType: String?
    var body: [UInt8]
}

enum Outcome: Equatable, CustomStringConvertible {
    case parts([Parsed])
    case failed(StorageError.Code, String)

    var parts: [Parsed]? { if case .parts(let p) = self { p } else { nil } }
    var failure: (code: StorageError.Code, message: String)? { if case .failed(let c, let m) = self { (c, m) } else { nil } }
    var description: String {
        switch self {
        case .parts(let p): "\(p.count) parts: \(p.map { "\($0.name ?? "-") \($0.body.count)B" })"
        case .failed(let c, let m): "\(c): \(m)"
        }
    }
}

extension MultipartReaderTests {
    /// Reads every part of `body`, cut as `split`, to the end.
    static func read(_ body: [UInt8], _ split: Split, boundary: String = MultipartReaderTests.boundary) async -> Outcome {
        await read(Feed(chunks: split.cut(body)), boundary: boundary)
    }

    static func read(_ feed: Feed, boundary: String = MultipartReaderTests.boundary) async -> Outcome {
        let reader = Reader(boundary: boundary, body: feed)
        var parts: [Parsed] = []
        do {
            while let p = try await reader.nextPart() {
                var body: [UInt8] = []
                while let chunk = try await reader.nextBodyChunk() { body += chunk.readableBytesView }
                parts.append(Parsed(name: p.name, filename: p.filename, contentType: p.contentType, body: body))
            }
            return .parts(parts)
        } catch let e as StorageError {
            return .failed(e.code, e.message)
        } catch {
            return .failed(.internalError, "\(error)")
        }
    }

    /// The bytes the reader examined to read `body` cut as `split`.
    static func scanned(_ body: [UInt8], _ split: Split) async throws -> Int {
        let reader = Reader(boundary: boundary, body: Feed(chunks: split.cut(body)))
        while try await reader.nextPart() != nil {
            while try await reader.nextBodyChunk() != nil {}
        }
        return reader.scannedBytes
    }

    /// A form of `(name, extra header lines, body)` parts with the test boundary.
    static func form(_ parts: [(String, [String], [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, headers, body) in parts {
            out += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n".utf8)
            for h in headers { out += Array("\(h)\r\n".utf8) }
            out += Array("\r\n".utf8) + body + Array("\r\n".utf8)
        }
        return out + Array("--\(boundary)--\r\n".utf8)
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Well-formed bodies with what tends to go wrong: CRs, near-delimiters, empty parts.
    static func goodBodies() -> [(String, [UInt8])] {
        let crlfs = Array(String(repeating: "\r\n", count: 40).utf8)
        return [
            ("fields and a file", form([("jobId", [], Array("j".utf8)), ("file", ["Content-Type: image/png"], bytes(3000, seed: 1))])),
            ("near-delimiters", form([("a", [], Array("\r\n--b0undar\r\n--b0undarY\r\n-\r\r\n--\r".utf8)), ("b", [], Array("--b0undary".utf8))])),
            ("CRLFs only", form([("a", [], crlfs), ("b", [], crlfs)])),
            ("empty parts", form([("a", [], []), ("b", [], []), ("c", [], [])])),
            ("a CRLF preamble and an epilogue", Array("\r\n".utf8) + form([("a", [], Array("v".utf8))]) + Array("\r\nthe end\r\n".utf8)),
            ("a text preamble", Array("This is a multi-part message.\r\n".utf8) + form([("a", [], Array("v".utf8))])),
            ("no CRLF after the closing delimiter", Array(form([("a", [], bytes(500, seed: 2))]).dropLast(2))),
        ]
    }
}
