import Foundation

/// A validated object name: one or more `/`-separated segments.
///
/// Validation rules (applied to *decoded* segments; percent-decoding happens once, before):
/// - no empty, `.` or `..` segments;
/// - no `/` inside a segment (an encoded `%2F`), no backslash, no NUL or other control characters;
/// - each segment at most 255 UTF-8 bytes, the whole name at most 1024 bytes;
/// - valid UTF-8.
/// Ownership is decided on parsed segments (`segments[0] == userId`), never on string prefixes.
public struct ObjectPath: Hashable, Sendable, CustomStringConvertible, Comparable {
    public static let maxSegmentBytes = 255
    public static let maxBytes = 1024

    /// The canonical form: the decoded segments joined with `/`. Equality and order compare its
    /// bytes; hashing is consistent with that (byte-equal strings hash alike).
    public let string: String

    /// The decoded segments.
    public var segments: [String] { Self.split(string).map(String.init) }
    public var description: String { string }
    /// The first segment (the tenant, by Depot's path rule).
    public var owner: String { String(firstSegment) }
    /// The last segment (the file name).
    public var lastSegment: String {
        String(Substring(string.utf8[(string.utf8.lastIndex(of: UInt8(ascii: "/")).map { string.utf8.index(after: $0) } ?? string.startIndex)...]))
    }
    private var firstSegment: Substring { Substring(string.utf8[..<(string.utf8.firstIndex(of: UInt8(ascii: "/")) ?? string.endIndex)]) }

