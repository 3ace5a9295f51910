import DepotCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A streaming `multipart/form-data` reader: pulls request body chunks on demand and hands out
/// each part's headers, then its body as chunks, without holding a whole part in memory.
/// Limits: 16 parts, 8 KiB of headers per part. Malformed input → `.invalidRequest`.
final class MultipartReader<Base: AsyncIteratorProtocol> where Base.Element == ByteBuffer {
    struct Part {
        var name: String?
        var filename: String?
        var contentType: String?
    }

    private var base: Base
    private var buffer = ByteBuffer()
    private let delimiter: [UInt8]  // "\r\n--boundary"
    private var inBody = true  // the preamble counts as a body to skip
    private var finished = false
    private var parts = 0
    private var baseDone = false

    init(boundary: String, body: Base) {
        self.base = body
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter has no leading CRLF: pretend it had one.
        buffer.writeString("\r\n")
    }

    /// The boundary parameter of a `multipart/form-data` Content-Type.
    static func boundary(from contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingSpaces() }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for p in parts.dropFirst() where p.lowercased().hasPrefix("boundary=") {
            var b = p.dropFirst("boundary=".count)
            if b.hasPrefix("\"") && b.hasSuffix("\"") && b.count >= 2 { b = b.dropFirst().dropLast() }
            guard (1...70).contains(b.utf8.count) else { return nil }
            return String(b)
        }
        return nil
    }

    private func fill() async throws -> Bool {
        if baseDone { return false }
        guard var chunk = try await base.next() else {
            baseDone = true
            return false
        }
        buffer.writeBuffer(&chunk)
        return true
    }

    private func malformed(_ why: String) -> StorageError { .invalidRequest("malformed multipart body: \(why)") }

    /// Index of `needle` in the readable bytes, or nil.
    private func find(_ needle: [UInt8]) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            let n = needle.count
            guard raw.count >= n else { return nil }
            var i = 0
            let first = needle[0]
            while i <= raw.count - n {
                if raw[i] == first {
                    var j = 1
                    while j < n && raw[i + j] == needle[j] { j += 1 }
                    if j == n { return i }
                }
                i += 1
            }
            return nil
        }
    }

    /// Advances to the next part and returns its headers; nil after the closing delimiter.
    func nextPart() async throws -> Part? {
        if finished { return nil }
        // Skip what remains of the current part's body (or the preamble), up to its delimiter.
        while try await nextBodyChunk() != nil {}
        // After a delimiter: "--" closes, CRLF opens a part.
        while buffer.readableBytes < 2 { guard try await fill() else { throw malformed("unexpected end") } }
        let two = buffer.readBytes(length: 2)!
        if two == [45, 45] {
            finished = true
            return nil
        }
        guard two == [13, 10] else { throw malformed("bad delimiter line") }
        parts += 1
        guard parts <= 16 else { throw StorageError.invalidRequest("too many multipart parts") }
        var headerBlock = ""
        // Chunks may be of any size, down to one byte: gather two (or reach the end) before deciding.
        while buffer.readableBytes < 2 { guard try await fill() else { break } }
        if buffer.getBytes(at: buffer.readerIndex, length: 2) == [13, 10] {
            buffer.moveReaderIndex(forwardBy: 2)  // a part without headers
        } else {
            while true {
                if let i = find([13, 10, 13, 10]) {
                    headerBlock = buffer.readString(length: i) ?? ""
                    buffer.moveReaderIndex(forwardBy: 4)
                    break
                }
                guard buffer.readableBytes <= 8192 else { throw StorageError.invalidRequest("multipart headers too long") }
                guard try await fill() else { throw malformed("unexpected end in headers") }
            }
        }
        var part = Part()
        for line in headerBlock.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { throw malformed("bad header line") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            if name == "content-disposition" {
                part.name = Self.parameter("name", in: value)
                part.filename = Self.parameter("filename", in: value)
            } else if name == "content-type" {
                part.contentType = String(value)
            }
        }
        inBody = true
        return part
    }

    /// The next chunk of the current part's body; nil at its end (the delimiter is then consumed).
    func nextBodyChunk() async throws -> ByteBuffer? {
        guard inBody, !finished else { return nil }
        while true {
            if let i = find(delimiter) {
                if i > 0 {
                    let chunk = buffer.readSlice(length: i)!
                    compact()
                    return chunk
                }
                buffer.moveReaderIndex(forwardBy: delimiter.count)
                inBody = false
                return nil
            }
            // Everything but a tail that could start a delimiter is body.
            let safe = buffer.readableBytes - (delimiter.count - 1)
            if safe >= 64 * 1024 || (safe > 0 && baseDone) {
                let chunk = buffer.readSlice(length: safe)!
                compact()
                return chunk
            }
            if !(try await fill()) { throw malformed("unexpected end in a part") }
        }
    }

    /// Moves the unread bytes into a fresh buffer, so slices handed out are never copied on write.
    private func compact() {
        var fresh = ByteBuffer()
        fresh.writeImmutableBuffer(buffer)
        buffer = fresh
    }

    static func parameter(_ key: String, in value: Substring) -> String? {
        for item in value.split(separator: ";").dropFirst() {
            let kv = item.trimmingSpaces()
            guard let eq = kv.firstIndex(of: "="), kv[..<eq].lowercased() == key else { continue }
            var v = kv[kv.index(after: eq)...]
            if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { v = v.dropFirst().dropLast() }
            return String(v)
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
