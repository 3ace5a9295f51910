/// Decides an upload's media type from its first bytes (magic numbers), never from headers.
public enum MediaSniffer {
    /// How many leading bytes `sniff` needs to decide (a WebM file's DocType comes some 30 bytes in).
    public static let prefixLength = 64

    /// Major brands of an ISO base media file (`ftyp`) that are not `video/mp4`: still images
    /// (HEIF, AVIF, JPEG 2000, camera raw) and audio (M4A, M4B, M4P). 3GP's (`3gp…`, `3g2…`) are
    /// not recognised either, so a `video/3gpp` upload is judged as declared.
    private static let notMP4Brands: Set<String> = [
        "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "jp2 ", "jpx ", "crx ", "M4A ", "M4B ", "M4P ",
        "F4A ", "F4B ",
    ]
    /// First boxes of QuickTime files written without `ftyp` (older cameras and editors).
    private static let quickTimeFirstBoxes: Set<String> = ["moov", "mdat", "wide", "pnot"]

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
        // ISO base media: a first box `ftyp` whose major brand tells QuickTime from MP4 (HEIF,
        // AVIF, 3GP and audio-only M4A are other brands: not recognised); old QuickTime files
        // start with their movie or media box.
        if starts(Array("ftyp".utf8), at: 4), b.count >= 12 {
            let brand = String(decoding: b[8..<12], as: UTF8.self)
            if brand == "qt  " { return "video/quicktime" }
            if !notMP4Brands.contains(brand), !brand.hasPrefix("3gp"), !brand.hasPrefix("3g2") { return "video/mp4" }
            return nil
        }
        // (Its size's first byte below 0x20: no text starts so.)
        if b.count >= 8, b[0] < 0x20, quickTimeFirstBoxes.contains(String(decoding: b[4..<8], as: UTF8.self)) { return "video/quicktime" }
        // EBML (the Matroska family) with the DocType element `webm` in its header.
        if starts([0x1A, 0x45, 0xDF, 0xA3]), containsWebMDocType(b) { return "video/webm" }
        return nil
    }

    /// Whether the EBML header holds DocType (`42 82`), size 4 (`84`), "webm".
    private static func containsWebMDocType(_ b: [UInt8]) -> Bool {
        let element: [UInt8] = [0x42, 0x82, 0x84] + Array("webm".utf8)
        guard b.count >= 4 + element.count else { return false }
        return (4...(b.count - element.count)).contains { i in Array(b[i..<i + element.count]) == element }
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
        case "video/mp4": return "mp4"
        case "video/quicktime": return "mov"
        case "video/webm": return "webm"
        default: return nil
        }
    }
}
