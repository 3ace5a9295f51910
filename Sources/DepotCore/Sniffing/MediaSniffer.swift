/// Decides an upload's media type from its first bytes (magic numbers), never from headers.
public enum MediaSniffer {
    /// How many leading bytes `sniff` needs to decide (a WebM file's DocType comes some 30 bytes in).
    public static let prefixLength = 64

    /// Brands (major or compatible) of MP4 video.
    private static let mp4Brands: Set<String> = [
        "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42", "mp71", "avc1", "av01", "hvc1", "hev1",
        "dash", "M4V ", "M4VH", "M4VP", "f4v ", "mmp4", "MSNV", "XAVC", "cmfc", "cmf2", "dby1",
    ]
    /// Major brands that are no video even when they list MP4's: still images (HEIF, AVIF, JPEG
    /// 2000, camera raw) and audio (M4A, M4B, M4P). 3GP's (`3gp…`, `3g2…`) are not recognised
    /// either, so a `video/3gpp` upload is judged as declared.
    private static let notVideoBrands: Set<String> = [
        "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "jp2 ", "jpx ", "crx ", "M4A ", "M4B ", "M4P ",
        "F4A ", "F4B ",
    ]

    /// Boxes that follow `ftyp` (or another top-level box) in MP4 and QuickTime files.
    private static let topLevelBoxes: Set<String> = [
        "free", "skip", "mdat", "moov", "wide", "uuid", "pdin", "meta", "sidx", "styp", "moof", "emsg", "prft", "mfra", "junk", "pnot",
    ]
    /// Boxes that come first inside a movie box.
    private static let movieBoxes: Set<String> = [
        "mvhd", "cmov", "rmra", "trak", "udta", "meta", "iods", "mvex", "prfl", "free", "skip", "wide", "uuid",
    ]

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
        if let type = isoMedia(b) { return type }
        // EBML (the Matroska family) with the DocType element `webm` in its header.
        if starts([0x1A, 0x45, 0xDF, 0xA3]), isWebM(b) { return "video/webm" }
        return nil
    }

    /// An ISO base media file's type from its first box: `ftyp` (16 … 4096 bytes, whole in the
    /// prefix when it fits, every brand letters, digits or spaces) whose major brand is QuickTime's,
    /// or which names an MP4 brand (major or compatible) and no image or audio major brand; or, for
    /// QuickTime files written without `ftyp` (older cameras and editors), a well-formed first
    /// `wide`, `moov`, `mdat` or `pnot` box.
    private static func isoMedia(_ b: [UInt8]) -> String? {
        guard b.count >= 8 else { return nil }
        func size(at i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        func brand(at i: Int) -> String? {
            let bytes = b[i..<i + 4]
            guard bytes.allSatisfy({ $0 == 0x20 || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
            else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
        /// A box header at `i`: a size of at least its 8 bytes (0: to the end; 1: in 64 bits) and
        /// one of `types`. True past the prefix (nothing to tell).
        func isBoxHeader(at i: Int, _ types: Set<String> = topLevelBoxes) -> Bool {
            guard i + 8 <= b.count else { return i >= prefixLength - 8 }
            let n = size(at: i)
            return (n >= 8 || n == 0 || n == 1) && brand(at: i + 4).map(types.contains) == true
        }
        let first = size(at: 0)
        switch String(decoding: b[4..<8], as: UTF8.self) {
        case "ftyp":
            // (Followed by the next box's header: a file that is its `ftyp` alone is no movie.)
            guard first >= 16, first <= 4096, first % 4 == 0, b.count >= min(first + 8, prefixLength), isBoxHeader(at: first),
                let major = brand(at: 8)
            else { return nil }
            var brands = [major]
            for i in stride(from: 16, to: min(first, b.count) - 3, by: 4) {
                guard let compatible = brand(at: i) else { return nil }
                brands.append(compatible)
            }
            if major == "qt  " { return "video/quicktime" }
            if notVideoBrands.contains(major) || major.hasPrefix("3gp") || major.hasPrefix("3g2") { return nil }
            return brands.contains(where: mp4Brands.contains) ? "video/mp4" : nil
        case "wide":
            // 8 bytes, then the media or movie box (tiny files are no movies: 24 bytes at least).
            guard first == 8, b.count >= 24, isBoxHeader(at: 8) else { return nil }
            let next = String(decoding: b[12..<16], as: UTF8.self)
            return next == "mdat" || next == "moov" || next == "free" ? "video/quicktime" : nil
        case "pnot":
            return first == 20 && b.count >= 28 && isBoxHeader(at: 20) ? "video/quicktime" : nil
        case "moov":
            // Its first child box follows its header; its size's first byte below 0x20 (no text starts so).
            return first >= 16 && b[0] < 0x20 && b.count >= 24 && isBoxHeader(at: 8, movieBoxes) ? "video/quicktime" : nil
        case "mdat":
            // Media data of any bytes; when the box ends within the prefix, a box follows it.
            let valid = (first >= 8 && (first + 8 > prefixLength || isBoxHeader(at: first))) || first == 0 || first == 1
            return valid && first != 8 && b[0] < 0x20 && b.count >= 24 ? "video/quicktime" : nil
        default:
            return nil
        }
    }

    /// Whether `b` starts with a whole EBML header (its size read from its variable-length size
    /// field, at most 4096 bytes, whole in the prefix when it fits) holding the DocType element
    /// (`42 82`, size 4) `webm`, followed by a Segment (`18 53 80 67`) when the prefix reaches it.
    private static func isWebM(_ b: [UInt8]) -> Bool {
        guard b.count > 4 else { return false }
        let first = b[4]
        let width = first.leadingZeroBitCount + 1
        guard width <= 8, b.count >= 4 + width else { return false }
        var size = Int(first & (0xFF >> width))
        for i in 5..<4 + width { size = size << 8 | Int(b[i]) }
        let end = 4 + width + size
        guard size <= 4096, b.count >= min(end + 4, prefixLength) else { return false }
        if end + 4 <= b.count, Array(b[end..<end + 4]) != [0x18, 0x53, 0x80, 0x67] { return false }
        let element: [UInt8] = [0x42, 0x82, 0x84] + Array("webm".utf8)
        let header = b[(4 + width)..<min(end, b.count)]
        guard header.count >= element.count else { return false }
        return (header.startIndex...(header.endIndex - element.count)).contains { Array(b[$0..<$0 + element.count]) == element }
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
