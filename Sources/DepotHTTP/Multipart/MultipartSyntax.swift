import DepotCore

/// The bounds `MultipartReader` enforces, so that a body streamed without a Content-Length cannot
/// make the server read, hold or scan without end. The file part is bounded by the caller (the
/// upload size limit), and so are the values of the fields it collects.
package enum MultipartLimits {
    /// Bytes before the first boundary line. Clients send none or a CRLF; 1 KiB also leaves room
    /// for a short "This is a multi-part message" note as mail-style encoders write.
    package static let preambleBytes = 1024
    /// Parts in one body: a form here is a file and a few fields.
    package static let parts = 16
    /// Bytes of one part's header block: every line with its CRLF and the empty line ending it.
    /// (The spaces or tabs RFC 2046 allows after a boundary have a bound of the same size.)
    package static let headerBytes = 8 * 1024
    /// Header lines in one part (a form part has one to three).
    package static let headerLines = 32
    /// Bytes of parts the caller did not read, discarded while looking for the next one (in all).
    package static let skippedBytes = 64 * 1024
    /// Body bytes gathered before they are handed out while no delimiter is in sight.
    static let handOutBytes = 64 * 1024
}

/// The syntax of a `multipart/form-data` Content-Type and of part header values.
enum MultipartSyntax {
    /// The boundary parameter of a `multipart/form-data` Content-Type: 1–70 of RFC 2046's
    /// boundary characters (letters, digits, `'()+_,-./:=?` and space, not last), quoted or not.
    static func boundary(from contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingSpaces() }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for p in parts.dropFirst() where p.lowercased().hasPrefix("boundary=") {
            var b = p.dropFirst("boundary=".count)
            if b.hasPrefix("\"") && b.hasSuffix("\"") && b.count >= 2 { b = b.dropFirst().dropLast() }
            guard (1...70).contains(b.utf8.count), b.utf8.allSatisfy(isBoundaryByte), b.utf8.last != 32 else { return nil }
            return String(b)
        }
        return nil
    }

    private static func isBoundaryByte(_ c: UInt8) -> Bool {
        switch c {
        case 48...57, 65...90, 97...122: true  // digits, letters
        case 39...41, 43...47, 58, 61, 63, 95, 32: true  // ' ( ) + , - . / : = ? _ space
        default: false
        }
    }

    /// A parameter of a header value such as `form-data; name="file"; filename="a.png"`, unquoted.
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
