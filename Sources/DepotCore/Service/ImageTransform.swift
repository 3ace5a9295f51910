/// A transformation asked of an image (Supabase's render API): `width`, `height`, `resize`,
/// `quality`, `format`. Read from a query string or a sign request's `transform` object, kept in
/// render tokens as ``compact`` text, and part of the key of a cached rendition.
public struct ImageTransform: Sendable, Hashable, CustomStringConvertible {
    /// What to send: the source's own format, or a named one.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case origin, webp, jpeg, png
    }

    /// Pixels, 1…``maxSide``; `nil` follows the image's aspect ratio from the other side.
    public var width: Int?
    public var height: Int?
    public var resize: ImageFit
    /// ``qualityRange``; `nil` is ``defaultQuality``.
    public var quality: Int?
    /// `nil`: WebP when the client accepts it, else the source's format (Supabase's automatic
    /// optimisation); the response then varies by `Accept`.
    public var format: Format?

    public static let maxSide = 2500
    public static let qualityRange = 20...100
    public static let defaultQuality = 80

    public init(width: Int? = nil, height: Int? = nil, resize: ImageFit = .cover, quality: Int? = nil, format: Format? = nil) {
        self.width = width
        self.height = height
        self.resize = resize
        self.quality = quality
        self.format = format
    }

    /// Reads the five parameters through `value` (a query item or a JSON member, as text; other
    /// names are not asked for).
    /// - Throws: `.invalidRequest` naming the parameter and what it accepts.
    public static func parse(_ value: (String) throws -> String?) throws -> ImageTransform {
        var t = ImageTransform()
        t.width = try side(value("width"), "width")
        t.height = try side(value("height"), "height")
        if let text = try value("resize") {
            guard let fit = ImageFit(rawValue: text) else { throw StorageError.invalidRequest("resize must be cover, contain or fill") }
            t.resize = fit
        }
        if let text = try value("quality") {
            guard let q = RequestNumber.parse(text), qualityRange.contains(Int(clamping: q)) else {
                throw StorageError.invalidRequest("quality must be an integer from \(qualityRange.lowerBound) to \(qualityRange.upperBound)")
            }
            t.quality = Int(q)
        }
        if let text = try value("format") {
            if text == "avif" {
                throw StorageError(
                    .unsupportedMediaType,
                    "format avif is not available on this server (its libvips has no AVIF encoder); use origin, webp, jpeg or png")
            }
            guard let f = Format(rawValue: text) else { throw StorageError.invalidRequest("format must be origin, webp, jpeg or png") }
            t.format = f
        }
        return t
    }

    private static func side(_ text: String?, _ name: String) throws -> Int? {
        guard let text else { return nil }
        guard let n = RequestNumber.parse(text), (1...Int64(maxSide)).contains(n) else {
            throw StorageError.invalidRequest("\(name) must be an integer from 1 to \(maxSide)")
        }
        return Int(n)
    }

    /// The output format for a source of `source`'s type, given the request's `Accept` header.
    public func output(for source: ImageFormat, accept: String?) -> ImageFormat {
        switch format {
        case .origin: source
        case .webp: .webp
        case .jpeg: .jpeg
        case .png: .png
        case nil: accept.map(Self.acceptsWebP) == true ? .webp : source
        }
    }

    /// Whether an `Accept` header names `image/webp` (with a quality above 0).
    public static func acceptsWebP(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { item in
            let parts = item.split(separator: ";").map { $0.trimmingSpaces() }
            guard let type = parts.first, type.utf8.count == 10, type.lowercased() == "image/webp" else { return false }
            // `q=0`, `q=0.0`… refuses it.
            return !parts.dropFirst().contains { p in
                p.utf8.count <= 8 && p.lowercased().hasPrefix("q=")
                    && p.utf8.dropFirst(2).allSatisfy { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: ".") }
            }
        }
    }

    /// The request for the renderer once the output format is known.
    public func request(format output: ImageFormat) -> ImageRequest {
        ImageRequest(width: width ?? 0, height: height ?? 0, fit: resize, format: output, quality: quality ?? Self.defaultQuality)
    }

    /// A short, canonical spelling (`w200h100rcq80fwebp`: `r` then `c`over, co`n`tain or `f`ill; a missing field is left out), the same
    /// for equal transforms: kept in render tokens (no `.`, ≤ 40 bytes) and in rendition keys.
    public var compact: String {
        var s = ""
        if let width { s += "w\(width)" }
        if let height { s += "h\(height)" }
        s += "r" + Self.fitCode(resize)
        if let quality { s += "q\(quality)" }
        if let format { s += "f\(format.rawValue)" }
        return s
    }

    /// Reads ``compact`` back; nil for anything else.
    public init?(compact: Substring) {
        var t = ImageTransform()
        var rest = compact.utf8[...]
        func number() -> Int? {
            let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            rest = rest.dropFirst(digits.count)
            // One spelling per value: no leading zero.
            if digits.first == UInt8(ascii: "0") { return nil }
            return RequestNumber.parse(Substring(digits)).map { Int(clamping: $0) }
        }
        func take(_ byte: Character) -> Bool {
            guard rest.first == byte.asciiValue else { return false }
            rest = rest.dropFirst()
            return true
        }
        if take("w") { guard let n = number(), (1...Self.maxSide).contains(n) else { return nil }; t.width = n }
        if take("h") { guard let n = number(), (1...Self.maxSide).contains(n) else { return nil }; t.height = n }
        guard take("r") else { return nil }
        guard let code = rest.first, let fit = ImageFit.allCases.first(where: { Self.fitCode($0).utf8.first == code }) else { return nil }
        rest = rest.dropFirst()
        t.resize = fit
        if take("q") { guard let n = number(), Self.qualityRange.contains(n) else { return nil }; t.quality = n }
        if take("f") {
            guard let f = Format(rawValue: String(Substring(rest))) else { return nil }
            t.format = f
            rest = rest.dropFirst(rest.count)
        }
        guard rest.isEmpty else { return nil }
        self = t
    }

    /// One letter per fit in ``compact``.
    private static func fitCode(_ fit: ImageFit) -> String {
        switch fit {
        case .cover: "c"
        case .contain: "n"
        case .fill: "f"
        }
    }

    public var description: String { compact }
}