    /// `raw` cut at every `/` byte. Never at `/` characters: a segment that starts with a
    /// combining mark (`a/%CC%81b`) makes `/` and the mark one `Character`, which
    /// `split(separator: "/")` and `firstIndex(of: "/")` step over.
    static func split(_ raw: some StringProtocol) -> [Substring] {
        let whole = Substring(raw)
        return whole.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Substring.init)
    }

    /// Validates a name given as a plain (already decoded) string, e.g. from JSON.
    public init(_ raw: String) throws(StorageError) {
        guard !raw.isEmpty else { throw .invalidPath("the path is empty") }
        if Self.isPlainASCII(raw) {
            // The common case, checked in one pass: already canonical, so `raw` is the string.
            self.init(checked: raw)
            return
        }
        try self.init(segments: Self.split(raw).map(String.init))
    }

    /// Whether `raw` is a valid path made of printable ASCII only (so NFC leaves it unchanged).
    /// `false` sends it through the general validation, which also names the fault.
    static func isPlainASCII(_ raw: String) -> Bool {
        var segmentLength = 0
        var dots = 0
        var total = 0
        for byte in raw.utf8 {
            total += 1
            switch byte {
            case UInt8(ascii: "/"):
                if segmentLength == 0 || dots == segmentLength && dots <= 2 { return false }
                segmentLength = 0
                dots = 0
            case 0x20...0x7E where byte != UInt8(ascii: "\\"):
                segmentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
                if segmentLength > maxSegmentBytes { return false }
            default:
                return false
            }
        }
        return total <= maxBytes && segmentLength > 0 && !(dots == segmentLength && dots <= 2)
    }

    public static func == (lhs: ObjectPath, rhs: ObjectPath) -> Bool { lhs.string.bytesEqual(rhs.string) }
    public func hash(into hasher: inout Hasher) { hasher.combine(string) }

    /// Validates decoded segments.
    public init(segments: [String]) throws(StorageError) {
        guard !segments.isEmpty else { throw .invalidPath("the path is empty") }
        var total = 0
        var normalized: [String] = []
        normalized.reserveCapacity(segments.count)
        for segment in segments {
            // Canonical equivalents must name one object: store NFC.
            let segment = segment.utf8.allSatisfy({ $0 < 0x80 }) ? segment : segment.precomposedStringWithCanonicalMapping
            try Self.validate(segment: segment)
            total += segment.utf8.count + 1
            normalized.append(segment)
        }
        guard total - 1 <= Self.maxBytes else {
            throw .invalidPath("the path is longer than \(Self.maxBytes) bytes")
        }
        self.init(checked: normalized.joined(separator: "/"))
    }

    private init(checked string: String) {
        self.string = string
    }

    /// Parses a path as it appears in a URL: split on `/`, percent-decode each segment once,
    /// then validate.
    public init(percentEncoded raw: Substring) throws(StorageError) {
        if !raw.utf8.contains(UInt8(ascii: "%")) {
            try self.init(String(raw))
            return
        }
        let parts = Self.split(raw)
        var decoded: [String] = []
        decoded.reserveCapacity(parts.count)
        for part in parts {
            guard let segment = PercentEncoding.decode(part) else {
                throw .invalidPath("the path is not valid percent-encoded UTF-8")
            }
            decoded.append(segment)
        }
        try self.init(segments: decoded)
    }

    /// The path with each segment percent-encoded, for use in URLs.
    public var percentEncoded: String {
        var s = string
        let plain = s.withUTF8 { bytes in !bytes.contains { $0 != UInt8(ascii: "/") && !PercentEncoding.isUnreserved($0) } }
        if plain { return string }
        return segments.map(PercentEncoding.encodeSegment).joined(separator: "/")
    }

    /// Whether the first segment is `userId`, compared as bytes (never canonically: `\u{212A}ate`
    /// owns nothing of `Kate`'s).
    public func isOwned(by userId: String) -> Bool { firstSegment.bytesEqual(userId) }

    public static func validate(segment: String) throws(StorageError) {
        if segment.isEmpty { throw .invalidPath("the path has an empty segment") }
        if segment == "." || segment == ".." { throw .invalidPath("the path has a '.' or '..' segment") }
        if segment.utf8.count > maxSegmentBytes {
            throw .invalidPath("a path segment is longer than \(maxSegmentBytes) bytes")
        }
        // U+10FFFF bounds prefix range scans in the metadata stores; it names no real character.
        if segment.unicodeScalars.contains("\u{10FFFF}") { throw .invalidPath("the path contains U+10FFFF") }
        // Bidirectional controls make a name display as another (`gnp.exe` shown as `exe.png`).
        if segment.unicodeScalars.contains(where: Self.isBidiControl) {
            throw .invalidPath("the path contains a bidirectional control character")
        }
        if segment.unicodeScalars.contains(where: Self.isHiddenControl) {
            throw .invalidPath(
                "the path contains a control or invisible character (C1 control, line separator, zero-width space, byte order mark or noncharacter)")
        }
        for byte in segment.utf8 {
            switch byte {
            case 0..<0x20, 0x7F: throw .invalidPath("the path contains a control character")
            case UInt8(ascii: "/"): throw .invalidPath("a path segment contains '/'")
            case UInt8(ascii: "\\"): throw .invalidPath("the path contains a backslash")
            default: continue
            }
        }
    }

    /// Non-ASCII characters that control or hide text rather than show it: C1 controls
    /// (U+0080–U+009F), the soft hyphen (U+00AD), the zero-width space and the word joiner (U+200B,
    /// U+2060), the line and paragraph separators (U+2028, U+2029), the invisible operators
    /// (U+2061–U+2064), the byte order mark (U+FEFF), the tag characters (U+E0000–U+E007F) and all
    /// 66 noncharacters (U+FDD0–U+FDEF, and the last two code points of every plane). A name or a
    /// user id holding one displays as another (`alice` and `alice\u{200B}`). The zero-width
    /// joiner and non-joiner (U+200C, U+200D) stay allowed: emoji sequences and several scripts
    /// need them.
    public static func isHiddenControl(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        switch v {
        case 0x80...0x9F, 0xAD, 0x200B, 0x2028, 0x2029, 0x2060...0x2064, 0xFEFF, 0xFDD0...0xFDEF, 0xE0000...0xE007F: return true
        default: return v & 0xFFFE == 0xFFFE
        }
    }

    /// U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069: the characters that reorder text.
    public static func isBidiControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    public static func < (lhs: ObjectPath, rhs: ObjectPath) -> Bool { lhs.string.bytesPrecede(rhs.string) }
}

/// Percent-encoding helpers (RFC 3986).
public enum PercentEncoding {
    /// Decodes `%XX` escapes; `nil` for a malformed escape or invalid UTF-8.
    public static func decode(_ s: Substring) -> String? {
        if !s.utf8.contains(UInt8(ascii: "%")) { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            if b == UInt8(ascii: "%") {
                guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
                bytes.append(h << 4 | l)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Decodes a query component: `+` is a space, then percent-decoding.
    public static func decodeQueryComponent(_ s: Substring) -> String? {
        decode(Substring(s.replacing("+", with: " ")))
    }

    /// Encodes everything except RFC 3986 unreserved characters.
    public static func encodeSegment(_ s: String) -> String {
        var copy = s
        if copy.withUTF8({ bytes in bytes.allSatisfy(isUnreserved) }) { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            if isUnreserved(b) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hexDigits[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hexDigits[Int(b & 0xF)]))
            }
        }
        return out
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
