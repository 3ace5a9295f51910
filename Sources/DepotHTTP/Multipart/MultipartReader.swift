import DepotCore
import Foundation
import NIOCore

/// A streaming `multipart/form-data` reader (RFC 7578, RFC 2046): pulls request body chunks on
/// demand and hands out each part's headers, then its body as chunks, never a whole part.
///
/// The work is linear in the bytes received, however they are chunked: a search for a delimiter
/// or a line end resumes where the last one stopped (only the last `delimiter.count - 1` bytes
/// can begin a delimiter split across reads), and the buffer keeps only bytes not yet handed out
/// or discarded — at most about 64 KiB (`handOutBytes`) plus one received chunk.
///
/// Bounds (`MultipartLimits`): a preamble of at most 1 KiB, at most 16 parts, each with a header
/// block of at most 8 KiB and 32 lines, and at most 64 KiB of parts skipped unread. The epilogue
/// after the closing delimiter is never read: the reader stops there. Lines end in CRLF (bare LF
/// or CR is refused), header lines hold no control bytes and are not folded. Malformed or over a
/// bound → `.invalidRequest("malformed multipart body: …")`, then again on every later call.
package final class MultipartReader<Base: AsyncIteratorProtocol> where Base.Element == ByteBuffer {
    package struct Part {
        package var name: String?
        package var filename: String?
        package var contentType: String?
    }

    private enum State { case preamble, body, boundaryLine, finished }

    private var base: Base
    private var baseDone = false
    private var buffer = ByteBuffer()
    private let delimiter: [UInt8]  // "\r\n--boundary"
    /// Whether the delimiter's first byte (CR) occurs again in it: not for a valid boundary.
    private let firstByteRepeats: Bool
    private var state = State.preamble
    /// Readable bytes known not to start what is searched for: the next search resumes here.
    private var searched = 0
    /// Where the delimiter starts in the readable bytes, once found.
    private var found: Int?
    private var parts = 0
    private var skipped = 0
    private var failure: (any Error)?
    /// Bytes examined while searching for delimiters and line ends (tests: linear in the body).
    package private(set) var scannedBytes = 0
    /// Bytes in the reader's storage, handed out or not (tests: the buffer stays bounded).
    package var heldBytes: Int { buffer.writerIndex }

    package init(boundary: String, body: Base) {
        self.base = body
        self.delimiter = Array("\r\n--\(boundary)".utf8)
        self.firstByteRepeats = delimiter.dropFirst().contains(delimiter[0])
        // The first delimiter has no leading CRLF: pretend it had one.
        buffer.writeString("\r\n")
    }

    /// The boundary parameter of a `multipart/form-data` Content-Type (see `MultipartSyntax`).
    package static func boundary(from contentType: String) -> String? { MultipartSyntax.boundary(from: contentType) }

    /// Advances to the next part and returns its headers; nil after the closing delimiter.
    /// What the caller left unread of the current part is discarded (within `skippedBytes`).
    package func nextPart() async throws -> Part? {
        try await failingForGood {
            switch state {
            case .finished: return nil
            case .preamble:
                // Counted from the CRLF pretended before the body, which a preamble pushes back.
                _ = try await discardToDelimiter(
                    allowance: MultipartLimits.preambleBytes + 2,
                    over: "more than \(MultipartLimits.preambleBytes) bytes before the first boundary",
                    end: "the body ends inside the preamble")
            case .body:
                skipped += try await discardToDelimiter(
                    allowance: MultipartLimits.skippedBytes - skipped,
                    over: "more than \(MultipartLimits.skippedBytes) bytes of parts were skipped unread",
                    end: "the body ends inside a part")
            case .boundaryLine: break
            }
            guard try await opensPart() else {
                state = .finished
                return nil
            }
            guard parts < MultipartLimits.parts else { throw malformed("more than \(MultipartLimits.parts) parts") }
            parts += 1
            let part = try await readHeaders()
            state = .body
            return part
        }
    }

    /// The next chunk of the current part's body; nil at its end (the delimiter is then consumed).
    package func nextBodyChunk() async throws -> ByteBuffer? {
        try await failingForGood {
            guard state == .body else { return nil }
            while true {
                if let at = findDelimiter() {
                    if at > 0 { return take(at) }
                    consumeDelimiter()
                    return nil
                }
                // Every byte before `searched` is body: hand it out once there is enough.
                if searched >= MultipartLimits.handOutBytes { return take(searched) }
                guard try await fill() else { throw malformed("the body ends inside a part") }
            }
        }
    }

    /// The whole body of the current part as text (a form field), at most `limit` bytes, else
    /// `tooLong` is thrown. The one field reader of both APIs' forms.
    package func fieldValue(limit: Int, tooLong: () -> StorageError) async throws -> String {
        var value = ByteBuffer()
        while var chunk = try await nextBodyChunk() {
            guard value.readableBytes + chunk.readableBytes <= limit else { throw tooLong() }
            value.writeBuffer(&chunk)
        }
        return String(buffer: value)
    }

    // MARK: Parsing

    private func failingForGood<T>(_ body: () async throws -> T) async throws -> T {
        if let failure { throw failure }
        do {
            return try await body()
        } catch {
            failure = error
            throw error
        }
    }

    private func malformed(_ why: String) -> StorageError { .invalidRequest("malformed multipart body: \(why)") }

    /// Discards the bytes up to the next delimiter, and it; more than `allowance` bytes → error.
    /// Returns how many bytes were discarded before the delimiter.
    private func discardToDelimiter(allowance: Int, over: String, end: String) async throws -> Int {
        var discarded = 0
        while true {
            let at = findDelimiter()
            let known = at ?? searched  // bytes known to come before the delimiter
            guard known <= allowance - discarded else { throw malformed(over) }
            consume(known)
            discarded += known
            if at != nil {
                consumeDelimiter()
                return discarded
            }
            guard try await fill() else { throw malformed(end) }
        }
    }

    /// After a delimiter: `--` closes the body (false); optional spaces or tabs and CRLF open a part.
    private func opensPart() async throws -> Bool {
        while buffer.readableBytes < 2 {
            guard try await fill() else { throw malformed("the body ends after a boundary") }
        }
        if buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x2D2D { return false }  // "--"
        let padding = try await readLine(limit: MultipartLimits.headerBytes, over: "boundary line too long", end: "the body ends after a boundary")
        guard padding.readableBytesView.allSatisfy({ $0 == 32 || $0 == 9 }) else {
            throw malformed("bad boundary line (only spaces or tabs may follow a boundary)")
        }
        return true
    }

    private func readHeaders() async throws -> Part {
        var part = Part()
        var used = 0
        var lines = 0
        while true {
            let line = try await readLine(
                limit: MultipartLimits.headerBytes - used, over: "part headers longer than \(MultipartLimits.headerBytes) bytes",
                end: "the body ends inside part headers")
            used += line.readableBytes + 2
            if line.readableBytes == 0 { return part }
            lines += 1
            guard lines <= MultipartLimits.headerLines else {
                throw malformed("more than \(MultipartLimits.headerLines) header lines in a part")
            }
            try parseHeader(String(buffer: line), into: &part)
        }
    }

    private func parseHeader(_ line: String, into part: inout Part) throws {
        guard let firstChar = line.first, firstChar != " ", firstChar != "\t" else {
            throw malformed("folded header lines are not supported")
        }
        guard let colon = line.firstIndex(of: ":") else { throw malformed("header line without a colon") }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingSpaces()
        if name == "content-disposition" {
            part.name = MultipartSyntax.parameter("name", in: value)
            part.filename = MultipartSyntax.parameter("filename", in: value)
        } else if name == "content-type" {
            part.contentType = String(value)
        }
    }

    /// The line at the start of the readable bytes without its CRLF, consumed. Longer than
    /// `limit` bytes with its CRLF → error, as soon as that is certain.
    private func readLine(limit: Int, over: String, end: String) async throws -> ByteBuffer {
        while true {
            if let at = try findLineEnd() {
                guard at <= limit - 2 else { throw malformed(over) }
                let line = take(at)
                consume(2)
                return line
            }
            guard searched <= limit - 2 else { throw malformed(over) }
            guard try await fill() else { throw malformed(end) }
        }
    }

    // MARK: Searching

    /// Where the delimiter starts in the readable bytes, or nil; examines only positions from
    /// `searched` on where a whole delimiter fits, and moves `searched` past those ruled out.
    private func findDelimiter() -> Int? {
        if let found { return found }
        let (at, next, examined) = buffer.withUnsafeReadableBytes { raw -> (Int?, Int, Int) in
            let n = delimiter.count
            let end = raw.count - n + 1  // positions from here on are searched once more bytes came
            var i = searched
            var examined = 0
            while i < end {
                // The next byte that could start a delimiter (memchr looks at each byte once).
                guard let p = memchr(raw.baseAddress! + i, Int32(delimiter[0]), end - i) else {
                    examined += end - i
                    i = end
                    break
                }
                let at = UnsafeRawPointer(p) - raw.baseAddress!
                examined += at - i + 1
                i = at
                var j = 1
                while j < n {
                    examined += 1
                    guard raw[i + j] == delimiter[j] else { break }
                    j += 1
                }
                if j == n { return (i, i, examined) }
                // No position inside the matched prefix holds the first byte: resume at the mismatch.
                i += firstByteRepeats ? 1 : j
            }
            return (nil, i, examined)
        }
        scannedBytes += examined
        searched = next
        found = at
        return at
    }

    /// Where the CRLF ending the first readable line starts, or nil; resumes at `searched`.
    /// A bare CR or LF, or another control byte than tab → error.
    private func findLineEnd() throws -> Int? {
        let (at, next, examined, bad) = buffer.withUnsafeReadableBytes { raw -> (Int?, Int, Int, String?) in
            var i = searched
            var examined = 0
            while i < raw.count {
                examined += 1
                switch raw[i] {
                case 13:
                    guard i + 1 < raw.count else { return (nil, i, examined, nil) }  // the LF is yet to come
                    examined += 1
                    return raw[i + 1] == 10 ? (i, i, examined, nil) : (nil, i, examined, "lines must end in CRLF (a bare CR)")
                case 10: return (nil, i, examined, "lines must end in CRLF (a bare LF)")
                case 0..<32 where raw[i] != 9, 127: return (nil, i, examined, "a control byte in part headers")
                default: i += 1
                }
            }
            return (nil, i, examined, nil)
        }
        scannedBytes += examined
        searched = next
        if let bad { throw malformed(bad) }
        return at
    }

    // MARK: The buffer

    /// Appends the next chunk of the body; false at its end. First drops what was handed out or
    /// discarded, keeping only the unread bytes (slices handed out keep their own storage).
    private func fill() async throws -> Bool {
        if baseDone { return false }
        guard var chunk = try await base.next() else {
            baseDone = true
            return false
        }
        if buffer.readerIndex > 0 {
            var fresh = ByteBuffer()
            fresh.reserveCapacity(buffer.readableBytes + chunk.readableBytes)
            fresh.writeBuffer(&buffer)
            buffer = fresh
        }
        buffer.writeBuffer(&chunk)
        return true
    }

    /// Hands out the first `count` readable bytes.
    private func take(_ count: Int) -> ByteBuffer {
        let slice = buffer.readSlice(length: count)!
        shift(count)
        return slice
    }

    private func consume(_ count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        shift(count)
    }

    /// Keeps `searched` and `found` relative to the reader index after `count` bytes were read.
    private func shift(_ count: Int) {
        searched = max(0, searched - count)
        found = found.map { $0 - count }
    }

    private func consumeDelimiter() {
        consume(delimiter.count)
        searched = 0
        found = nil
        state = .boundaryLine
    }
}
