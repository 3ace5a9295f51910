/// Reads the few flat XML documents S3 answers with (errors, listings, multipart results).
///
/// Not a general XML parser: it finds elements by name, assumes an element does not contain
/// another element of the same name (true of every S3 shape used here), and decodes the five
/// predefined entities and numeric character references. Enough for documents S3 writes; a
/// document it cannot read yields empty results, which callers treat as a malformed answer.
struct S3XML {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The inner content of every `<name …>…</name>` (or empty `<name/>`), in document order.
    func elements(_ name: String) -> [S3XML] {
        let open = Array("<\(name)".utf8), close = Array("</\(name)>".utf8)
        var out: [S3XML] = []
        var i = 0
        while let start = find(open, from: i) {
            let after = start + open.count
            guard after < bytes.count else { break }
            let next = bytes[after]
            // `<Key>` must not match `<KeyCount>`.
            guard next == UInt8(ascii: ">") || next == UInt8(ascii: " ") || next == UInt8(ascii: "/") || next == UInt8(ascii: "\n")
            else { i = after; continue }
            guard let tagEnd = find([UInt8(ascii: ">")], from: after) else { break }
            if bytes[tagEnd - 1] == UInt8(ascii: "/") {
                out.append(S3XML([]))
                i = tagEnd + 1
                continue
            }
            guard let end = find(close, from: tagEnd + 1) else { break }
            out.append(S3XML(Array(bytes[(tagEnd + 1)..<end])))
            i = end + close.count
        }
        return out
    }

    /// The decoded text of the first `<name>` element, or nil.
    func value(_ name: String) -> String? { elements(name).first?.text }

    /// This element's content as text, entities decoded.
    var text: String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "&"), let semi = bytes[i...].firstIndex(of: UInt8(ascii: ";")), semi - i <= 10 {
                let entity = String(decoding: bytes[(i + 1)..<semi], as: UTF8.self)
                if let decoded = Self.decode(entity) {
                    out += Array(decoded.utf8)
                    i = semi + 1
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func decode(_ entity: String) -> String? {
        switch entity {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        default:
            var digits = Substring(entity)
            guard digits.first == "#" else { return nil }
            digits = digits.dropFirst()
            let radix = digits.first == "x" || digits.first == "X" ? 16 : 10
            if radix == 16 { digits = digits.dropFirst() }
            guard let v = UInt32(digits, radix: radix), let scalar = Unicode.Scalar(v) else { return nil }
            return String(Character(scalar))
        }
    }

    /// Escapes text for an element's content.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, bytes.count >= needle.count else { return nil }
        var i = start
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == needle[0] {
                var j = 1
                while j < needle.count && bytes[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
