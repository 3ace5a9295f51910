import DepotCore
@testable import DepotHTTP
import NIOCore

/// `multipart/form-data` bodies: `MultipartReader.boundary(from:)` and the streaming reader
/// (`nextPart()`, `nextBodyChunk()`), through its API only.
/// Input: the Content-Type header (first line), then the body. The body is fed three ways — in one
/// chunk, in chunks of sizes chosen from the input's hash (empty chunks included) and byte by byte
/// — and every way must read the same parts: where a network splits a body must not matter.
enum MultipartTarget {
    /// What a reader made of a body.
    struct Outcome: Equatable {
        var parts: [Part] = []
        var error: String?
        struct Part: Equatable {
            var name: String?, filename: String?, contentType: String?
            var body: [UInt8]?  // nil when not read
        }
    }

    /// Hands out prepared chunks; never suspends.
    struct Chunks: AsyncIteratorProtocol {
        var chunks: [ByteBuffer]
        var next = 0
        mutating func next() async -> ByteBuffer? {
            guard next < chunks.count else { return nil }
            defer { next += 1 }
            return chunks[next]
        }
    }

    static func run(_ input: FuzzInput) {
        let fields = input.bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false)
        var contentType = String(decoding: fields[0], as: UTF8.self)
        if contentType.hasSuffix("\r") { contentType.removeLast() }
        let body = fields.count > 1 ? Array(fields[1]) : []
        let boundary = MultipartReader<Chunks>.boundary(from: contentType)
        if let boundary { check((1...70).contains(boundary.utf8.count), "boundary \(boundary.debugDescription)") }
        let delimiter = boundary ?? "boundary"

        var random = SplitMix64(state: input.hash)
        var pieces: [ByteBuffer] = []
        var i = 0
        while i < body.count {
            let n = [0, 1, 2, 3, 7, 64, 1000][random.next(below: 7)]
            pieces.append(ByteBuffer(bytes: body[i..<min(body.count, i + n)]))
            i += n
        }
        let whole = read(delimiter, [ByteBuffer(bytes: body)], bodies: true)
        let outcomes = [
            read(delimiter, pieces, bodies: true),
            // (Byte by byte costs the reader a rescan of its buffer per byte: bounded here.)
            body.count <= 1024 ? read(delimiter, body.map { ByteBuffer(bytes: [$0]) }, bodies: true) : whole,
        ]
        for o in outcomes + [whole] {
            check(o.parts.count <= 16, "more than 16 parts")
            check(o.parts.reduce(0) { $0 + ($1.body?.count ?? 0) } <= body.count, "parts longer than the body")
        }
        // The header block's 8 KiB limit applies to what is buffered, which depends on chunking.
        let limit = "multipart headers too long"  // StorageError.message
        for o in outcomes where o.error != limit && whole.error != limit {
            check(o == whole, "chunking changes the parts:\n  one chunk: \(whole)\n  chunked:   \(o)")
        }
        // Skipping bodies (nextPart alone) sees the same parts.
        let skipped = read(delimiter, pieces, bodies: false)
        if skipped.error != limit && whole.error != limit {
            check(
                skipped.parts.map(\.name) == whole.parts.map(\.name) && skipped.error == whole.error,
                "skipping bodies changes the parts:\n  read: \(whole)\n  skipped: \(skipped)")
        }
    }

    static func read(_ boundary: String, _ chunks: [ByteBuffer], bodies: Bool) -> Outcome {
        let result = Box(Outcome())
        runToCompletion {
            var outcome = Outcome()
            defer { result.value = outcome }
            let reader = MultipartReader(boundary: boundary, body: Chunks(chunks: chunks))
            do {
                while let part = try await reader.nextPart() {
                    outcome.parts.append(.init(name: part.name, filename: part.filename, contentType: part.contentType))
                    if bodies {
                        outcome.parts[outcome.parts.count - 1].body = []
                        while let chunk = try await reader.nextBodyChunk() {
                            outcome.parts[outcome.parts.count - 1].body! += chunk.readableBytesView
                        }
                        let after = try await reader.nextBodyChunk()
                        check(after == nil, "a chunk after the part's end")
                    }
                }
                let after = try await reader.nextPart()
                check(after == nil, "a part after the closing delimiter")
            } catch let error as StorageError {
                outcome.error = error.message
            } catch {
                outcome.error = "\(error)"
            }
        }
        return result.value
    }
}
