import DepotCore

/// Declared media types: `MediaType.normalize` (an upload's `Content-Type`, a copy's `mimetype`)
/// and `MediaType.servesInline` (how a stored type is served). Input: the type. The same bytes
/// are an upload's first bytes for `MediaSniffer.sniff` (what the bytes are).
enum MediaTypeTarget {
    static func run(_ input: FuzzInput) {
        if let sniffed = MediaSniffer.sniff(input.bytes) {
            check(MediaSniffer.fileExtension(for: sniffed) != nil, "sniffed \(sniffed) has no extension")
            check(MediaSniffer.sniff(input.bytes.prefix(MediaSniffer.prefixLength)) == sniffed, "sniff reads past its prefix")
        }
        let declared = input.text
        let inline = MediaType.servesInline(declared)
        guard let normalized = try? MediaType.normalize(declared) else {
            check(!inline, "\(declared.debugDescription) is refused but served inline")
            return
        }
        let essence = normalized.prefix { $0 != ";" }
        check(essence == essence.lowercased() && essence.contains("/"), "essence \(essence.debugDescription)")
        check(!normalized.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }), "control character in \(normalized.debugDescription)")
        // Normalizing is idempotent (while the result stays within the length limit: each
        // parameter gains a space).
        if normalized.utf8.count <= MediaType.maxBytes {
            check((try? MediaType.normalize(normalized)) == normalized, "normalize is not idempotent on \(declared.debugDescription)")
            check(MediaType.servesInline(normalized) == inline, "servesInline differs after normalizing \(declared.debugDescription)")
        }
        if inline {
            check(essence != "image/svg+xml", "SVG served inline")
            check(["image/", "audio/", "video/"].contains(where: { essence.hasPrefix($0) }) || essence == "text/plain", "\(essence) served inline")
        }
    }
}
