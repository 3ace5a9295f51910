/// Decides an upload's media type from its first bytes (magic numbers), never from headers.
public enum MediaSniffer {
    /// How many leading bytes `sniff` needs to decide.
    public static let prefixLength = 16

    /// The media type of content starting with `prefix`, or `nil` when it is none we recognise.
    public static func sniff(_ prefix: some Collection<UInt8>) -> String? {
        let b = Array(prefix.prefix(prefixLength))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + magic.count && Array(b[offset..<offset + magic.count]) == magic
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts(Array("%PDF-".utf8)) { return "application/pdf" }
        return nil
    }

    /// The canonical form of a declared media type: lowercased, parameters dropped, aliases folded.
    public static func canonical(_ declared: String) -> String {
        let base = declared.split(separator: ";", maxSplits: 1).first.map(String.init) ?? declared
        var trimmed = Substring(base)
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        let t = trimmed.lowercased()
        switch t {
        case "image/jpg", "image/pjpeg": return "image/jpeg"
        case "image/x-png": return "image/png"
        default: return t
        }
    }

    /// The file extension for a sniffed type.
    public static func fileExtension(for type: String) -> String? {
        switch type {
        case "image/png": return "png"
        case "image/jpeg": return "jpg"
        case "image/gif": return "gif"
        case "image/webp": return "webp"
        case "application/pdf": return "pdf"
        default: return nil
        }
    }
}
