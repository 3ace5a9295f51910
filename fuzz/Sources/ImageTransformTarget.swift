import DepotCore

/// The render API's parameters (`ImageTransform.parse`), their token spelling
/// (`ImageTransform(compact:)`) and `Accept` (`ImageTransform.acceptsWebP`).
/// Input: lines `name=value` (the query's parameters), or a compact spelling, or an Accept value.
enum ImageTransformTarget {
    static func run(_ input: FuzzInput) {
        var query: [String: String] = [:]
        for line in input.lines() {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, query[String(parts[0])] == nil { query[String(parts[0])] = String(parts[1]) }
        }
        if let t = try? ImageTransform.parse({ query[$0] }) {
            check(t.width.map { (1...ImageTransform.maxSide).contains($0) } ?? true, "width \(String(describing: t.width))")
            check(t.height.map { (1...ImageTransform.maxSide).contains($0) } ?? true, "height \(String(describing: t.height))")
            check(t.quality.map { ImageTransform.qualityRange.contains($0) } ?? true, "quality \(String(describing: t.quality))")
            let compact = t.compact
            check(!compact.utf8.contains(UInt8(ascii: ".")) && compact.utf8.count <= 40, "compact \(compact)")
            check(ImageTransform(compact: compact[...]) == t, "\(compact) does not read back")
        }
        // A compact spelling that reads is the canonical one (a token has one spelling per transform).
        if let t = ImageTransform(compact: input.text[...]) {
            check(t.compact == input.text, "\(input.text.debugDescription) reads as \(t.compact)")
        }
        _ = ImageTransform.acceptsWebP(input.text)
    }
}
