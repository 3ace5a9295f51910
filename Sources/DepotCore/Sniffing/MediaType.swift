/// Declared media types (`Content-Type` of an upload, `mimetype` of a copy) and how stored types
/// are served.
///
/// A declared type must be exactly one `type/subtype` with optional `; name=value` parameters
/// (RFC 9110 §8.3.1): no list (`text/plain, text/html`), no range (`image/*`), no stray
/// characters, at most 255 bytes.
/// Browsers guess at anything looser, and a guess can turn an upload into a page.
public enum MediaType {
    public static let maxBytes = 255

    /// The normalized form of a declared type: `type/subtype` lowercased, then each parameter as
    /// `; name=value` (name lowercased, value as sent; quoted strings kept).
    /// - Throws: `.invalidRequest` naming the problem.
    public static func normalize(_ declared: String) throws(StorageError) -> String {
        var copy = declared
        guard let normalized = copy.withUTF8({ parse($0) }) else {
            throw .invalidRequest("the content type must be one type/subtype with optional ;name=value parameters")
        }
        return normalized
    }

    /// Whether a stored type may be shown inline by a browser: images (except SVG, which runs
    /// scripts), audio, video and plain text. Everything else is sent as an attachment.
    public static func servesInline(_ type: String) -> Bool {
        switch type {
        case "image/png", "image/jpeg", "image/gif", "image/webp": return true  // the common case, no allocation
        default: break
        }
        var copy = type
        guard let normalized = copy.withUTF8({ parse($0) }) else { return false }
        let essence = normalized.prefix { $0 != ";" }
        if essence == "image/svg+xml" { return false }
        return essence.hasPrefix("image/") || essence.hasPrefix("audio/") || essence.hasPrefix("video/")
            || essence == "text/plain"
    }

    // MARK: Grammar

    private static func parse(_ b: UnsafeBufferPointer<UInt8>) -> String? {
        guard b.count <= maxBytes else { return nil }
        var i = 0
        func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        func token() -> String? {
            let start = i
            while i < b.count, isTokenByte(b[i]) { i += 1 }
            guard i > start else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        }
        skipSpace()
        guard let type = token(), i < b.count, b[i] == UInt8(ascii: "/") else { return nil }
        i += 1
        // A range such as `image/*` or `*/*` names no one type.
        guard let subtype = token(), !type.utf8.contains(UInt8(ascii: "*")), !subtype.utf8.contains(UInt8(ascii: "*")) else { return nil }
        var out = type.lowercased() + "/" + subtype.lowercased()
        while true {
            skipSpace()
            if i == b.count { return out }
            guard b[i] == UInt8(ascii: ";") else { return nil }
            i += 1
            skipSpace()
            if i == b.count { return out }  // a trailing ';' is tolerated
            guard let name = token(), i < b.count, b[i] == UInt8(ascii: "=") else { return nil }
            i += 1
            let value: String
            if i < b.count, b[i] == UInt8(ascii: "\"") {
                let start = i
                i += 1
                while i < b.count, b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") { i += 1 }
                    guard i < b.count, isQuotedTextByte(b[i]) else { return nil }
                    i += 1
                }
                guard i < b.count else { return nil }
                i += 1
                value = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            } else {
                guard let v = token() else { return nil }
                value = v
            }
            out += "; " + name.lowercased() + "=" + value
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Inside a quoted string: visible ASCII and space/tab (no controls, no non-ASCII).
    private static func isQuotedTextByte(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c < 0x7F) }
}
